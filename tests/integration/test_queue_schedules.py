"""A queue's EventBridge Scheduler schedules through the HTTP API on moto: made when it is SCHEDULED, moved with its
start, gone when it starts, pauses, is cancelled or deleted; and the scheduler function starting it when one fires."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.integration.conftest import (
    ApiClient,
    FakeLambdaContext,
    create_account,
    create_queue,
    load_function_module,
    phone,
)
from wabacast.settings import Settings

QUEUES = "/api/whatsapp/queue"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _schedules(settings: Settings) -> dict[str, dict[str, Any]]:
    client = boto3.client("scheduler", region_name=settings.region)
    group = str(settings.schedule_group_name)
    names = [entry["Name"] for entry in client.list_schedules(GroupName=group)["Schedules"]]
    return {name: client.get_schedule(Name=name, GroupName=group) for name in names}


@pytest.fixture
def sender_account(business: ApiClient) -> dict[str, Any]:
    return create_account(business, phone(1))


@pytest.fixture
def start_at() -> datetime:
    return (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)


def test_a_queue_scheduled_ahead_gets_one_start_schedule_that_moves_with_its_start(
    settings: Settings, business: ApiClient, sender_account: dict[str, Any], start_at: datetime
) -> None:
    # GIVEN a queue starting in an hour
    queue = create_queue(business, schedule={"startAt": _iso(start_at)})
    # WHEN it is processed
    response = business.post(f"{QUEUES}/{queue['id']}/process")
    # THEN it is SCHEDULED, with one at() schedule in the group, in UTC, deleted after it fires, with retries and a DLQ
    assert (response.status, response.body["status"]) == (202, "SCHEDULED")
    schedules = _schedules(settings)
    assert list(schedules) == [f"{queue['id']}-start"]
    schedule = schedules[f"{queue['id']}-start"]
    assert schedule["ScheduleExpression"] == f"at({start_at.strftime('%Y-%m-%dT%H:%M:%S')})"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == settings.scheduler_target_arn
    assert schedule["Target"]["RoleArn"] == settings.scheduler_role_arn
    assert schedule["Target"]["DeadLetterConfig"]["Arn"] == settings.schedule_dlq_arn
    assert schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert json.loads(schedule["Target"]["Input"]) == {
        "source": "wabacast.schedule",
        "action": "start",
        "businessId": business.business_id,  # type: ignore[attr-defined]
        "queueId": queue["id"],
        "scheduledTime": "<aws.scheduler.scheduled-time>",
    }
    # WHEN its start moves two hours later
    later = start_at + timedelta(hours=2)
    moved = business.put(f"{QUEUES}/{queue['id']}", {"schedule": {"startAt": _iso(later)}})
    # THEN the same schedule moved with it
    assert moved.status == 200, moved.body
    assert [s["ScheduleExpression"] for s in _schedules(settings).values()] == [
        f"at({later.strftime('%Y-%m-%dT%H:%M:%S')})"
    ]


def test_clearing_the_start_starts_the_queue_now_and_removes_its_schedule(
    settings: Settings, business: ApiClient, sender_account: dict[str, Any], start_at: datetime
) -> None:
    # GIVEN a SCHEDULED queue
    queue = create_queue(business, schedule={"startAt": _iso(start_at)})
    business.post(f"{QUEUES}/{queue['id']}/process")
    # WHEN its schedule is replaced by one without a start
    response = business.put(f"{QUEUES}/{queue['id']}", {"schedule": {"timezone": "Europe/Madrid"}})
    # THEN it is PROCESSING and no schedule is left
    assert response.status == 200, response.body
    assert response.body["status"] == "PROCESSING"
    assert _schedules(settings) == {}


@pytest.mark.parametrize("action", ["pause", "cancel", "delete"])
def test_pausing_cancelling_or_deleting_a_scheduled_queue_leaves_no_schedule(
    settings: Settings, business: ApiClient, sender_account: dict[str, Any], start_at: datetime, action: str
) -> None:
    # GIVEN a SCHEDULED recurring queue with an end: a cron() schedule and an at() end schedule
    queue = create_queue(
        business,
        schedule={
            "recurrence": "0 9 * * MON",
            "timezone": "America/Guayaquil",
            "endAt": _iso(start_at + timedelta(days=60)),
        },
    )
    assert business.post(f"{QUEUES}/{queue['id']}/process").body["status"] == "SCHEDULED"
    schedules = _schedules(settings)
    assert set(schedules) == {f"{queue['id']}-recur", f"{queue['id']}-end"}
    recurrence = schedules[f"{queue['id']}-recur"]
    assert (recurrence["ScheduleExpression"], recurrence["ScheduleExpressionTimezone"]) == (
        "cron(0 9 ? * MON *)",
        "America/Guayaquil",
    )
    # WHEN it is paused, cancelled or deleted
    if action == "delete":
        response = business.delete(f"{QUEUES}/{queue['id']}")
    else:
        response = business.post(f"{QUEUES}/{queue['id']}/{action}")
    # THEN no schedule is left
    assert response.status in (200, 204), response.body
    assert _schedules(settings) == {}


def test_the_scheduler_function_starts_the_queue_when_its_schedule_fires(
    settings: Settings, business: ApiClient, sender_account: dict[str, Any], start_at: datetime
) -> None:
    # GIVEN a SCHEDULED queue and its schedule's input
    queue = create_queue(business, schedule={"startAt": _iso(start_at)})
    business.post(f"{QUEUES}/{queue['id']}/process")
    template = _schedules(settings)[f"{queue['id']}-start"]["Target"]["Input"]
    event = json.loads(template.replace("<aws.scheduler.scheduled-time>", _iso(start_at)))
    scheduler = load_function_module("scheduler", "handler")
    # WHEN Scheduler invokes the function with it, twice
    first = scheduler.lambda_handler(event, FakeLambdaContext())
    second = scheduler.lambda_handler(event, FakeLambdaContext())
    # THEN the queue started once
    assert first == {"action": "start", "outcome": "started"}
    assert second["outcome"].startswith("ignored")
    progress = business.get(f"{QUEUES}/{queue['id']}/process").body
    assert progress["status"] == "PROCESSING"
    runs = business.get(f"{QUEUES}/{queue['id']}/runs").body["items"]
    assert [(run["number"], run["status"]) for run in runs] == [(1, "PROCESSING")]


def test_a_scheduler_event_that_is_not_ours_is_refused_so_it_reaches_the_dead_letter_queue(settings: Settings) -> None:
    # GIVEN an event without a queue id
    scheduler = load_function_module("scheduler", "handler")
    # WHEN the function gets it THEN it raises (Scheduler retries, then dead-letters it)
    with pytest.raises(ValueError, match="queueId"):
        scheduler.lambda_handler(
            {
                "source": "wabacast.schedule",
                "action": "start",
                "businessId": "b",
                "scheduledTime": _iso(datetime.now(UTC)),
            },
            FakeLambdaContext(),
        )
