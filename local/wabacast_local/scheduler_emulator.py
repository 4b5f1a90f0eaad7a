"""Plays EventBridge Scheduler for the schedules the functions create in the stack's schedule group.

moto stores schedules and never fires them. This component lists the group's schedules every `poll_interval_s`
(0.5 s), works out which occurrences are due with `schedule_expressions`, and delivers them as AWS does:

  - `at()` fires once at its time in `ScheduleExpressionTimezone`; one whose time has passed fires at once.
    `ActionAfterCompletion: DELETE` deletes it after the invocation; with NONE it stays and does not fire again.
    StartDate and EndDate are ignored for one-time schedules, as AWS does.
  - `cron()` and `rate()` fire for each occurrence from the moment the emulator first sees the schedule (minus
    `grace_s`, so a schedule created just before an occurrence still gets it) and not before StartDate or at/after
    EndDate; occurrences from before that are not backfilled. An occurrence between two polls fires once.
    `rate()` counts from StartDate, else from the schedule's creation. A DISABLED schedule skips what falls due
    meanwhile. A new expression, time zone or StartDate starts the count again; other updates (input, state,
    target) keep it, so an occurrence never fires twice.
  - The target is a Lambda function ARN, looked up by ARN or function name among the stack's functions. The
    Input (JSON) gets EventBridge Scheduler's context attributes substituted: <aws.scheduler.schedule-arn>,
    <aws.scheduler.scheduled-time> (e.g. 2026-11-29T09:00:00Z), <aws.scheduler.execution-id>,
    <aws.scheduler.attempt-number>.
  - Scheduler invokes Lambda *asynchronously* (Lambda developer guide, "Invoke a Lambda function on a schedule"):
    the schedule's invocation succeeds once Lambda has the event. A function error is then Lambda's business: it
    retries the same event twice (about 1 and 2 minutes later in the cloud; `retry_delay_s` here) and then sends
    an invocation record to the function's on-failure destination (`on_failure_queues`, an SQS queue ARN per
    function name, as the CDK stack configures the scheduler function), or discards the event when it has none.
    The schedule's RetryPolicy and dead-letter queue only see failures of the invoke call itself; locally the one
    possible failure is a target that is not one of the stack's functions, which AWS does not retry
    (ResourceNotFound): it goes to Target.DeadLetterConfig's SQS queue at once, with the message attributes AWS
    documents for scheduler dead-letter events.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from wabacast_local.lambda_runtime import FunctionError, LocalLambdaFunction
from wabacast_local.schedule_expressions import (
    AtExpression,
    CronExpression,
    RateExpression,
    ScheduleExpression,
    UnsupportedExpressionError,
    parse_expression,
    zone,
)

LOGGER = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Lambda's default for asynchronous invocations (MaximumRetryAttempts of the function's event invoke config).
LAMBDA_ASYNC_RETRIES = 2
# At most this many occurrences of one schedule per poll: a clock that jumps days ahead must not flood the stack.
MAX_OCCURRENCES_PER_POLL = 100


def utc_now() -> datetime:
    return datetime.now(UTC)


def scheduled_time_text(instant: datetime) -> str:
    """<aws.scheduler.scheduled-time>: ISO 8601 in UTC to the second, e.g. 2026-11-29T09:00:00Z."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def substitute_context_attributes(
    text: str, schedule_arn: str, scheduled_time: datetime, execution_id: str, attempt_number: int
) -> str:
    replacements = {
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.scheduled-time>": scheduled_time_text(scheduled_time),
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": str(attempt_number),
    }
    for keyword, value in replacements.items():
        text = text.replace(keyword, value)
    return text


def lambda_invocation_record(
    function: LocalLambdaFunction,
    request_id: str,
    invoke_count: int,
    event: Any,
    failure: BaseException | None,
    now: datetime,
) -> dict[str, Any]:
    """What Lambda sends to an on-failure destination once an asynchronous event has used up its retries."""
    return {
        "version": "1.0",
        "timestamp": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function.config.arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": str(failure) if failure is not None else "",
            "errorType": type(failure).__name__ if failure is not None else "Unhandled",
            "requestId": request_id,
        },
    }


def function_name_of(arn_or_name: str) -> str:
    """`arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]` -> `<name>`; a plain name stays."""
    parts = arn_or_name.split(":")
    if len(parts) >= 7 and parts[2] == "lambda" and parts[5] == "function":
        return parts[6]
    return arn_or_name


