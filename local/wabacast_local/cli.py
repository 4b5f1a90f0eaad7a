"""`python -m wabacast_local`: run the whole stack on this machine, no AWS account needed."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from wabacast_local.http_server import PortUnavailableError
from wabacast_local.stack import LocalStack, LocalStackConfig, StackEndpoints, StartupError, default_functions_dir

LOGGER = logging.getLogger("wabacast_local")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m wabacast_local",
        description="Run wabacast locally: moto as AWS, the HTTP API on localhost, the real Lambda handlers.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=3000, help="HTTP API port; 0 picks a free one (default: 3000)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".wabacast"),
        help="where local.json (URLs and keys of the running stack) is written (default: %(default)s)",
    )
    parser.add_argument(
        "--authorizer-cache-ttl",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="cache authorizer results per Authorization header value; the cloud uses 60 (default: 0, no cache)",
    )
    parser.add_argument(
        "--functions-dir",
        type=Path,
        default=None,
        help="the functions/ folder with the Lambda code (default: the checkout this package is installed from)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def banner(endpoints: StackEndpoints, state_file: Path) -> str:
    return "\n".join(
        [
            "",
            "wabacast local stack is running (AWS is emulated in memory: data is gone when it stops)",
            "",
            f"  API             {endpoints.api_url}",
            f"  API docs        {endpoints.docs_url}",
            f"  Admin API key   {endpoints.admin_api_key}",
            f"  Demo API key    {endpoints.api_key}   (business 'Demo Business', id {endpoints.demo_business_id})",
            f"  AWS endpoint    {endpoints.aws_endpoint_url}   (moto; any credentials work)",
            "",
            "  Try it:",
            f'    curl -H "Authorization: Bearer {endpoints.api_key}" {endpoints.api_url}/api/whatsapp/accounts',
            "",
            f"  These values are in {state_file} while the stack runs. Ctrl-C stops it.",
            "",
        ]
    )


def configure_logging(level: str) -> None:
    """The stack's own logs on stderr at `level`; other libraries' only from WARNING.

    The stack's logger gets its own handler: Powertools Logger(service="wabacast") puts a filter on the root
    logger's handlers that drops every record whose logger name contains "wabacast" (to avoid duplicates of its
    own output), which would swallow all "wabacast_local.*" records.
    """
    log_format = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format=log_format)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(log_format))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(level)
    LOGGER.propagate = False


class _StopRequests:
    """Turns SIGINT/SIGTERM into a flag the main loop polls; a second signal aborts a stuck startup or shutdown.

    The handler only sets a boolean: taking a lock in a signal handler can deadlock with the interrupted code.
    """

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    config = LocalStackConfig(
        host=args.host,
        port=args.port,
        state_dir=args.state_dir,
        authorizer_cache_ttl_seconds=args.authorizer_cache_ttl,
        functions_dir=args.functions_dir or default_functions_dir(),
    )
    stop_requests = _StopRequests()
    stop_requests.install()
    stack = LocalStack(config)
    started = time.monotonic()
    try:
        try:
            endpoints = stack.start()
        except KeyboardInterrupt:
            return 0
        except (StartupError, PortUnavailableError) as error:
            LOGGER.error("the local stack could not start: %s", error)
            return 1
        except Exception:
            LOGGER.exception("the local stack could not start")
            return 1
        LOGGER.info("started in %.1f s", time.monotonic() - started)
        print(banner(endpoints, stack.state.path), flush=True)
        while not stop_requests.requested:
            time.sleep(0.2)
        LOGGER.info("stopping")
        stack.stop()
    except KeyboardInterrupt:
        # A second Ctrl-C while stopping: finish quickly, still without a traceback.
        stack.stop()
    LOGGER.info("stopped")
    return 0
