"""The sandbox WhatsApp provider (wabacast_local.sandbox) as a stack component.

It starts before the functions' environment is applied: its URL becomes their `SANDBOX_BASE_URL`, so sandbox
accounts send to it exactly as Meta accounts send to the Graph API. What it accepted is at `GET <url>/messages`,
the status callbacks it posted back to the stack's Meta webhook at `GET <url>/callbacks`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from wabacast_local.sandbox import SandboxConfigError, SandboxServer

LOGGER = logging.getLogger(__name__)


class SandboxStartupError(RuntimeError):
    """The sandbox could not start (bad chaos settings, or its port is taken); the message says which."""


@dataclass(frozen=True)
class SandboxSettings:
    """Chaos settings of the local run: realistic but gentle by default (a 20-80 ms answer, no errors)."""

    host: str = "127.0.0.1"
    port: int = 0
    latency_ms: float = 20.0
    jitter_ms: float = 60.0
    failure_rate: float = 0.0
    rate_429: float = 0.0
    # Status callbacks (sent, delivered, read) to the stack's Meta webhook: a few seconds apart, no chaos.
    callbacks: bool = True
    delivered_delay_ms: tuple[float, float] = (200.0, 1500.0)
    read_delay_ms: tuple[float, float] = (1000.0, 5000.0)
    read_rate: float = 0.6
    callback_loss_rate: float = 0.0
    callback_duplicate_rate: float = 0.0
    callback_reorder_rate: float = 0.0


class SandboxProvider:
    """Plays the WhatsApp provider for sandbox accounts: a SandboxServer on a loopback port."""

    name = "sandbox-provider"

    def __init__(self, settings: SandboxSettings) -> None:
        self._settings = settings
        self._server: SandboxServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox provider is not started")
        return self._server.url

    @property
    def server(self) -> SandboxServer:
        if self._server is None:
            raise RuntimeError("the sandbox provider is not started")
        return self._server

    def start(self) -> None:
        settings = self._settings
        try:
            server = SandboxServer(
                settings.host,
                settings.port,
                latency_ms=settings.latency_ms,
                jitter_ms=settings.jitter_ms,
                failure_rate=settings.failure_rate,
                rate_429=settings.rate_429,
                delivered_delay_ms=settings.delivered_delay_ms,
                read_delay_ms=settings.read_delay_ms,
                read_rate=settings.read_rate,
                callback_loss_rate=settings.callback_loss_rate,
                callback_duplicate_rate=settings.callback_duplicate_rate,
                callback_reorder_rate=settings.callback_reorder_rate,
            )
        except SandboxConfigError as error:
            raise SandboxStartupError(f"invalid sandbox settings: {error}") from None
        try:
            server.start()
        except OSError as error:
            raise SandboxStartupError(
                f"the sandbox provider cannot listen on {settings.host}:{settings.port} ({error.strerror or error}); "
                "use --sandbox-port 0 for a free port"
            ) from None
        self._server = server
        LOGGER.debug("sandbox provider listening on %s", server.url)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()


class SandboxCallbacks:
    """Points the sandbox's status callbacks at the stack's Meta webhook, signed with the stack's app secret.

    A component of its own, started once the HTTP API listens (the sandbox starts before the API's URL is known)
    and stopped before it, so no callback is posted to a listener that is gone.
    """

    name = "sandbox-callbacks"

    def __init__(self, server: SandboxServer, webhook_url: str, app_secret: str) -> None:
        self._server = server
        self._webhook_url = webhook_url
        self._app_secret = app_secret

    def start(self) -> None:
        self._server.configure(callback_url=self._webhook_url, app_secret=self._app_secret)

    def stop(self) -> None:
        # No new callbacks are planned; those not yet due are dropped, posts under way finish.
        self._server.configure(callback_url=None)
        self._server.callbacks.stop()