def _as_utc(value: Any) -> datetime | None:
    """boto3 returns datetimes; moto may store epoch seconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)


@dataclass
class _Tracker:
    """What the emulator knows about one version of a schedule (same name, creation, expression, zone, start)."""

    key: tuple[Any, ...]
    # Every occurrence up to here was handled (fired, skipped while disabled, or before the emulator saw it).
    horizon: datetime
    rate_anchor: datetime
    fired_one_time: bool = False


@dataclass
class Delivery:
    """One occurrence handed to a target (kept for tests and logs)."""

    schedule_name: str
    scheduled_time: datetime
    execution_id: str
    event: Any = None
    dead_lettered: bool = False


@dataclass
class _Cached:
    last_modified: Any
    detail: dict[str, Any] = field(default_factory=dict)


class SchedulerEmulator:
    """A component: fires the due schedules of one schedule group on the stack's local functions."""

    name = "scheduler-emulator"

    def __init__(
        self,
        scheduler: Any,
        sqs: Any,
        functions: Mapping[str, LocalLambdaFunction],
        group_name: str,
        *,
        poll_interval_s: float = 0.5,
        retry_delay_s: float = 1.0,
        lambda_async_retries: int = LAMBDA_ASYNC_RETRIES,
        grace_s: float = 5.0,
        clock: Clock = utc_now,
        max_concurrent_invocations: int = 4,
        on_failure_queues: Mapping[str, str] | None = None,
    ) -> None:
        if poll_interval_s <= 0:
            raise ValueError("the poll interval must be positive")
        self._scheduler = scheduler
        self._sqs = sqs
        self._functions = dict(functions)
        self._group_name = group_name
        self.poll_interval_s = poll_interval_s
        self._retry_delay_s = retry_delay_s
        self._lambda_async_retries = lambda_async_retries
        self._grace = timedelta(seconds=grace_s)
        self._clock = clock
        self._max_concurrent = max_concurrent_invocations
        self._on_failure_queues = dict(on_failure_queues or {})
        self._trackers: dict[str, _Tracker] = {}
        self._details: dict[str, _Cached] = {}
        self._warned: set[tuple[str, ...]] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending: set[Future[None]] = set()
        self._pending_lock = threading.Lock()
        # The latest deliveries, for logs and tests (bounded: a stack runs for days).
        self.deliveries: deque[Delivery] = deque(maxlen=1000)

    # --- component -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._executor = ThreadPoolExecutor(self._max_concurrent, thread_name_prefix="scheduler-target")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=timeout_s)
        if not self.drain(timeout_s):
            LOGGER.warning("%s: invocations still run after %.0f s; not waiting for them", self.name, timeout_s)
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait for the asynchronous invocations in flight (retries included); False when some still run."""
        with self._pending_lock:
            pending = list(self._pending)
        deadline = threading.Event()
        timer = threading.Timer(timeout_s, deadline.set)
        timer.start()
        try:
            for future in pending:
                while not future.done() and not deadline.is_set():
                    deadline.wait(0.02)
        finally:
            timer.cancel()
        return all(future.done() for future in pending)

    def _run(self) -> None:
        while not self._stopping.wait(self.poll_interval_s):
            try:
                self.poll_once()
            except Exception:  # a moto hiccup must not stop the schedules: log and poll again
                LOGGER.exception("%s: polling the schedule group %s failed", self.name, self._group_name)

    # --- one poll --------------------------------------------------------------------------------------------

    def poll_once(self) -> None:
        """List the group's schedules, and deliver every occurrence due by now."""
        now = self._clock()
        seen: set[str] = set()
        for summary in self._list_schedules():
            name = summary["Name"]
            seen.add(name)
            detail = self._detail(name, summary.get("LastModificationDate"))
            if detail is not None:
                self._evaluate(detail, now)
        for gone in set(self._trackers) - seen:
            del self._trackers[gone]
        for gone in set(self._details) - seen:
            del self._details[gone]

    def _list_schedules(self) -> list[dict[str, Any]]:
        schedules: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"GroupName": self._group_name}
        while True:
            page = self._scheduler.list_schedules(**kwargs)
            # moto matches the group name as a substring: keep only this group's schedules.
            schedules.extend(item for item in page.get("Schedules", []) if item.get("GroupName") == self._group_name)
            token = page.get("NextToken")
            if not token:
                return schedules
            kwargs["NextToken"] = token

    def _detail(self, name: str, last_modified: Any) -> dict[str, Any] | None:
        cached = self._details.get(name)
        if cached is not None and cached.last_modified == last_modified:
            return cached.detail
        try:
            detail: dict[str, Any] = self._scheduler.get_schedule(Name=name, GroupName=self._group_name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None  # deleted between the listing and now
            raise
        self._details[name] = _Cached(last_modified, detail)
        return detail

    def _evaluate(self, detail: dict[str, Any], now: datetime) -> None:
        name = detail["Name"]
        text = detail["ScheduleExpression"]
        timezone_name = detail.get("ScheduleExpressionTimezone") or "UTC"
        try:
            expression = parse_expression(text)
            timezone = zone(timezone_name)
        except UnsupportedExpressionError as error:
            self._warn_once(
                (name, text, timezone_name),
                "schedule %s: cannot evaluate %r in %s (%s); it will not fire locally",
                name,
                text,
                timezone_name,
                error,
            )
            return
        start = _as_utc(detail.get("StartDate"))
        end = _as_utc(detail.get("EndDate"))
        creation = _as_utc(detail.get("CreationDate"))
        tracker = self._tracker(name, (creation, text, timezone_name, start), now, start, creation)
        enabled = detail.get("State", "ENABLED") == "ENABLED"

        if isinstance(expression, AtExpression):
            due = expression.instant(timezone)
            if enabled and not tracker.fired_one_time and due <= now:
                tracker.fired_one_time = True
                self._deliver(detail, due)
                if detail.get("ActionAfterCompletion") == "DELETE":
                    self._delete(name)
            return

        if not enabled:
            tracker.horizon = max(tracker.horizon, now)
            return
        occurrences = self._due(expression, timezone, tracker, now, end)
        tracker.horizon = max(tracker.horizon, now)
        for occurrence in occurrences:
            self._deliver(detail, occurrence)
        if end is not None and now >= end and detail.get("ActionAfterCompletion") == "DELETE":
            self._delete(name)  # a recurring schedule completes at its EndDate

    def _tracker(
        self, name: str, key: tuple[Any, ...], now: datetime, start: datetime | None, creation: datetime | None
    ) -> _Tracker:
        tracker = self._trackers.get(name)
        if tracker is None or tracker.key != key:
            horizon = now - self._grace
            if start is not None:
                horizon = max(horizon, start - timedelta(microseconds=1))
            # rate() counts from StartDate, else from creation (moto's clock); a clock injected by a test that is
            # earlier than the creation counts from now instead.
            anchor = start or (creation if creation is not None and creation <= now else now)
            tracker = _Tracker(key=key, horizon=horizon, rate_anchor=anchor)
            self._trackers[name] = tracker
        return tracker

    def _due(
        self,
        expression: ScheduleExpression,
        timezone: Any,
        tracker: _Tracker,
        now: datetime,
        end: datetime | None,
    ) -> list[datetime]:
        due: list[datetime] = []
        if isinstance(expression, RateExpression):
            period = expression.period
            index = (
                0 if tracker.horizon < tracker.rate_anchor else (tracker.horizon - tracker.rate_anchor) // period + 1
            )
            occurrence = tracker.rate_anchor + index * period
            while occurrence <= now and (end is None or occurrence < end) and len(due) < MAX_OCCURRENCES_PER_POLL:
                due.append(occurrence)
                occurrence += period
        elif isinstance(expression, CronExpression):
            after = tracker.horizon
            while len(due) < MAX_OCCURRENCES_PER_POLL:
                found = expression.next_after(after, timezone)
                if found is None or found > now or (end is not None and found >= end):
                    break
                due.append(found)
                after = found
        if len(due) == MAX_OCCURRENCES_PER_POLL:
            LOGGER.warning("%d occurrences due at once; the ones after %s are skipped", len(due), due[-1])
        return due

    # --- delivery --------------------------------------------------------------------------------------------

    def _deliver(self, detail: dict[str, Any], scheduled_time: datetime) -> None:
        name, arn = detail["Name"], detail["Arn"]
        target = detail["Target"]
        execution_id = uuid.uuid4().hex[:16]
        raw_input = target.get("Input")
        # No Input: AWS sends "a default notification" whose shape it does not document; locally an empty object.
        payload = (
            "{}"
            if raw_input is None
            else substitute_context_attributes(raw_input, arn, scheduled_time, execution_id, 1)
        )
        delivery = Delivery(schedule_name=name, scheduled_time=scheduled_time, execution_id=execution_id)
        self.deliveries.append(delivery)
        function = self._function(target["Arn"])
        if function is None:
            self._warn_once(
                (name, "target", target["Arn"]),
                "schedule %s: its target %s is not one of the local functions (%s); its invocations go to its "
                "dead-letter queue, as AWS does with a function that does not exist",
                name,
                target["Arn"],
                ", ".join(sorted({function_name_of(key) for key in self._functions})) or "none",
            )
            self._dead_letter(detail, delivery, payload, "ResourceNotFoundException", "Function not found")
            return
        try:
            delivery.event = json.loads(payload)
        except ValueError:
            # The cloud refuses such a schedule at creation (a Lambda target's Input must be JSON); moto does not.
            LOGGER.error("schedule %s: its Input is not JSON, which AWS refuses for a Lambda target", name)
            self._dead_letter(detail, delivery, payload, "ValidationException", "Input is not well-formed JSON")
            return
        LOGGER.info("schedule %s fired for %s (execution %s)", name, scheduled_time_text(scheduled_time), execution_id)
        self._invoke_asynchronously(function, delivery)

    def _function(self, target_arn: str) -> LocalLambdaFunction | None:
        if target_arn in self._functions:
            return self._functions[target_arn]
        wanted = function_name_of(target_arn)
        for key, function in self._functions.items():
            if function_name_of(key) == wanted or function.name == wanted:
                return function
        return None

    def _invoke_asynchronously(self, function: LocalLambdaFunction, delivery: Delivery) -> None:
        executor = self._executor
        if executor is None:  # poll_once driven by a test without start(): run in this thread
            self._run_invocation(function, delivery)
            return
        future = executor.submit(self._run_invocation, function, delivery)
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    def _run_invocation(self, function: LocalLambdaFunction, delivery: Delivery) -> None:
        """Lambda's asynchronous invocation: the same event, retried on a function error, then discarded."""
        attempts = 1 + self._lambda_async_retries
        request_id = str(uuid.uuid4())
        failure: BaseException | None = None
        attempt = 0
        for attempt in range(1, attempts + 1):  # the last attempt number goes into the record
            try:
                function.invoke(delivery.event)
                return
            except FunctionError as error:  # the runtime logged the traceback
                failure = error.__cause__ or error
                if self._stopping.is_set():
                    LOGGER.warning(
                        "schedule %s: the stack is stopping; Lambda's retries are abandoned", delivery.schedule_name
                    )
                    return
                if attempt == attempts:
                    break
                LOGGER.warning(
                    "schedule %s: %s failed (attempt %d of %d); Lambda retries the event in %.0f s",
                    delivery.schedule_name,
                    function.name,
                    attempt,
                    attempts,
                    self._retry_delay_s,
                )
                self._stopping.wait(self._retry_delay_s)
        queue_arn = self._on_failure_queues.get(function.name)
        if queue_arn is None:
            LOGGER.error(
                "schedule %s: %s failed on every attempt for %s; the event is discarded, as Lambda discards a "
                "failed asynchronous event of a function without an on-failure destination",
                delivery.schedule_name,
                function.name,
                scheduled_time_text(delivery.scheduled_time),
            )
            return
        record = lambda_invocation_record(function, request_id, attempt, delivery.event, failure, self._clock())
        if self._send(queue_arn, json.dumps(record), {}):
            delivery.dead_lettered = True
            LOGGER.error(
                "schedule %s: %s failed %d times for %s; the event went to its on-failure destination %s",
                delivery.schedule_name,
                function.name,
                attempt,
                scheduled_time_text(delivery.scheduled_time),
                queue_arn,
            )

    def _dead_letter(self, detail: dict[str, Any], delivery: Delivery, payload: str, code: str, message: str) -> None:
        target = detail["Target"]
        queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not queue_arn:
            LOGGER.error("schedule %s: invocation failed (%s) and it has no dead-letter queue", detail["Name"], code)
            return
        attributes = {
            "ERROR_CODE": code,
            "ERROR_MESSAGE": message,
            "EXECUTION_ID": delivery.execution_id,
            "IS_PAYLOAD_TRUNCATED": "false",
            "RETRY_ATTEMPTS": "0",  # AWS does not retry a target that does not exist
            "SCHEDULED_TIME": scheduled_time_text(delivery.scheduled_time),
            "SCHEDULE_ARN": detail["Arn"],
            "TARGET_ARN": target["Arn"],
        }
        if self._send(queue_arn, payload, attributes):
            delivery.dead_lettered = True

    def _send(self, queue_arn: str, body: str, attributes: dict[str, str]) -> bool:
        """SendMessage to the queue an ARN names (arn:aws:sqs:<region>:<account>:<name>)."""
        parts = queue_arn.split(":")
        try:
            queue_url = self._sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
            self._sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=body,
                MessageAttributes={
                    key: {"DataType": "String", "StringValue": value} for key, value in attributes.items()
                },
            )
        except (ClientError, IndexError):
            LOGGER.exception("could not send to the queue %s", queue_arn)
            return False
        return True

    def _delete(self, name: str) -> None:
        try:
            self._scheduler.delete_schedule(Name=name, GroupName=self._group_name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
        self._trackers.pop(name, None)
        self._details.pop(name, None)
        LOGGER.info("schedule %s deleted after completion (ActionAfterCompletion DELETE)", name)

    def _warn_once(self, key: tuple[str, ...], message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            LOGGER.warning(message, *args)
