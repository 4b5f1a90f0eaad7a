"""TwilioProvider's arguments and error reading, with a stand-in for the Twilio client (no sockets)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from wabacast.domain.jobs import ErrorClass
from wabacast.domain.models import TwilioCredentials
from wabacast.providers.base import OutboundMessage, ProviderError
from wabacast.providers.twilio import TwilioProvider

SID = "AC" + "a" * 32
TOKEN = "0123456789abcdef0123456789abcdef"
SERVICE = "MG" + "b" * 32
CONTENT = "HX" + "c" * 32


class StubMessages:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome
        self.calls: list[dict[str, Any]] = []

    def create(self, **arguments: Any) -> Any:
        self.calls.append(arguments)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def stub_client(outcome: Any) -> Any:
    return SimpleNamespace(messages=StubMessages(outcome), api=SimpleNamespace(base_url="https://api.twilio.com"))


def message(**fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "job_id": "job_1",
        "to": "+34600000001",
        "from_number": "+34900000000",
        "template_name": "order_update",
        "language": "en_US",
        "content_sid": CONTENT,
        "variables": {"1": "Ana", "2": "A-17"},
    }
    values.update(fields)
    return OutboundMessage(**values)


def credentials(service: str | None = None) -> TwilioCredentials:
    return TwilioCredentials(account_sid=SID, auth_token=TOKEN, messaging_service_sid=service)


def send_error(outcome: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        TwilioProvider(credentials(), client=stub_client(outcome)).send(message())
    return caught.value


def test_a_send_from_the_accounts_number_uses_whatsapp_addresses_and_content_variables() -> None:
    # GIVEN an account without a Messaging Service
    client = stub_client(SimpleNamespace(sid="SM123", status="queued"))

    # WHEN a templated message is sent
    receipt = TwilioProvider(credentials(), client=client).send(message())

    # THEN the client got whatsapp: addresses, the content SID and the variables as JSON; the SID is the receipt
    assert receipt.provider_message_id == "SM123"
    (call,) = client.messages.calls
    assert call["to"] == "whatsapp:+34600000001"
    assert call["from_"] == "whatsapp:+34900000000"
    assert "messaging_service_sid" not in call
    assert call["content_sid"] == CONTENT
    assert json.loads(call["content_variables"]) == {"1": "Ana", "2": "A-17"}


def test_a_messaging_service_replaces_the_from_number_and_no_variables_means_none_sent() -> None:
    # GIVEN an account with a Messaging Service and a template without variables
    client = stub_client(SimpleNamespace(sid="SM9"))

    # WHEN sent
    TwilioProvider(credentials(SERVICE), client=client).send(message(variables={}))

    # THEN MessagingServiceSid is used instead of From, and ContentVariables is left out
    (call,) = client.messages.calls
    assert call["messaging_service_sid"] == SERVICE
    assert "from_" not in call
    assert "content_variables" not in call


def test_a_missing_content_sid_fails_permanently_without_calling_twilio() -> None:
    # GIVEN a message whose template has no contentSid
    client = stub_client(SimpleNamespace(sid="SM1"))

    # WHEN sent
    with pytest.raises(ProviderError) as caught:
        TwilioProvider(credentials(), client=client).send(message(content_sid=None))

    # THEN it fails permanently and Twilio was not called
    assert caught.value.error_class is ErrorClass.PERMANENT
    assert "contentSid" in caught.value.message
    assert client.messages.calls == []


@pytest.mark.parametrize(
    ("code", "status", "expected_code", "expected"),
    [
        (21610, 400, "21610", ErrorClass.OPTED_OUT),
        (21211, 400, "21211", ErrorClass.PERMANENT),
        (20429, 429, "20429", ErrorClass.RETRYABLE),
        (20003, 401, "20003", ErrorClass.PAUSE_QUEUE),
        (None, 503, "503", ErrorClass.RETRYABLE),
        (99999, 400, "99999", ErrorClass.PERMANENT),
    ],
)
def test_rest_exceptions_are_classified_by_code_then_status(
    code: int | None, status: int, expected_code: str, expected: ErrorClass
) -> None:
    # GIVEN the client raising TwilioRestException
    exception = TwilioRestException(status, "https://api.twilio.com/x", "Unable to create record: nope", code, "POST")

    # WHEN sent
    error = send_error(exception)

    # THEN code, class and status come from the exception
    assert (error.code, error.error_class, error.http_status) == (expected_code, expected, status)
    assert "nope" in error.message


def test_rfc9457_service_exceptions_are_read_too() -> None:
    # GIVEN the newer problem-details exception
    exception = TwilioServiceException("https://x", "Too Many Requests", 429, 20429, detail="slow down")

    # WHEN sent
    error = send_error(exception)

    # THEN it is classified like the legacy one
    assert (error.code, error.error_class, error.message) == ("20429", ErrorClass.RETRYABLE, "slow down")


@pytest.mark.parametrize(
    ("exception", "code", "expected"),
    [
        (
            requests.ConnectionError(MaxRetryError(None, "/x", NewConnectionError(None, "refused"))),  # type: ignore[arg-type]
            "CONNECT_ERROR",
            ErrorClass.RETRYABLE,
        ),
        (requests.ConnectTimeout("connect timed out"), "CONNECT_TIMEOUT", ErrorClass.RETRYABLE),
        (requests.exceptions.SSLError("handshake"), "CONNECT_ERROR", ErrorClass.RETRYABLE),
        (requests.ReadTimeout("read timed out"), "READ_TIMEOUT", ErrorClass.UNKNOWN_OUTCOME),
        (
            requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError())),
            "CONNECTION_LOST",
            ErrorClass.UNKNOWN_OUTCOME,
        ),
        (requests.exceptions.ChunkedEncodingError("broken"), "REQUEST_ERROR", ErrorClass.UNKNOWN_OUTCOME),
        (requests.exceptions.InvalidURL("bad"), "PROVIDER_CONFIG", ErrorClass.PAUSE_QUEUE),
        (TwilioException("odd"), "REQUEST_ERROR", ErrorClass.UNKNOWN_OUTCOME),
        (ValueError("2xx body is not JSON"), "REQUEST_ERROR", ErrorClass.UNKNOWN_OUTCOME),
    ],
)
def test_transport_failures_retry_only_when_nothing_can_have_arrived(
    exception: Exception, code: str, expected: ErrorClass
) -> None:
    # GIVEN the client failing below HTTP
    # WHEN sent
    error = send_error(exception)

    # THEN connection failures retry; anything after the request may have left is an unknown outcome
    assert (error.code, error.error_class) == (code, expected)


def test_the_auth_token_never_appears_in_errors_or_repr() -> None:
    # GIVEN an error message that contains the auth token
    exception = TwilioRestException(400, "https://x", f"Unable to create record: token {TOKEN} rejected", 21211)

    # WHEN sent
    error = send_error(exception)

    # THEN it is masked
    assert TOKEN not in str(error)
    assert TOKEN not in repr(TwilioProvider(credentials(), client=stub_client(None)))


def test_base_url_points_the_client_elsewhere() -> None:
    # GIVEN a client and a local base URL
    client = stub_client(None)

    # WHEN the provider is built with it
    TwilioProvider(credentials(), client=client, base_url="http://127.0.0.1:9999/")

    # THEN the client's API domain uses it
    assert client.api.base_url == "http://127.0.0.1:9999"


def test_a_send_asks_for_status_callbacks_with_the_job_reference_when_the_url_is_known() -> None:
    # GIVEN an account whose webhook URL is known (the stack's public base URL is set)
    client = stub_client(SimpleNamespace(sid="SM123", status="queued"))
    url = "https://abc.execute-api.us-east-1.amazonaws.com/api/webhooks/twilio/acc_1"
    provider = TwilioProvider(credentials(), client=client, status_callback_url=url)

    # WHEN a message with its job reference is sent
    provider.send(message(callback_reference="q_1/job_1"))

    # THEN Twilio is asked to post its statuses there, the reference in the query (Twilio signs the whole URL)
    assert client.messages.calls[0]["status_callback"] == f"{url}?ref=q_1%2Fjob_1"


def test_no_status_callback_without_a_public_url() -> None:
    client = stub_client(SimpleNamespace(sid="SM123", status="queued"))
    TwilioProvider(credentials(), client=client).send(message(callback_reference="q_1/job_1"))
    assert "status_callback" not in client.messages.calls[0]
