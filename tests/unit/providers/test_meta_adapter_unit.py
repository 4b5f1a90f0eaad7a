"""MetaCloudProvider's reading of answers and failures, over httpx.MockTransport (no sockets)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from wabacast.domain.jobs import ErrorClass
from wabacast.providers.base import OutboundMessage, ProviderError
from wabacast.providers.meta import MetaCloudProvider

TOKEN = "EAAGtoken-very-secret-0123456789"
MESSAGE = OutboundMessage(
    job_id="job_1",
    to="+34600000001",
    from_number="+34900000000",
    template_name="order_update",
    language="en_US",
    variables={"1": "Ana"},
)


def provider(handler: Callable[[httpx.Request], httpx.Response], *, name: str = "meta") -> MetaCloudProvider:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return MetaCloudProvider("https://graph.example/", "v21.0", "1234567890", TOKEN, client, 5.0, provider_name=name)


def send_error(handler: Callable[[httpx.Request], httpx.Response], *, name: str = "meta") -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider(handler, name=name).send(MESSAGE)
    return caught.value


def test_a_success_returns_the_wamid_and_sends_the_expected_request() -> None:
    # GIVEN a provider answering a wamid
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"messaging_product": "whatsapp", "messages": [{"id": "wamid.ABC"}]})

    # WHEN a message is sent
    receipt = provider(handler).send(MESSAGE)

    # THEN the receipt holds the wamid, and the request went to the phone number's endpoint with the bearer token
    assert receipt.provider_message_id == "wamid.ABC"
    assert str(seen[0].url) == "https://graph.example/v21.0/1234567890/messages"
    assert seen[0].method == "POST"
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert seen[0].headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "body",
    [{"messages": []}, {"messages": [{}]}, {"contacts": []}, {"messages": [{"id": ""}]}, "not json", ["list"]],
)
def test_a_success_without_a_message_id_is_an_unknown_outcome(body: object) -> None:
    # GIVEN a 200 whose body has no usable message id
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body) if isinstance(body, str) else httpx.Response(200, json=body)

    # WHEN a message is sent
    error = send_error(handler)

    # THEN it may have been accepted: never resent
    assert error.error_class is ErrorClass.UNKNOWN_OUTCOME
    assert error.code == "INVALID_RESPONSE"


def test_a_meta_error_body_gives_code_message_details_and_class() -> None:
    # GIVEN a Meta error body with details
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={
                "error": {
                    "message": "(#131050) Unable to deliver the message.",
                    "type": "OAuthException",
                    "code": 131050,
                    "error_data": {"messaging_product": "whatsapp", "details": "Recipient stopped marketing."},
                    "fbtrace_id": "X",
                }
            },
        )

    # WHEN a message is sent
    error = send_error(handler)

    # THEN the error carries Meta's code as a string, its message with the details, the class and the status
    assert error.code == "131050"
    assert error.error_class is ErrorClass.OPTED_OUT_MARKETING
    assert error.http_status == 400
    assert "Unable to deliver" in error.message
    assert "Recipient stopped marketing." in error.message


def test_a_subcode_is_taken_into_account() -> None:
    # GIVEN code 100 with subcode 33 (unknown phone number id)
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": {"message": "Unsupported post request.", "type": "GraphMethodException", "code": 100,
                          "error_subcode": 33}}  # fmt: skip
        return httpx.Response(400, json=body)

    # WHEN a message is sent
    # THEN the queue is paused rather than the job failed
    assert send_error(handler).error_class is ErrorClass.PAUSE_QUEUE


@pytest.mark.parametrize(
    ("status", "expected"),
    [(502, ErrorClass.RETRYABLE), (503, ErrorClass.RETRYABLE), (429, ErrorClass.RETRYABLE),
     (400, ErrorClass.PERMANENT), (401, ErrorClass.PAUSE_QUEUE)],
)  # fmt: skip
def test_an_error_without_a_meta_body_is_classified_by_status(status: int, expected: ErrorClass) -> None:
    # GIVEN an error answer that is not Meta JSON (a load balancer's HTML page)
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="<html>Bad Gateway</html>")

    # WHEN a message is sent
    error = send_error(handler)

    # THEN the status decides and is the code
    assert error.error_class is expected
    assert error.code == str(status)
    assert error.http_status == status


def test_the_access_token_never_appears_in_an_error() -> None:
    # GIVEN a provider that echoes the token back in its error message
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": f"bad token {TOKEN}", "code": 190,
                                                   "error_data": {"details": f"token={TOKEN}"}}})  # fmt: skip

    # WHEN a message is sent
    error = send_error(handler)

    # THEN the token is masked everywhere in the exception
    assert TOKEN not in str(error)
    assert TOKEN not in error.message
    assert "***" in error.message
    assert error.error_class is ErrorClass.PAUSE_QUEUE
    assert TOKEN not in repr(provider(handler))


@pytest.mark.parametrize(
    ("exception", "code", "expected"),
    [
        (httpx.ConnectError("refused"), "CONNECT_ERROR", ErrorClass.RETRYABLE),
        (httpx.ConnectTimeout("slow connect"), "CONNECT_TIMEOUT", ErrorClass.RETRYABLE),
        (httpx.PoolTimeout("no connection"), "CONNECT_TIMEOUT", ErrorClass.RETRYABLE),
        (httpx.WriteError("reset while sending"), "WRITE_ERROR", ErrorClass.RETRYABLE),
        (httpx.WriteTimeout("slow send"), "WRITE_ERROR", ErrorClass.RETRYABLE),
        (httpx.ReadTimeout("no answer"), "READ_TIMEOUT", ErrorClass.UNKNOWN_OUTCOME),
        (httpx.ReadError("reset while reading"), "CONNECTION_LOST", ErrorClass.UNKNOWN_OUTCOME),
        (httpx.RemoteProtocolError("server hung up"), "CONNECTION_LOST", ErrorClass.UNKNOWN_OUTCOME),
        (httpx.UnsupportedProtocol("ftp://"), "PROVIDER_CONFIG", ErrorClass.PAUSE_QUEUE),
        (httpx.DecodingError("bad gzip"), "REQUEST_ERROR", ErrorClass.UNKNOWN_OUTCOME),
    ],
)
def test_transport_failures_retry_only_when_the_request_cannot_have_arrived(
    exception: Exception, code: str, expected: ErrorClass
) -> None:
    # GIVEN a transport that fails with `exception`
    def handler(request: httpx.Request) -> httpx.Response:
        raise exception

    # WHEN a message is sent
    error = send_error(handler)

    # THEN not-sent failures retry, sent-but-unanswered ones are unknown outcomes
    assert (error.code, error.error_class) == (code, expected)
    assert error.http_status is None
