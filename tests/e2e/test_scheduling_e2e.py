"""Scheduling on the real local stack: the runner fires EventBridge Scheduler schedules from the emulator's Scheduler
API as the cloud does, so queues start by themselves, recur, and leave no schedule behind."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest

from tests.e2e.conftest import RunningLocalStack

pytestmark = pytest.mark.e2e

QUEUES = "/api/whatsapp/queue"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def account_id(local_stack: RunningLocalStack) -> str:
    with httpx.Client(
        base_url=local_stack.api_url, timeout=30, headers={"Authorization": f"Bearer {local_stack.api_key}"}
    ) as api:
        response = api.post(
            "/api/whatsapp/accounts",
            json={
                "displayName": "Scheduled sender",
                "phoneNumber": "+14155550199",
                "provider": "sandbox",
                "limits": {"messagesPerSecond": 50},
            },
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@pytest.fixture
def schedule_names(local_stack: RunningLocalStack) -> Callable[[str], set[str]]:
    """The names of the schedules of one queue, as the emulator's Scheduler API lists them."""
    client = boto3.client(
        "scheduler",
        endpoint_url=local_stack.state["awsEndpointUrl"],
        region_name=local_stack.state.get("region", "us-east-1"),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    group = local_stack.state["scheduleGroupName"]

    def names(queue_id: str) -> set[str]:
        listed = client.list_schedules(GroupName=group, NamePrefix=queue_id)["Schedules"]
        return {entry["Name"] for entry in listed}

    return names


def _queue(api: httpx.Client, account_id: str, count: int, **schedule: Any) -> str:
    response = api.post(
        QUEUES,
        json={
            "name": "Scheduled",
            "accountId": account_id,
            "template": {"name": "reminder", "language": "en"},
            "audience": {"recipients": [{"phoneNumber": f"+1415555{3000 + n:04d}"} for n in range(count)]},
            "schedule": schedule,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_queue_scheduled_three_seconds_ahead_starts_and_completes_by_itself(
    demo_business: httpx.Client, account_id: str, schedule_names: Callable[[str], set[str]]
) -> None:
    # GIVEN a queue of 5 starting in 3 seconds, processed now
    start_at = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0) + timedelta(seconds=1)
    queue_id = _queue(demo_business, account_id, 5, startAt=_iso(start_at))
    processed = demo_business.post(f"{QUEUES}/{queue_id}/process")
    assert (processed.status_code, processed.json()["status"]) == (202, "SCHEDULED")
    assert schedule_names(queue_id) == {f"{queue_id}-start"}
    # WHEN nobody calls anything
    progress = _wait_for(
        lambda: (body := demo_business.get(f"{QUEUES}/{queue_id}/process").json())["status"] == "COMPLETED" and body,
        60,
        "the scheduled queue to complete",
    )
    # THEN it started at its start (not before), sent everything, and its one-time schedule is gone
    assert datetime.fromisoformat(progress["startedAt"]) >= start_at
    assert progress["counters"]["sent"] == 5
    assert schedule_names(queue_id) == set()


def test_rescheduling_clearing_pausing_cancelling_and_deleting_leave_no_orphan_schedule(
    demo_business: httpx.Client, account_id: str, schedule_names: Callable[[str], set[str]]
) -> None:
    later = datetime.now(UTC) + timedelta(hours=2)
    # GIVEN three SCHEDULED queues
    moved, paused, deleted = (_queue(demo_business, account_id, 1, startAt=_iso(later)) for _ in range(3))
    for queue_id in (moved, paused, deleted):
        assert demo_business.post(f"{QUEUES}/{queue_id}/process").json()["status"] == "SCHEDULED"
        assert schedule_names(queue_id) == {f"{queue_id}-start"}
    # WHEN one is rescheduled then cleared, one paused, resumed and cancelled, one paused and deleted
    assert (
        demo_business.put(
            f"{QUEUES}/{moved}", json={"schedule": {"startAt": _iso(later + timedelta(hours=1))}}
        ).status_code
        == 200
    )
    assert schedule_names(moved) == {f"{moved}-start"}
    cleared = demo_business.put(f"{QUEUES}/{moved}", json={"schedule": {"timezone": "UTC"}})
    assert cleared.json()["status"] == "PROCESSING"
    demo_business.post(f"{QUEUES}/{paused}/pause")
    assert schedule_names(paused) == set()
    assert demo_business.post(f"{QUEUES}/{paused}/resume").json()["status"] == "SCHEDULED"
    assert schedule_names(paused) == {f"{paused}-start"}
    demo_business.post(f"{QUEUES}/{paused}/cancel")
    demo_business.post(f"{QUEUES}/{deleted}/pause")
    assert demo_business.delete(f"{QUEUES}/{deleted}").status_code == 204
    # THEN none of them has a schedule left
    assert schedule_names(moved) | schedule_names(paused) | schedule_names(deleted) == set()


def test_a_recurring_queue_runs_twice_by_itself(
    demo_business: httpx.Client, account_id: str, schedule_names: Callable[[str], set[str]]
) -> None:
    # GIVEN a queue of 3 recurring every minute
    queue_id = _queue(demo_business, account_id, 3, recurrence="* * * * *", timezone="America/Guayaquil")
    assert demo_business.post(f"{QUEUES}/{queue_id}/process").json()["status"] == "SCHEDULED"
    assert schedule_names(queue_id) == {f"{queue_id}-recur"}
    # WHEN two occurrences pass
    runs = _wait_for(
        lambda: (
            [
                run
                for run in demo_business.get(f"{QUEUES}/{queue_id}/runs").json()["items"]
                if run["status"] == "COMPLETED"
            ][1:]
            and demo_business.get(f"{QUEUES}/{queue_id}/runs").json()["items"]
        ),
        150,
        "two completed runs",
    )
    # THEN each run sent to the 3 recipients, and the totals count both
    completed = [run for run in runs if run["status"] == "COMPLETED"]
    assert [run["number"] for run in completed[:2]] == [1, 2]
    assert [run["counters"]["sent"] for run in completed[:2]] == [3, 3]
    progress = demo_business.get(f"{QUEUES}/{queue_id}/process").json()
    assert progress["totals"]["sent"] >= 6
    # WHEN it is cancelled THEN the recurrence stops: no schedule is left
    demo_business.post(f"{QUEUES}/{queue_id}/cancel")
    assert schedule_names(queue_id) == set()
