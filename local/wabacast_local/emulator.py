"""The AWS emulator: moto server, in this process."""

from __future__ import annotations

import logging

LOGGER = logging.getLogger(__name__)


class MotoEmulator:
    """moto's threaded server as a stack component; it keeps everything in memory, so each run starts empty."""

    name = "aws-emulator"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: object | None = None
        self._endpoint_url: str | None = None

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise RuntimeError("the AWS emulator is not started")
        return self._endpoint_url

    def start(self) -> None:
        # Imported here: moto is a local-only dependency and takes a moment to import.
        from moto.server import ThreadedMotoServer

        # werkzeug logs every emulated AWS call at INFO; the stack logs the API calls that matter.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address=self._host, port=self._port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self._endpoint_url = f"http://{host}:{port}"
        LOGGER.debug("moto server listening on %s", self._endpoint_url)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()  # type: ignore[attr-defined]  # moto ships no type information
