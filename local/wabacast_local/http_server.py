"""A real HTTP listener in front of `HttpApi`: one thread per connection, like the clients of a cloud API expect."""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from wabacast_local.console_site import ConsoleSite, is_console_path
from wabacast_local.http_api import HttpApi, HttpRequest, HttpResponse

LOGGER = logging.getLogger(__name__)

# API Gateway refuses larger payloads before any function runs (HTTP API: 10 MB).
MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024


class PortUnavailableError(RuntimeError):
    pass


class _GatewayRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients of API Gateway get
    api: ClassVar[HttpApi]
    # The web console's files, on every path outside /api (CloudFront and S3 in the cloud); None: the API only.
    console: ClassVar[ConsoleSite | None] = None

    # http.server dispatches on do_<METHOD>; API Gateway passes every method to the route table.
    def do_GET(self) -> None:
        self._proxy()

    def do_POST(self) -> None:
        self._proxy()

    def do_PUT(self) -> None:
        self._proxy()

    def do_PATCH(self) -> None:
        self._proxy()

    def do_DELETE(self) -> None:
        self._proxy()

    def do_HEAD(self) -> None:
        self._proxy()

    def do_OPTIONS(self) -> None:
        self._proxy()

    def _proxy(self) -> None:
        started = time.monotonic()
        body = self._read_body()
        if body is None:
            return
        raw_path, _, raw_query_string = self.path.partition("?")
        if self.console is not None and is_console_path(raw_path):
            self._write(self.console.respond(self.command, raw_path))
            LOGGER.debug("%s %s (console)", self.command, self.path)
            return
        request = HttpRequest(
            method=self.command,
            raw_path=raw_path,
            raw_query_string=raw_query_string,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        try:
            response = self.api.handle(request)
        except Exception:
            LOGGER.exception("gateway failed on %s %s", self.command, self.path)
            response = HttpResponse(500, [("content-type", "application/json")], b'{"message":"Internal Server Error"}')
        self._write(response)
        LOGGER.info(
            "%s %s -> %d (%.0f ms)", self.command, self.path, response.status, (time.monotonic() - started) * 1000
        )

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        length_header = self.headers.get("Content-Length")
        if not length_header:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            self._reject(400, "Bad Request")
            return None
        if length > MAX_REQUEST_BODY_BYTES:
            self._reject(413, "Request Entity Too Large")
            return None
        return self.rfile.read(length)

    def _read_chunked_body(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self._reject(400, "Bad Request")
                return None
            if size == 0:
                # Trailers end with an empty line.
                while self.rfile.readline(1024).strip():
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_REQUEST_BODY_BYTES:
                self._reject(413, "Request Entity Too Large")
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _reject(self, status: int, message: str) -> None:
        self.close_connection = True
        body = f'{{"message":"{message}"}}'.encode()
        self._write(HttpResponse(status, [("content-type", "application/json"), ("connection", "close")], body))

    def _write(self, response: HttpResponse) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client hung up before its answer (it timed out, or was stopped): what API Gateway sees as a
            # closed connection, not a server error; the request itself was handled and logged.
            self.close_connection = True
            LOGGER.debug("%s %s: the client closed the connection before the answer", self.command, self.path)

    def version_string(self) -> str:
        return "wabacast-local"

    def log_message(self, format: str, *args: object) -> None:
        # Requests are logged once, with their duration, by _proxy; this keeps protocol errors visible.
        LOGGER.debug(format, *args)


class HttpApiServer:
    """The gateway's listener as a stack component: `start()` binds and serves in a thread, `stop()` shuts down."""

    name = "http-api"

    def __init__(
        self, api: HttpApi, host: str = "127.0.0.1", port: int = 3000, console: ConsoleSite | None = None
    ) -> None:
        self._api = api
        self._console = console
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the HTTP API server is not started")
        host, port = self._server.server_address[:2]
        shown_host = "localhost" if host in ("127.0.0.1", "::1", "0.0.0.0", "::") else str(host)  # noqa: S104
        return f"http://{shown_host}:{port}"

    def start(self) -> None:
        handler = type("GatewayRequestHandler", (_GatewayRequestHandler,), {"api": self._api, "console": self._console})
        try:
            server = ThreadingHTTPServer((self._host, self._port), handler)
        except OSError as error:
            raise PortUnavailableError(
                f"cannot listen on {self._host}:{self._port} ({error.strerror}): is another stack running? "
                "Stop it, or pick another port (make run PORT=3001, or --port 0 for any free port)"
            ) from error
        # Requests in flight must not hold the process at shutdown (a local stack is stopped with Ctrl-C).
        server.daemon_threads = True
        self._server = server
        # A short poll interval keeps shutdown (Ctrl-C, test teardown) quick.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
