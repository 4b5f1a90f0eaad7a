"""`python -m wabacast_local`: run the whole stack on this machine, no AWS account needed."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from wabacast_local.console_site import default_console_dir
from wabacast_local.http_server import PortUnavailableError
from wabacast_local.sandbox_provider import SandboxSettings
from wabacast_local.stack import LocalStack, LocalStackConfig, StackEndpoints, StartupError, default_functions_dir

LOGGER = logging.getLogger("wabacast_local")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _milliseconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more milliseconds, not {text}")
    return value


def _milliseconds_range(text: str) -> tuple[float, float]:
    low_text, separator, high_text = text.partition("-")
    try:
        low = float(low_text)
        high = float(high_text) if separator else low
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be LOW-HIGH milliseconds (e.g. 200-1500), not {text}") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"must be LOW-HIGH milliseconds with 0 <= LOW <= HIGH, not {text}")
    return low, high


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
    parser.add_argument(
        "--console-dir",
        type=Path,
        default=None,
        help="the console/ folder with the web console (default: the checkout this package is installed from)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    delivery = parser.add_argument_group("delivery (the planner's schedule and the senders)")
    delivery.add_argument(
        "--planner-tick",
        type=_positive_float,
        default=1.0,
        metavar="SECONDS",
        help="how often the planner runs; the cloud schedule is rate(1 minute) (default: %(default)s)",
    )
    delivery.add_argument(
        "--account-sync-seconds",
        type=_positive_float,
        default=900.0,
        metavar="SECONDS",
        help="how often every account is read from its provider (quality, tier, templates); the cloud schedule is "
        "rate(15 minutes) (default: %(default)s)",
    )
    delivery.add_argument(
        "--feed-window",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="how many seconds of an account's rate the planner puts on its SQS queue; the cloud uses 60 "
        "(default: %(default)s)",
    )
    delivery.add_argument(
        "--show-metrics",
        action="store_true",
        help="print the functions' CloudWatch EMF metric lines on stdout (default: silenced)",
    )

    sandbox = parser.add_argument_group("sandbox WhatsApp provider (where sandbox accounts send)")
    sandbox.add_argument("--sandbox-port", type=int, default=0, help="its port (default: 0, a free one)")
    sandbox.add_argument(
        "--sandbox-latency-ms",
        type=_milliseconds,
        default=20.0,
        metavar="MS",
        help="least time to answer a send (default: %(default)s)",
    )
    sandbox.add_argument(
        "--sandbox-jitter-ms",
        type=_milliseconds,
        default=60.0,
        metavar="MS",
        help="plus a random 0..MS on each answer (default: %(default)s, so 20-80 ms in all)",
    )
    sandbox.add_argument(
        "--sandbox-failure-rate",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="share of sends answered 500 (Meta code 131000, retryable) (default: %(default)s)",
    )
    sandbox.add_argument(
        "--sandbox-429-rate",
        dest="sandbox_rate_429",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="share of sends answered 429 (Meta code 130429) (default: %(default)s)",
    )
    callbacks = parser.add_argument_group(
        "sandbox status callbacks (signed Meta-format sent/delivered/read posted to the stack's /api/webhooks/meta)"
    )
    callbacks.add_argument(
        "--sandbox-callbacks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="post status callbacks at all (default: on; tests that count webhooks of their own turn them off)",
    )
    callbacks.add_argument(
        "--sandbox-delivered-delay-ms",
        type=_milliseconds_range,
        default=(200.0, 1500.0),
        metavar="LOW-HIGH",
        help="time from sent to delivered, a random value in the range (default: 200-1500)",
    )
    callbacks.add_argument(
        "--sandbox-read-delay-ms",
        type=_milliseconds_range,
        default=(1000.0, 5000.0),
        metavar="LOW-HIGH",
        help="time from delivered to read (default: 1000-5000)",
    )
    callbacks.add_argument(
        "--sandbox-read-rate",
        type=_share,
        default=0.6,
        metavar="SHARE",
        help="share of messages that get read (default: %(default)s)",
    )
    callbacks.add_argument(
        "--sandbox-callback-loss-rate",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="share of callbacks never posted (default: %(default)s)",
    )
    callbacks.add_argument(
        "--sandbox-callback-duplicate-rate",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="share of callbacks posted twice (default: %(default)s)",
    )
    callbacks.add_argument(
        "--sandbox-callback-reorder-rate",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="share of read messages whose read is posted before their delivered (default: %(default)s)",
    )
    return parser.parse_args(argv)


def banner(endpoints: StackEndpoints, state_file: Path) -> str:
    return "\n".join(
        [
            "",
            "wabacast local stack is running (AWS is emulated in memory: data is gone when it stops)",
            "",
            f"  Console         {endpoints.console_url}   (sign in with the demo API key)",
            f"  API             {endpoints.api_url}",
            f"  API docs        {endpoints.docs_url}",
            f"  Admin API key   {endpoints.admin_api_key}",
            f"  Demo API key    {endpoints.api_key}   (business 'Demo Business', id {endpoints.demo_business_id})",
            f"  AWS endpoint    {endpoints.aws_endpoint_url}   (moto; any credentials work)",
            *(
                [
                    f"  Sandbox         {endpoints.sandbox_url}   (WhatsApp provider of sandbox accounts)",
                    f"                  messages: GET {endpoints.sandbox_url}/messages",
                    f"                  status callbacks: GET {endpoints.sandbox_url}/callbacks",
                ]
                if endpoints.sandbox_url
                else []
            ),
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
    # Concurrent sender invocations share the functions' boto3 clients here (in the cloud each execution environment
    # has its own), so urllib3 warns that it discards surplus connections to moto: harmless, and only local.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


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
        console_dir=args.console_dir or default_console_dir(),
        planner_tick_seconds=args.planner_tick,
        account_sync_seconds=args.account_sync_seconds,
        feed_window_seconds=args.feed_window,
        show_metrics=args.show_metrics,
        sandbox=SandboxSettings(
            port=args.sandbox_port,
            latency_ms=args.sandbox_latency_ms,
            jitter_ms=args.sandbox_jitter_ms,
            failure_rate=args.sandbox_failure_rate,
            rate_429=args.sandbox_rate_429,
            callbacks=args.sandbox_callbacks,
            delivered_delay_ms=args.sandbox_delivered_delay_ms,
            read_delay_ms=args.sandbox_read_delay_ms,
            read_rate=args.sandbox_read_rate,
            callback_loss_rate=args.sandbox_callback_loss_rate,
            callback_duplicate_rate=args.sandbox_callback_duplicate_rate,
            callback_reorder_rate=args.sandbox_callback_reorder_rate,
        ),
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
