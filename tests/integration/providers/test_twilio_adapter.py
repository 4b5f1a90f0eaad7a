"""TwilioProvider with the official client over real HTTP against a fake Twilio Messages API."""

from __future__ import annotations

import json
import time

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.support.fake_providers import (
    TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN,
    FakeTwilioServer,
    ScriptedResponse,
    closed_port,
    twilio_error,
)
from wabacast.domain.jobs import ErrorClass
from wabacast.domain.models import TwilioCredentials
from wabacast.providers.base import OutboundMessage, ProviderError
from wabacast.providers.twilio import TwilioProvider

SERVICE_SID = "MG" + "1" * 32
CONTENT_SID = "HX" + "abcdef0123456789" * 2
MESSAGE = OutboundMessage(
    job_id="job_1",
    to="+34600000001",
    from_number="+34900000000",
    template_name="order_update",
    language="es_ES",
    variables={"1": "Ana", "2": "A-17"},
    content_sid=CONTENT_SID,
)


def credentials(service: str | None = None, token: str = TEST_AUTH_TOKEN) -> TwilioCredentials:
    return TwilioCredentials(account_sid=TEST_ACCOUNT_SID, auth_token=token, messaging_service_sid=service)


def twilio(server_url: str, *, service: str | None = None, timeout_s: float = 5.0) -> TwilioProvider:
    return TwilioProvider(credentials(service), base_url=server_url, timeout_s=timeout_s)


def send_error(provider: TwilioProvider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider.send(MESSAGE)
    return caught.value


def test_a_send_posts_the_documented_form_with_basic_auth(fake_twilio: FakeTwilioServer) -> None:
    # GIVEN Twilio accepting messages for the account
    provider = twilio(fake_twilio.url)

    # WHEN a templated message is sent
    receipt = provider.send(MESSAGE)

    # THEN the Message SID comes back, and Twilio got To, From, ContentSid, ContentVariables with basic auth
    assert receipt.provider_message_id.startswith("SM")
    assert len(receipt.provider_message_id) == 34
    (request,) = fake_twilio.requests
    assert (request.method, request.path) == ("POST", f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages.json")
    assert request.basic_auth() == (TEST_ACCOUNT_SID, TEST_AUTH_TOKEN)
    form = request.form()
    assert form["To"] == "whatsapp:+34600000001"
    assert form["From"] == "whatsapp:+34900000000"
    assert "MessagingServiceSid" not in form
    assert form["ContentSid"] == CONTENT_SID
    assert json.loads(form["ContentVariables"]) == {"1": "Ana", "2": "A-17"}


def test_a_messaging_service_is_sent_instead_of_from(fake_twilio: FakeTwilioServer) -> None:
    # GIVEN an account with a Messaging Service
    provider = twilio(fake_twilio.url, service=SERVICE_SID)

    # WHEN a message is sent
    provider.send(MESSAGE)

    # THEN MessagingServiceSid replaces From
    form = fake_twilio.requests[0].form()
    assert form["MessagingServiceSid"] == SERVICE_SID
    assert "From" not in form


def test_an_injected_client_is_pointed_at_the_base_url(fake_twilio: FakeTwilioServer) -> None:
    # GIVEN a Twilio client built elsewhere (as the toolchain notes describe)
    client = Client(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, http_client=TwilioHttpClient(timeout=5))

    # WHEN the provider wraps it with a base URL and sends
    TwilioProvider(credentials(), client=client, base_url=fake_twilio.url).send(MESSAGE)

    # THEN the request reached the fake
    assert len(fake_twilio.requests) == 1


@pytest.mark.parametrize(
    ("answer", "code", "status", "expected"),
    [
        (twilio_error(21211, 400, "The 'To' number whatsapp:+34600000001 is not a valid phone number."), "21211",
         400, ErrorClass.PERMANENT),
        (twilio_error(21610, 400, "Attempt to send to unsubscribed recipient"), "21610", 400, ErrorClass.OPTED_OUT),
        (twilio_error(63016, 400, "Failed to send freeform message outside the allowed window"), "63016", 400,
         ErrorClass.PERMANENT),
        (twilio_error(20429, 429, "Too Many Requests"), "20429", 429, ErrorClass.RETRYABLE),
        (twilio_error(20500, 500, "Internal Server Error"), "20500", 500, ErrorClass.RETRYABLE),
        (ScriptedResponse(503, "<html>Service Unavailable</html>", content_type="text/html"), "503", 503,
         ErrorClass.RETRYABLE),
        (twilio_error(21606, 400, "The 'From' phone number provided is not a valid message-capable number"),
         "21606", 400, ErrorClass.PAUSE_QUEUE),
    ],
)  # fmt: skip
def test_twilio_errors_are_classified(
    fake_twilio: FakeTwilioServer, answer: ScriptedResponse, code: str, status: int, expected: ErrorClass
) -> None:
    # GIVEN Twilio answering an error
    fake_twilio.enqueue(answer)

    # WHEN a message is sent
    error = send_error(twilio(fake_twilio.url))

    # THEN code, status and class follow the table
    assert (error.code, error.http_status, error.error_class) == (code, status, expected)
    assert TEST_AUTH_TOKEN not in str(error)


def test_wrong_credentials_pause_the_queue(fake_twilio: FakeTwilioServer) -> None:
    # GIVEN an auth token Twilio does not accept
    provider = TwilioProvider(credentials(token="0" * 32), base_url=fake_twilio.url)

    # WHEN a message is sent
    error = send_error(provider)

    # THEN Twilio's 20003 pauses the queue
    assert (error.code, error.http_status, error.error_class) == ("20003", 401, ErrorClass.PAUSE_QUEUE)


def test_a_closed_port_is_retryable() -> None:
    # GIVEN nothing listening where Twilio should be
    provider = twilio(f"http://127.0.0.1:{closed_port()}")

    # WHEN a message is sent
    error = send_error(provider)

    # THEN it surely did not arrive: retryable
    assert (error.code, error.error_class) == ("CONNECT_ERROR", ErrorClass.RETRYABLE)


def test_an_answer_slower_than_the_timeout_is_an_unknown_outcome(fake_twilio: FakeTwilioServer) -> None:
    # GIVEN Twilio receiving the request but answering late
    fake_twilio.enqueue(ScriptedResponse(201, {"sid": "SM" + "0" * 32, "status": "queued"}, delay_s=3.0))
    provider = twilio(fake_twilio.url, timeout_s=0.3)

    # WHEN a message is sent
    started = time.monotonic()
    error = send_error(provider)

    # THEN the outcome is unknown: Twilio did get it
    assert (error.code, error.error_class) == ("READ_TIMEOUT", ErrorClass.UNKNOWN_OUTCOME)
    assert len(fake_twilio.requests) == 1
    assert time.monotonic() - started < 2.5
