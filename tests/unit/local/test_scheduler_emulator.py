"""The emulator playing EventBridge Scheduler: against moto's server on loopback, with recording functions.

Most tests drive `poll_once()` with an injected clock, so that cron and rate schedules fire without waiting; one
runs the component's thread on the real clock."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest

from wabacast.settings import Settings
from wabacast_local.lambda_runtime import FunctionConfig, LocalLambdaFunction
from wabacast_local.scheduler_emulator import SchedulerEmulator, function_name_of, substitute_context_attributes
from wabacast_local.stack import (
    LOCAL_CREDENTIALS,
    LocalStack,
    LocalStackConfig,
    lambda_environment,
    scheduler_target_arn,
)

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/wabacast-scheduler-invoke"
CONTEXT_INPUT = json.dumps(
    {
        "queueId": "q-1",
        "scheduleArn": "<aws.scheduler.schedule-arn>",
        "scheduledTime": "<aws.scheduler.scheduled-time>",
        "executionId": "<aws.scheduler.execution-id>",
        "attempt": "<aws.scheduler.attempt-number>",
    }
)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class RecordingTarget:
    """A local function that keeps the events it gets; it raises for the first `failures` invocations."""

    def __init__(self, name: str = "wabacast-scheduler", failures: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.failures = failures
        self.invoked = threading.Event()
        self.function = LocalLambdaFunction(FunctionConfig(name=name, region=REGION), self._handle)

    def _handle(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.invoked.set()
        if len(self.events) <= self.failures:
            raise RuntimeError(f"start failed ({len(self.events)})")
        return {"started": True}


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Harness:
    """A schedule group, a dead-letter queue and an emulator over them, per test."""

    def __init__(self, endpoint: str, target: RecordingTarget, clock: Any = None, **options: Any) -> None:
        self.scheduler = client("scheduler", endpoint)
        self.sqs = client("sqs", endpoint)
        self.group = f"g-{uuid.uuid4().hex[:8]}"
        self.scheduler.create_schedule_group(Name=self.group)
        self.dlq_url = self.sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        self.dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.target = target
        settings: dict[str, Any] = {"poll_interval_s": 0.1, "retry_delay_s": 0.01, **options}
        if clock is not None:
            settings["clock"] = clock
        self.emulator = SchedulerEmulator(
            scheduler=self.scheduler,
            sqs=self.sqs,
            functions={target.function.config.arn: target.function},
            group_name=self.group,
            **settings,
        )

    def create(self, name: str, expression: str, **extra: Any) -> dict[str, Any]:
        target: dict[str, Any] = {
            "Arn": extra.pop("target_arn", self.target.function.config.arn),
            "RoleArn": ROLE_ARN,
            "Input": extra.pop("input", CONTEXT_INPUT),
            "DeadLetterConfig": {"Arn": self.dlq_arn},
            "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 300},
        }
        self.scheduler.create_schedule(
            Name=name,
            GroupName=self.group,
            ScheduleExpression=expression,
            FlexibleTimeWindow={"Mode": "OFF"},
            Target=target,
            **extra,
        )
        detail: dict[str, Any] = self.scheduler.get_schedule(Name=name, GroupName=self.group)
        return detail

    def update(self, name: str, **changes: Any) -> None:
        current = self.scheduler.get_schedule(Name=name, GroupName=self.group)
        arguments = {
            "Name": name,
            "GroupName": self.group,
            "ScheduleExpression": current["ScheduleExpression"],
            "ScheduleExpressionTimezone": current["ScheduleExpressionTimezone"],
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": current["Target"],
            "State": current["State"],
            **changes,
        }
        self.scheduler.update_schedule(**arguments)

    def names(self) -> list[str]:
        return [item["Name"] for item in self.scheduler.list_schedules(GroupName=self.group)["Schedules"]]

    def dead_letters(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        return messages


def at_expression(instant: datetime) -> str:
    return f"at({instant.strftime('%Y-%m-%dT%H:%M:%S')})"


def test_an_at_schedule_fires_once_with_the_context_attributes_and_is_deleted(moto_endpoint: str) -> None:
    # GIVEN the running emulator and a one-time schedule about 1.5 s ahead, deleted after completion
    target = RecordingTarget()
    harness = Harness(moto_endpoint, target)
    due = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    detail = harness.create("start-q-1", at_expression(due), ActionAfterCompletion="DELETE")
    harness.emulator.start()
    try:
        # WHEN its time comes
        assert target.invoked.wait(10), "the schedule did not fire"
        deadline = time.monotonic() + 5
        while harness.names() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a few more polls: it must not fire again
    finally:
        harness.emulator.stop()

    # THEN the function got the Input once, context attributes substituted, and the schedule is gone
    assert len(target.events) == 1
    event = target.events[0]
    assert event["queueId"] == "q-1"
    assert (
        event["scheduleArn"]
        == detail["Arn"]
        == f"arn:aws:scheduler:{REGION}:123456789012:schedule/{harness.group}/start-q-1"
    )
    assert event["scheduledTime"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert re.fullmatch(r"[0-9a-f]{16}", event["executionId"])
    assert event["attempt"] == "1"
    assert harness.names() == []


def test_an_at_schedule_in_its_time_zone_with_none_stays_and_does_not_fire_again(moto_endpoint: str) -> None:
    # GIVEN a one-time schedule at 09:00 in New York (14:00Z), kept after completion
    target = RecordingTarget()
    clock = FakeClock(datetime(2026, 11, 30, 13, 59, 30, tzinfo=UTC))
    harness = Harness(moto_endpoint, target, clock)
    harness.create(
        "start-q-2",
        "at(2026-11-30T09:00:00)",
        ScheduleExpressionTimezone="America/New_York",
        ActionAfterCompletion="NONE",
    )

    # WHEN the emulator polls before, at and after its time
    harness.emulator.poll_once()
    fired_early = len(target.events)
    clock.advance(seconds=30)
    harness.emulator.poll_once()
    clock.advance(minutes=5)
    harness.emulator.poll_once()

    # THEN it fired once, at 14:00Z, and the schedule is still there
    assert fired_early == 0
    assert [event["scheduledTime"] for event in target.events] == ["2026-11-30T14:00:00Z"]
    assert harness.names() == ["start-q-2"]


def test_a_disabled_schedule_does_not_fire_until_enabled(moto_endpoint: str) -> None:
    # GIVEN a DISABLED one-time schedule whose time has come
    target = RecordingTarget()
    clock = FakeClock(datetime(2026, 11, 30, 10, 0, tzinfo=UTC))
    harness = Harness(moto_endpoint, target, clock)
    harness.create("start-q-3", "at(2026-11-30T09:59:00)", State="DISABLED", ActionAfterCompletion="DELETE")

    # WHEN the emulator polls
    harness.emulator.poll_once()
    clock.advance(seconds=1)
    harness.emulator.poll_once()

    # THEN nothing fired and the schedule stays
    assert target.events == []
    assert harness.names() == ["start-q-3"]

    # WHEN it is enabled THEN it fires (its time is past: at once) and is deleted
    harness.update("start-q-3", State="ENABLED")
    harness.emulator.poll_once()
    assert [event["scheduledTime"] for event in target.events] == ["2026-11-30T09:59:00Z"]
    assert harness.names() == []


def test_a_disabled_recurring_schedule_skips_what_fell_due_meanwhile(moto_endpoint: str) -> None:
    # GIVEN an hourly cron schedule, disabled from 10:30 to 13:30
    target = RecordingTarget()
    clock = FakeClock(datetime(2026, 11, 30, 9, 59, 59, tzinfo=UTC))
    harness = Harness(moto_endpoint, target, clock)
    harness.create("hourly", "cron(0 * * * ? *)")
    harness.emulator.poll_once()
    clock.advance(seconds=1)
    harness.emulator.poll_once()  # 10:00 fires
    clock.advance(minutes=30)
    harness.update("hourly", State="DISABLED")
    harness.emulator.poll_once()
    clock.advance(hours=3)
    harness.emulator.poll_once()  # 11:00, 12:00, 13:00 fall due while disabled

    # WHEN it is enabled again and the clock reaches 14:00
    harness.update("hourly", State="ENABLED")
    harness.emulator.poll_once()
    clock.advance(minutes=30)
    harness.emulator.poll_once()

    # THEN only 10:00 and 14:00 fired
    assert [event["scheduledTime"] for event in target.events] == ["2026-11-30T10:00:00Z", "2026-11-30T14:00:00Z"]


def test_a_cron_schedule_fires_each_occurrence_once_across_a_dst_switch(moto_endpoint: str) -> None:
    # GIVEN 09:00 every day in New York, first seen on 2026-03-07 at 08:00 local
    target = RecordingTarget()
    clock = FakeClock(datetime(2026, 3, 7, 13, 0, tzinfo=UTC))
    harness = Harness(moto_endpoint, target, clock)
    harness.create("recurring-q-4", "cron(0 9 * * ? *)", ScheduleExpressionTimezone="America/New_York")

    # WHEN the clock runs through three days, polled every hour
    for _ in range(3 * 24):
        harness.emulator.poll_once()
        clock.advance(hours=1)

    # THEN it fired at 09:00 local each day: 14:00Z before the switch, 13:00Z after
    assert [event["scheduledTime"] for event in target.events] == [
        "2026-03-07T14:00:00Z",
        "2026-03-08T13:00:00Z",
        "2026-03-09T13:00:00Z",
    ]


def test_a_rate_schedule_fires_repeatedly_from_its_start_date_until_its_end_date(moto_endpoint: str) -> None:
    # GIVEN rate(5 minutes) from 10:00 to 10:20
    target = RecordingTarget()
    clock = FakeClock(datetime(2099, 11, 30, 9, 58, tzinfo=UTC))
    harness = Harness(moto_endpoint, target, clock)
    harness.create(
        "every-5",
        "rate(5 minutes)",
        StartDate=datetime(2099, 11, 30, 10, 0, tzinfo=UTC),
        EndDate=datetime(2099, 11, 30, 10, 20, tzinfo=UTC),
    )

    # WHEN the clock runs to 10:30, polled every 30 s
    while clock.now < datetime(2099, 11, 30, 10, 30, tzinfo=UTC):
        harness.emulator.poll_once()
        clock.advance(seconds=30)

    # THEN it fired at 10:00, 10:05, 10:10 and 10:15, each once
    assert [event["scheduledTime"] for event in target.events] == [
        "2099-11-30T10:00:00Z",
        "2099-11-30T10:05:00Z",
        "2099-11-30T10:10:00Z",
        "2099-11-30T10:15:00Z",
    ]


def test_occurrences_from_before_the_emulator_saw_a_schedule_are_not_backfilled(moto_endpoint: str) -> None:
    # GIVEN a schedule every minute, first seen at 10:00:03 (its 10:00 occurrence missed by 3 s, within the grace)
    # (in 2099: moto refuses a cron StartDate more than 5 minutes before its own, real, clock)
    target = RecordingTarget()
    clock = FakeClock(datetime(2099, 11, 30, 10, 0, 3, tzinfo=UTC))
    harness = Harness(moto_endpoint, target, clock, grace_s=5)
    harness.create("minutely", "cron(* * * * ? *)", StartDate=datetime(2099, 11, 30, 9, 0, tzinfo=UTC))

    # WHEN the emulator polls, then again a minute later
    harness.emulator.poll_once()
    clock.advance(minutes=1)
    harness.emulator.poll_once()

    # THEN 10:00 and 10:01 fired, and nothing of the hour before
    assert [event["scheduledTime"] for event in target.events] == ["2099-11-30T10:00:00Z", "2099-11-30T10:01:00Z"]


def test_an_updated_expression_is_recomputed(moto_endpoint: str) -> None:
    # GIVEN a daily 09:00 schedule, moved to 11:00 at 08:00
    target = RecordingTarget()
    clock = FakeClock(datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    harness = Harness(moto_endpoint, target, clock)
    harness.create("moving", "cron(0 9 * * ? *)")
    harness.emulator.poll_once()
    harness.update("moving", ScheduleExpression="cron(0 11 * * ? *)")

    # WHEN the clock runs to noon, polled every 10 minutes
    for _ in range(25):
        harness.emulator.poll_once()
        clock.advance(minutes=10)

    # THEN it fired at 11:00 only
    assert [event["scheduledTime"] for event in target.events] == ["2026-11-30T11:00:00Z"]


def test_an_update_that_keeps_the_expression_does_not_fire_an_occurrence_twice(moto_endpoint: str) -> None:
    # GIVEN a schedule that fired at 10:00, whose Input changes right after
    target = RecordingTarget()
    clock = FakeClock(datetime(2026, 11, 30, 9, 59, 59, tzinfo=UTC))
    harness = Harness(moto_endpoint, target, clock)
    harness.create("stable", "cron(0 10 * * ? *)")
    harness.emulator.poll_once()
    clock.advance(seconds=2)
    harness.emulator.poll_once()
    current = harness.scheduler.get_schedule(Name="stable", GroupName=harness.group)["Target"]
    harness.update("stable", Target={**current, "Input": json.dumps({"queueId": "q-2"})})

    # WHEN the emulator polls again
    clock.advance(seconds=1)
    harness.emulator.poll_once()

    # THEN 10:00 fired once
    assert len(target.events) == 1


def test_a_failing_target_is_retried_by_lambda_then_goes_to_its_on_failure_destination(moto_endpoint: str) -> None:
    # GIVEN a scheduler function that always raises, with the DLQ as its on-failure destination (as the CDK stack)
    target = RecordingTarget(failures=99)
    clock = FakeClock(datetime(2026, 11, 30, 10, 0, 1, tzinfo=UTC))
    harness = Harness(moto_endpoint, target, clock)
    harness.emulator = SchedulerEmulator(
        scheduler=harness.scheduler,
        sqs=harness.sqs,
        functions={target.function.config.arn: target.function},
        group_name=harness.group,
        retry_delay_s=0.01,
        clock=clock,
        on_failure_queues={target.function.name: harness.dlq_arn},
    )
    harness.create("start-q-5", "at(2026-11-30T10:00:00)", ActionAfterCompletion="DELETE")

    # WHEN it fires
    harness.emulator.poll_once()

    # THEN Lambda ran the same event three times (two retries), then sent its invocation record to the queue; the
    # schedule itself completed (Scheduler handed the event over) and was deleted
    assert len(target.events) == 3
    assert target.events[0] == target.events[1] == target.events[2]
    messages = harness.dead_letters()
    assert len(messages) == 1
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"] == f"{target.function.config.arn}:$LATEST"
    assert record["requestPayload"] == target.events[0]
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["responsePayload"]["errorMessage"] == "start failed (3)"
    assert harness.names() == []


def test_a_target_that_recovers_on_a_retry_sends_nothing_to_the_queue(moto_endpoint: str) -> None:
    # GIVEN a function that fails once, without an on-failure destination
    target = RecordingTarget(failures=1)
    clock = FakeClock(datetime(2026, 11, 30, 10, 0, 1, tzinfo=UTC))
    harness = Harness(moto_endpoint, target, clock)
    harness.create("start-q-6", "at(2026-11-30T10:00:00)")

    # WHEN it fires
    harness.emulator.poll_once()

    # THEN the retry succeeded and no dead letter was written
    assert len(target.events) == 2
    assert harness.dead_letters() == []


def test_an_unknown_target_goes_to_the_schedules_dead_letter_queue_with_a_single_warning(
    moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a schedule every minute whose target is not a local function
    target = RecordingTarget()
    clock = FakeClock(datetime(2026, 11, 30, 9, 59, 59, tzinfo=UTC))
    harness = Harness(moto_endpoint, target, clock)
    missing_arn = f"arn:aws:lambda:{REGION}:123456789012:function:not-deployed"
    detail = harness.create("lost", "cron(* * * * ? *)", target_arn=missing_arn)

    # WHEN two occurrences fire
    with caplog.at_level(logging.WARNING, logger="wabacast_local"):
        for _ in range(3):
            harness.emulator.poll_once()
            clock.advance(seconds=40)

    # THEN one warning names the target, and each occurrence is in the DLQ with AWS's dead-letter attributes
    warnings = [record for record in caplog.records if "not-deployed" in record.getMessage()]
    assert len(warnings) == 1
    assert target.events == []
    messages = harness.dead_letters()
    assert len(messages) == 2
    attributes = {key: value["StringValue"] for key, value in messages[0]["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "ResourceNotFoundException"
    assert attributes["RETRY_ATTEMPTS"] == "0"
    assert attributes["SCHEDULE_ARN"] == detail["Arn"]
    assert attributes["TARGET_ARN"] == missing_arn
    assert attributes["SCHEDULED_TIME"] in {"2026-11-30T10:00:00Z", "2026-11-30T10:01:00Z"}
    assert re.fullmatch(r"[0-9a-f]{16}", attributes["EXECUTION_ID"])
    assert json.loads(messages[0]["Body"])["queueId"] == "q-1"


def test_an_expression_the_emulator_cannot_read_is_logged_once_and_skipped(
    moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a 5-field cron expression (moto stores whatever it is given)
    target = RecordingTarget()
    harness = Harness(moto_endpoint, target, FakeClock(datetime(2026, 11, 30, 10, 0, tzinfo=UTC)))
    harness.create("five-fields", "cron(0 9 * * 1)")

    # WHEN the emulator polls twice
    with caplog.at_level(logging.WARNING, logger="wabacast_local"):
        harness.emulator.poll_once()
        harness.emulator.poll_once()

    # THEN it says why, once, and fires nothing
    warnings = [record.getMessage() for record in caplog.records if "five-fields" in record.getMessage()]
    assert len(warnings) == 1
    assert "6 fields" in warnings[0]
    assert target.events == []


def test_context_attribute_substitution_and_function_names() -> None:
    text = substitute_context_attributes(
        '{"t":"<aws.scheduler.scheduled-time>","a":"<aws.scheduler.attempt-number>"}',
        "arn:s",
        datetime(2026, 11, 29, 9, 0, 0, 123456, tzinfo=UTC),
        "abc",
        2,
    )
    assert json.loads(text) == {"t": "2026-11-29T09:00:00Z", "a": "2"}
    assert function_name_of("arn:aws:lambda:us-east-1:123456789012:function:wabacast-scheduler") == "wabacast-scheduler"
    assert function_name_of("arn:aws:lambda:us-east-1:123456789012:function:wabacast-scheduler:live") == (
        "wabacast-scheduler"
    )
    assert function_name_of("wabacast-scheduler") == "wabacast-scheduler"


def test_the_stack_creates_the_group_and_the_dead_letter_queue_and_loads_the_scheduler_function(
    moto_endpoint: str, tmp_path: Any
) -> None:
    # GIVEN a stack configuration with its own group and queue names, and a functions/scheduler of its own
    suffix = uuid.uuid4().hex[:8]
    config = LocalStackConfig(
        functions_dir=tmp_path, schedule_group_name=f"wabacast-{suffix}", schedule_dlq_name=f"dlq-{suffix}"
    )
    stack = LocalStack(config)

    # WHEN the schedule resources are created (against this test's moto) and the scheduler function is looked for
    with mock.patch.dict(os.environ, {"AWS_ENDPOINT_URL": moto_endpoint, **LOCAL_CREDENTIALS}):
        dlq_arn = stack._create_schedule_resources(Settings(table_name="wabacast-local"))
        assert os.environ["SCHEDULE_DLQ_ARN"] == dlq_arn
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "handler.py").write_text(
        "def lambda_handler(event, context):\n    return {'got': event, 'name': context.function_name}\n"
    )
    loaded = stack._load_scheduler_function()

    # THEN the group and a standard queue exist, and the function loads under the name the functions'
    # SCHEDULER_TARGET_ARN names
    assert client("scheduler", moto_endpoint).get_schedule_group(Name=config.schedule_group_name)["State"] == "ACTIVE"
    assert dlq_arn == f"arn:aws:sqs:{REGION}:123456789012:dlq-{suffix}"
    assert loaded.config.arn == scheduler_target_arn(REGION)
    assert loaded.invoke({"queueId": "q-1"}) == {"got": {"queueId": "q-1"}, "name": "wabacast-scheduler"}


def test_the_functions_learn_the_group_target_and_role_of_their_schedules() -> None:
    variables = lambda_environment(LocalStackConfig(region="eu-west-1"), "http://127.0.0.1:5555")
    assert variables["SCHEDULE_GROUP_NAME"] == "wabacast-local"
    assert variables["SCHEDULER_TARGET_ARN"] == "arn:aws:lambda:eu-west-1:123456789012:function:wabacast-scheduler"
    assert variables["SCHEDULER_ROLE_ARN"] == "arn:aws:iam::123456789012:role/wabacast-scheduler-invoke"
