"""A kept-alive connection the server closed while it sat in the pool: the Meta adapter sends the request again
once, on a new connection, when none of it was written; a connection that breaks after the request left stays an
unknown outcome. Against a local HTTP server that closes idle connections (no internet)."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import httpcore._sync.http11 as httpcore_http11
import httpx
import pytest

from wabacast.domain.jobs import ErrorClass
from wabacast.providers.base import OutboundMessage, ProviderError
from wabacast.providers.meta import MetaCloudProvider

IDLE_CLOSE_S = 0.05
MESSAGE = OutboundMessage(
    job_id="j", to="+34600000001", from_number="+34900000000", template_name="order_update", language="en"
)


class IdleClosingServer:
    """HTTP/1.1 with keep-alive that resets a connection idle for IDLE_CLOSE_S (as load balancers and servers do),
    or, with `reset_after_reading`, resets one right after reading a request, without answering."""

    def __init__(self, *, reset_after_reading: Callable[[int], bool] = lambda count: False) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests = 0
        self.connections = 0
        self._reset_after_reading = reset_after_reading
        self._lock = threading.Lock()
        self._running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._running = False
        self._listener.close()

    def _accept(self) -> None:
        while self._running:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(IDLE_CLOSE_S)
        buffer = b""
        try:
            while True:
                try:
                    chunk = connection.recv(65536)
                except TimeoutError:
                    break  # idle: close it under the client's feet
                if not chunk:
                    return
                buffer += chunk
                head, separator, rest = buffer.partition(b"\r\n\r\n")
                if not separator:
                    continue
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                if len(rest) < length:
                    continue
                buffer = rest[length:]
                with self._lock:
                    self.requests += 1
                    count = self.requests
                if self._reset_after_reading(count):
                    break
                body = json.dumps({"messages": [{"id": f"wamid.{count}"}]}).encode()
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
        finally:
            # RST rather than FIN: the client's next write on this connection fails at once.
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()


@pytest.fixture
def pool_misses_the_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """The race this is about: the server's close reaches us after the pool checked the idle connection (httpcore
    looks whether an idle socket became readable just before reusing it; the close can land right after). Here the
    check is made to miss the close every time, so the race happens on every reuse."""

    def keepalive_expiry_only(self: httpcore_http11.HTTP11Connection) -> bool:
        expire_at = self._expire_at
        return expire_at is not None and time.monotonic() > expire_at

    monkeypatch.setattr(httpcore_http11.HTTP11Connection, "has_expired", keepalive_expiry_only)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as shared:
        yield shared


def provider_for(server: IdleClosingServer, client: httpx.Client) -> MetaCloudProvider:
    return MetaCloudProvider(server.url, "v24.0", "106540352242922", "token", client, 5.0)


def test_a_stale_kept_alive_connection_is_retried_once_on_a_new_one(
    pool_misses_the_close: None, client: httpx.Client
) -> None:
    # GIVEN a first send over a kept-alive connection, which the server then closes for idleness
    server = IdleClosingServer()
    provider = provider_for(server, client)
    assert provider.send(MESSAGE).provider_message_id == "wamid.1"
    time.sleep(IDLE_CLOSE_S * 6)

    # WHEN the next send takes that connection from the pool
    receipt = provider.send(MESSAGE)

    # THEN it is sent (on a second connection) instead of being declared an unknown outcome, and the server saw it
    # once: the failed attempt never reached it
    assert receipt.provider_message_id == "wamid.2"
    assert (server.requests, server.connections) == (2, 2)
    server.close()


def test_a_connection_broken_after_the_request_left_is_still_an_unknown_outcome(client: httpx.Client) -> None:
    # GIVEN a server that reads the second request whole and then drops the connection without an answer
    server = IdleClosingServer(reset_after_reading=lambda count: count == 2)
    provider = provider_for(server, client)
    provider.send(MESSAGE)

    # WHEN the second send goes out on the kept-alive connection
    with pytest.raises(ProviderError) as raised:
        provider.send(MESSAGE)

    # THEN it is not sent again: the server may have acted on it
    assert raised.value.code == "CONNECTION_LOST"
    assert raised.value.error_class is ErrorClass.UNKNOWN_OUTCOME
    assert server.requests == 2
    server.close()
