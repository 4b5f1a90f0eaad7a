"""The ticker playing the planner's EventBridge schedule."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from wabacast_local.lambda_runtime import FunctionConfig, LocalLambdaFunction
from wabacast_local.scheduler import TICK_EVENT, IdlePlannerTickFilter, ScheduleTicker


class FakePlanner:
    def __init__(self, work_s: float = 0.0, fail_on: set[int] | None = None) -> None:
        self.calls: list[tuple[float, dict[str, Any], int]] = []
        self.work_s = work_s
        self.fail_on = fail_on or set()
        self.running = 0
        self.peak = 0
        self.contexts: list[Any] = []
        self._lock = threading.Lock()
        self.function = LocalLambdaFunction(
            FunctionConfig(name="wabacast-planner", timeout_seconds=300, memory_limit_in_mb=512), self._handle
        )

    def _handle(self, event: dict[str, Any], context: Any) -> Any:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            number = len(self.calls) + 1
            self.calls.append((time.monotonic(), event, context.get_remaining_time_in_millis()))
            self.contexts.append(context)
        try:
            if self.work_s:
                time.sleep(self.work_s)
            if number in self.fail_on:
                raise RuntimeError(f"tick {number} broke")
            return {"accounts": 0}
        finally:
            with self._lock:
                self.running -= 1


def run_for(ticker: ScheduleTicker, seconds: float) -> None:
    ticker.start()
    try:
        time.sleep(seconds)
    finally:
        ticker.stop()


def run_until(ticker: ScheduleTicker, done: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Run the ticker until `done()` holds (or the timeout passes): a loaded machine delays ticks, not outcomes."""
    ticker.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        ticker.stop()


def test_ticks_invoke_the_planner_with_the_schedules_event_and_a_300_s_budget():
    # GIVEN a ticker every 0.1 s
    planner = FakePlanner()
    ticker = ScheduleTicker(planner.function, interval_s=0.1)

    # WHEN it runs for a while
    run_until(ticker, lambda: len(planner.calls) >= 3)

    # THEN the planner ran at most every 0.1 s with {"source": "wabacast.tick"} and most of 300 s left each time
    assert len(planner.calls) >= 3
    starts = [started for started, _, _ in planner.calls]
    assert all(later - earlier >= 0.09 for earlier, later in itertools.pairwise(starts))
    assert all(event == TICK_EVENT == {"source": "wabacast.tick"} for _, event, _ in planner.calls)
    assert all(299_000 < remaining <= 300_000 for _, _, remaining in planner.calls)
    context = planner.contexts[0]
    assert context.function_name == "wabacast-planner"
    assert context.memory_limit_in_mb == 512
    assert context.invoked_function_arn.endswith(":function:wabacast-planner")


def test_ticks_never_overlap_and_a_long_tick_delays_the_next():
    # GIVEN a planner that takes longer than the interval
    planner = FakePlanner(work_s=0.25)
    ticker = ScheduleTicker(planner.function, interval_s=0.05)

    # WHEN it runs
    run_for(ticker, 0.9)

    # THEN one tick at a time, back to back
    assert planner.peak == 1
    starts = [started for started, _, _ in planner.calls]
    assert all(later - earlier >= 0.24 for earlier, later in itertools.pairwise(starts))


def test_a_failed_tick_is_logged_and_the_next_one_runs(caplog):
    # GIVEN a planner whose second tick raises
    planner = FakePlanner(fail_on={2})
    ticker = ScheduleTicker(planner.function, interval_s=0.05)

    # WHEN the ticker runs
    with caplog.at_level(logging.WARNING, logger="wabacast_local"):
        run_until(ticker, lambda: len(planner.calls) >= 4)

    # THEN the failure is logged (with the traceback, by the runtime) and ticking goes on
    assert len(planner.calls) >= 4
    assert ticker.failures == 1
    assert "tick 2 broke" in caplog.text
    assert "tick 2 failed" in caplog.text


def test_stop_is_prompt_and_the_running_tick_sees_its_time_run_out():
    # GIVEN a tick in progress that watches its remaining time, as the planner does between pages
    seen: list[int] = []
    started = threading.Event()

    def planner(event: Any, context: Any) -> Any:
        started.set()
        while context.get_remaining_time_in_millis() > 10_000:
            time.sleep(0.01)
        seen.append(context.get_remaining_time_in_millis())
        return {}

    ticker = ScheduleTicker(LocalLambdaFunction(FunctionConfig(name="p", timeout_seconds=300), planner), 0.01)
    ticker.start()
    assert started.wait(2)

    # WHEN the ticker stops
    begin = time.monotonic()
    ticker.stop()

    # THEN the tick saw no time left and finished, at once
    assert seen == [0]
    assert time.monotonic() - begin < 1


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        ScheduleTicker(FakePlanner().function, interval_s=0)


def make_record(message: str, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("wabacast", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_idle_planner_ticks_are_not_logged_busy_ones_are():
    tick_filter = IdlePlannerTickFilter()
    idle = {"accounts": 0, "jobs_planned": 0, "jobs_fed": 0, "queues_completed": 0, "skipped_busy": 0, "errors": []}
    assert not tick_filter.filter(make_record("planner tick", **idle))
    assert tick_filter.filter(make_record("planner tick", **{**idle, "accounts": 1}))
    assert tick_filter.filter(make_record("planner tick", **{**idle, "errors": ["acc_1: boom"]}))
    assert tick_filter.filter(make_record("something else"))


def test_the_filter_is_installed_while_the_ticker_runs():
    # GIVEN the functions' logger
    functions_logger = logging.getLogger("wabacast-test-service")
    ticker = ScheduleTicker(FakePlanner().function, interval_s=10, quiet_idle_ticks_of="wabacast-test-service")

    # WHEN the ticker runs, and then stops
    ticker.start()
    installed = [f for f in functions_logger.filters if isinstance(f, IdlePlannerTickFilter)]
    ticker.stop()

    # THEN idle ticks are filtered only meanwhile
    assert len(installed) == 1
    assert not [f for f in functions_logger.filters if isinstance(f, IdlePlannerTickFilter)]
