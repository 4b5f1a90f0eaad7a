"""Local fakes of the WhatsApp providers' HTTP APIs, on 127.0.0.1 with an ephemeral port.

`FakeMetaServer` answers the Cloud API send endpoint and `FakeTwilioServer` the Messages resource, each with a
realistic success body by default. Tests script other answers with `enqueue(...)` (first in, first out; the
default answer applies once the script is used up) and read what was sent from `requests`.

    with FakeMetaServer() as meta:
        meta.enqueue(META_ERRORS["opted_out"])
        ... MetaCloudProvider(base_url=meta.url, ...) ...
        assert meta.requests[0].json()["to"] == "34600000001"

`META_ERRORS` / `twilio_error(...)` hold error bodies as the real APIs write them. `closed_port()` gives a port
nothing listens on (connection refused).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class ScriptedResponse:
    status: int
    body: Any = None  # dict/list -> JSON; str/bytes -> sent as they are
    delay_s: float = 0.0  # wait before answering (the request is recorded at once)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """URL-encoded form fields (first value of each)."""
        return {key: values[0] for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def basic_auth(self) -> tuple[str, str] | None:
        header = self.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        return user, password


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeHttpServer) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients that time out and hang up are part of the tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        response = self.server.fake._respond(request)
        if response.delay_s > 0 and self.server.fake._stopping.wait(response.delay_s):
            self.close_connection = True
            return
        payload = response.payload()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815


class FakeHttpServer:
    """A scripted HTTP server: queued answers first, then `default_response(request)`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[ScriptedResponse] = deque()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def enqueue(self, *responses: ScriptedResponse) -> None:
        with self._lock:
            self._script.extend(responses)

    def _respond(self, request: RecordedRequest) -> ScriptedResponse:
        with self._lock:
            self._requests.append(request)
            scripted = self._script.popleft() if self._script else None
        return scripted if scripted is not None else self.default_response(request)

    def default_response(self, request: RecordedRequest) -> ScriptedResponse:
        return ScriptedResponse(404, {"error": "not found"})


# -- Meta Cloud API ------------------------------------------------------------------------------------------------
META_SEND_PATH = re.compile(r"^/v[0-9]+\.[0-9]+/(?P<phone_number_id>[^/]+)/messages$")


def meta_error(
    code: int,
    http_status: int,
    message: str,
    *,
    error_type: str = "OAuthException",
    subcode: int | None = None,
    details: str | None = None,
    delay_s: float = 0.0,
) -> ScriptedResponse:
    """An error answer as the Graph API writes it."""
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "AbCdEfGhIjKlMnOpQrStUvW"
    return ScriptedResponse(http_status, {"error": error}, delay_s=delay_s)


META_ERRORS: dict[str, ScriptedResponse] = {
    "undeliverable": meta_error(131026, 400, "(#131026) Message Undeliverable.", details="Message Undeliverable."),
    "opted_out": meta_error(
        131050,
        400,
        "(#131050) Unable to deliver the message. This recipient has chosen to stop receiving marketing messages "
        "on WhatsApp from your business.",
        details="Unable to deliver the message. This recipient has chosen to stop receiving marketing messages.",
    ),
    "rate_limited": meta_error(
        130429, 429, "(#130429) Rate limit hit", details="Cloud API message throughput has been reached."
    ),
    "server_error": meta_error(131000, 500, "(#131000) Something went wrong", details="Something went wrong."),
    "token_expired": meta_error(
        190,
        401,
        "Error validating access token: Session has expired on Friday, 01-Jan-26 00:00:00 PST.",
        subcode=463,
    ),
    "template_missing": meta_error(
        132001,
        404,
        "(#132001) Template name does not exist in the translation",
        details="template name (order_update) does not exist in en_US",
    ),
    "spam_limit": meta_error(131048, 400, "(#131048) Spam rate limit hit", details="Message failed to send."),
    "template_paused": meta_error(132015, 400, "(#132015) Template is Paused", details="Template is paused."),
    "unknown_phone_number_id": meta_error(
        100,
        400,
        "Unsupported post request. Object with ID '106540352242922' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation.",
        error_type="GraphMethodException",
        subcode=33,
    ),
    "invalid_parameter": meta_error(100, 400, "(#100) Invalid parameter", details="Parameter 'to' is invalid."),
}


class FakeMetaServer(FakeHttpServer):
    """The Cloud API send endpoint: `POST /{version}/{phone_number_id}/messages` answers a `wamid` by default."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)

    def default_response(self, request: RecordedRequest) -> ScriptedResponse:
        if request.method != "POST" or not META_SEND_PATH.match(request.path):
            return meta_error(100, 404, f"Unknown path components: {request.path}")
        try:
            to = str(request.json().get("to", ""))
        except (ValueError, AttributeError):
            return meta_error(100, 400, "(#100) Invalid parameter", details="Request body is not JSON")
        message_id = f"wamid.HBgLFAKE{next(self._ids):012d}"
        return ScriptedResponse(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": message_id, "message_status": "accepted"}],
            },
        )


# -- Twilio ---------------------------------------------------------------------------------------------------------
# Credentials shaped like real ones (TwilioCredentials validates them), for tests that need some.
TEST_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TEST_AUTH_TOKEN = "fedcba9876543210fedcba9876543210"
TWILIO_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account_sid>AC[0-9a-fA-F]{32})/Messages\.json$")


def twilio_error(code: int, http_status: int, message: str, *, delay_s: float = 0.0) -> ScriptedResponse:
    """An error answer as the Twilio REST API writes it."""
    return ScriptedResponse(
        http_status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": http_status,
        },
        delay_s=delay_s,
    )


class FakeTwilioServer(FakeHttpServer):
    """`POST /2010-04-01/Accounts/{sid}/Messages.json`: checks basic auth, answers a queued Message by default."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._ids = itertools.count(1)

    def default_response(self, request: RecordedRequest) -> ScriptedResponse:
        match = TWILIO_MESSAGES_PATH.match(request.path)
        if request.method != "POST" or match is None:
            return twilio_error(20404, 404, f"The requested resource {request.path} was not found")
        if request.basic_auth() != (self.account_sid, self.auth_token) or match["account_sid"] != self.account_sid:
            return twilio_error(20003, 401, "Authenticate")
        form = request.form()
        sid = f"SM{next(self._ids):032x}"
        now = formatdate(usegmt=True)
        return ScriptedResponse(
            201,
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": "",
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": "queued" if "From" in form else "accepted",
                "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
                "to": form.get("To"),
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
        )
