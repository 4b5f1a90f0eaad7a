"""Plays EventBridge Scheduler's recurring schedules of the stack (moto stores schedules but never fires them).

In the cloud a `rate(1 minute)` schedule invokes the planner with `{"source": "wabacast.tick"}`, and a
`rate(15 minutes)` one the account sync with `{"source": "wabacast.account-sync"}`. Locally a ticker thread per
schedule invokes the same handler every `interval_s` (the planner every 1 s by default, so a started queue moves at
once; the API's immediate planner start is a Lambda invoke that the local settings leave out; the account sync
every 900 s as in the cloud, `--account-sync-seconds` to shorten it). Differences, on purpose:

  - ticks never overlap: a tick that runs longer than the interval delays the next one (the cloud fires on time
    and the planner's per-account lease keeps overlapping ticks apart);
  - a failed tick is logged and the next one runs as usual (the cloud retries a tick it could not deliver; a
    tick that raised is not retried either);
  - at shutdown the running tick sees its remaining time drop to zero, so the planner stops after the page it is
    on, as it does near its timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from wabacast_local.lambda_runtime import FunctionError, Handler, LocalLambdaFunction

LOGGER = logging.getLogger(__name__)

TICK_EVENT: dict[str, Any] = {"source": "wabacast.tick"}
ACCOUNT_SYNC_EVENT: dict[str, Any] = {"source": "wabacast.account-sync"}


class _ShutdownAwareContext:
    """The runtime's context, except that the remaining time is zero once the stack is stopping."""

    def __init__(self, context: Any, stopping: threading.Event) -> None:
        self._context = context
        self._stopping = stopping

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def get_remaining_time_in_millis(self) -> int:
        if self._stopping.is_set():
            return 0
        remaining: int = self._context.get_remaining_time_in_millis()
        return remaining


class ScheduleTicker:
    """Invokes `function` with `event` every `interval_s` seconds, one invocation at a time."""

    def __init__(
        self,
        function: LocalLambdaFunction,
        interval_s: float,
        event: dict[str, Any] | None = None,
        name: str = "planner-schedule",
        quiet_idle_ticks_of: str | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the schedule interval must be positive")
        self.name = name
        self.interval_s = interval_s
        self.event = dict(TICK_EVENT if event is None else event)
        self.ticks = 0
        self.failures = 0
        self._stopping = threading.Event()
        self._function = LocalLambdaFunction(function.config, self._wrap(function.handler))
        self._thread: threading.Thread | None = None
        # The functions' logger (POWERTOOLS_SERVICE_NAME) whose idle "planner tick" lines are dropped while running.
        self._quiet_logger = quiet_idle_ticks_of
        self._tick_filter: logging.Filter | None = None

    def _wrap(self, handler: Handler) -> Handler:
        stopping = self._stopping

        def shutdown_aware_handler(event: Any, context: Any) -> Any:
            return handler(event, _ShutdownAwareContext(context, stopping))

        return shutdown_aware_handler

    def start(self) -> None:
        self._stopping.clear()
        if self._quiet_logger is not None:
            self._tick_filter = IdlePlannerTickFilter()
            logging.getLogger(self._quiet_logger).addFilter(self._tick_filter)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=timeout_s)
            if thread.is_alive():
                LOGGER.warning("the %s tick still runs after %.0f s; not waiting for it", self.name, timeout_s)
        if self._tick_filter is not None and self._quiet_logger is not None:
            logging.getLogger(self._quiet_logger).removeFilter(self._tick_filter)
            self._tick_filter = None

    def tick(self) -> Any:
        """One invocation; returns its result, or None when it failed (logged)."""
        self.ticks += 1
        try:
            return self._function.invoke(self.event)
        except FunctionError:
            # The runtime logged the traceback; the next tick runs as usual.
            self.failures += 1
            if not self._stopping.is_set():
                LOGGER.warning("%s: tick %d failed; the next runs in %.1f s", self.name, self.ticks, self.interval_s)
            return None

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval_s
        while not self._stopping.wait(max(0.0, next_at - time.monotonic())):
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # not the function's failure: ours; keep ticking
                LOGGER.exception("%s: tick %d could not be run", self.name, self.ticks)
            # Fixed rate, no catch-up: a long tick is followed by the next one at once, never by a burst.
            next_at = max(started + self.interval_s, time.monotonic())


class IdlePlannerTickFilter(logging.Filter):
    """Drops the planner's "planner tick" log line when the tick found nothing to do.

    A tick every second would otherwise print a line every second; a tick that planned, fed, skipped a busy account
    or hit an error is still logged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "planner tick":
            return True
        busy = any(getattr(record, key, 0) for key in ("accounts", "jobs_planned", "jobs_fed", "skipped_busy"))
        return busy or bool(getattr(record, "errors", None))
