"""MetaCloudProvider over real HTTP against a fake Meta server answering real Cloud API bodies."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.fake_providers import META_ERRORS, FakeMetaServer, ScriptedResponse, closed_port
from wabacast.domain.jobs import ErrorClass
from wabacast.providers.base import OutboundMessage, ProviderError
from wabacast.providers.meta import MetaCloudProvider

TOKEN = "EAAGm0PX4ZCpsBAKZC-test-token-0123456789"
PHONE_NUMBER_ID = "106540352242922"
MESSAGE = OutboundMessage(
    job_id="job_1",
    to="+34600000001",
    from_number="+34900000000",
    template_name="order_update",
    language="es_ES",
    variables={"2": "A-17", "1": "Ana"},
)


def meta_provider(base_url: str, client: httpx.Client, timeout_s: float = 5.0) -> MetaCloudProvider:
    return MetaCloudProvider(base_url, "v21.0", PHONE_NUMBER_ID, TOKEN, client, timeout_s)


def send_error(provider: MetaCloudProvider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider.send(MESSAGE)
    return caught.value


def test_a_send_posts_the_template_with_the_bearer_token(fake_meta: FakeMetaServer, http_client: httpx.Client) -> None:
    # GIVEN a Meta server that accepts messages
    provider = meta_provider(fake_meta.url, http_client)

    # WHEN a message is sent
    receipt = provider.send(MESSAGE)

    # THEN the wamid comes back, and Meta received the documented request
    assert receipt.provider_message_id.startswith("wamid.")
    (request,) = fake_meta.requests
    assert (request.method, request.path) == ("POST", f"/v21.0/{PHONE_NUMBER_ID}/messages")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "34600000001",
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "es_ES"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-17"}]}
            ],
        },
    }


@pytest.mark.parametrize(
    ("example", "code", "status", "expected"),
    [
        ("undeliverable", "131026", 400, ErrorClass.PERMANENT),
        ("opted_out", "131050", 400, ErrorClass.OPTED_OUT_MARKETING),
        ("rate_limited", "130429", 429, ErrorClass.RETRYABLE),
        ("server_error", "131000", 500, ErrorClass.RETRYABLE),
        ("token_expired", "190", 401, ErrorClass.PAUSE_QUEUE),
        ("template_missing", "132001", 404, ErrorClass.PERMANENT),
        ("spam_limit", "131048", 400, ErrorClass.PAUSE_QUEUE),
        ("template_paused", "132015", 400, ErrorClass.PAUSE_QUEUE),
        ("unknown_phone_number_id", "100", 400, ErrorClass.PAUSE_QUEUE),
        ("invalid_parameter", "100", 400, ErrorClass.PERMANENT),
    ],
)
def test_meta_error_bodies_are_classified(
    fake_meta: FakeMetaServer, http_client: httpx.Client, example: str, code: str, status: int, expected: ErrorClass
) -> None:
    # GIVEN Meta answering one of its real error bodies
    fake_meta.enqueue(META_ERRORS[example])

    # WHEN a message is sent
    error = send_error(meta_provider(fake_meta.url, http_client))

    # THEN the error carries Meta's code, the HTTP status and the class from the table
    assert (error.code, error.http_status, error.error_class) == (code, status, expected)
    assert error.message
    assert TOKEN not in str(error)


def test_a_bare_500_without_a_meta_body_is_retryable(fake_meta: FakeMetaServer, http_client: httpx.Client) -> None:
    # GIVEN a proxy in front of Meta answering an HTML 500
    fake_meta.enqueue(ScriptedResponse(500, "<html>Internal Server Error</html>", content_type="text/html"))

    # WHEN a message is sent
    error = send_error(meta_provider(fake_meta.url, http_client))

    # THEN it is retryable, with the status as its code
    assert (error.code, error.error_class, error.http_status) == ("500", ErrorClass.RETRYABLE, 500)


def test_a_response_slower_than_the_timeout_is_an_unknown_outcome(
    fake_meta: FakeMetaServer, http_client: httpx.Client
) -> None:
    # GIVEN Meta receiving the request but answering after the client's timeout
    fake_meta.enqueue(ScriptedResponse(200, {"messages": [{"id": "wamid.late"}]}, delay_s=3.0))
    provider = meta_provider(fake_meta.url, http_client, timeout_s=0.3)

    # WHEN a message is sent
    started = time.monotonic()
    error = send_error(provider)

    # THEN the sender is told the outcome is unknown (Meta did receive it), without waiting for the answer
    assert (error.code, error.error_class) == ("READ_TIMEOUT", ErrorClass.UNKNOWN_OUTCOME)
    assert len(fake_meta.requests) == 1
    assert time.monotonic() - started < 2.5


def test_a_closed_port_is_retryable(http_client: httpx.Client) -> None:
    # GIVEN nothing listening where Meta should be
    provider = meta_provider(f"http://127.0.0.1:{closed_port()}", http_client)

    # WHEN a message is sent
    error = send_error(provider)

    # THEN the request surely did not arrive: retryable
    assert (error.code, error.error_class) == ("CONNECT_ERROR", ErrorClass.RETRYABLE)


def test_the_client_is_reused_across_sends(fake_meta: FakeMetaServer, http_client: httpx.Client) -> None:
    # GIVEN one provider and several answers, an error in between
    fake_meta.enqueue(ScriptedResponse(200, {"messages": [{"id": "wamid.1"}]}), META_ERRORS["rate_limited"])
    provider = meta_provider(fake_meta.url, http_client)

    # WHEN three messages are sent
    first = provider.send(MESSAGE)
    with pytest.raises(ProviderError):
        provider.send(MESSAGE)
    third = provider.send(MESSAGE)

    # THEN each got its own answer over the shared client
    assert first.provider_message_id == "wamid.1"
    assert third.provider_message_id.startswith("wamid.HBgLFAKE")
    assert len(fake_meta.requests) == 3
