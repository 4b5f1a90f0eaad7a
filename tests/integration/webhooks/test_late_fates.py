"""Errors the providers report after the send, in status webhooks, get the fate the same error gets at send time:
the per-user marketing limit (Meta 131049, Twilio 63049) re-feeds the job hours later (decision 27), except for +1
numbers, for which it is final."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.client
import pytest

from tests.integration.conftest import FakeLambdaContext, load_function_module, set_queue_status
from tests.integration.webhooks.conftest import (
    WebhookWorld,
    fixture,
    meta_account,
    meta_status,
    queue_for,
    twilio_account,
)
from wabacast.adapters.dynamodb.jobs import DynamoJobStore, job_to_item
from wabacast.domain.jobs import ErrorClass, Job, JobStatus
from wabacast.domain.models import QueueStatus
from wabacast.domain.receipts import job_reference
from wabacast.logic.fates import MARKETING_LIMIT_DELAYS

SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
NUMBER_ID = "109876543210987"
TOKEN = "0123456789abcdef0123456789abcdef"
US_RECIPIENT = "12025550143"


def _marketing_limit(job: Job, *, recipient: str | None = None) -> dict[str, Any]:
    payload = meta_status("meta/status_failed.json", job, NUMBER_ID)
    status = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    status["errors"][0].update(code=131049, title="This message was not delivered to maintain healthy ecosystem")
    status["recipient_id"] = recipient or job.phone_number.removeprefix("+")
    return payload


def _sent_job_of_a_sending_queue(world: WebhookWorld) -> tuple[str, Job]:
    account = meta_account(world, 1, NUMBER_ID, SECRET)
    queue_id = queue_for(world, account["id"])
    set_queue_status(world.settings, world.business_id, queue_id, QueueStatus.PROCESSING)
    (job,) = world.sent_jobs(queue_id, account["id"], 1)
    return queue_id, job


def test_a_late_131049_defers_the_job_and_counts_it_pending_again_once(world: WebhookWorld) -> None:
    # GIVEN a SENT job of a queue still sending, to a Spanish number
    queue_id, job = _sent_job_of_a_sending_queue(world)
    before = datetime.now(UTC)

    # WHEN Meta reports the per-user marketing limit (131049) for it, twice (providers repeat themselves)
    first = world.webhooks.meta(_marketing_limit(job), SECRET)
    second = world.webhooks.meta(_marketing_limit(job), SECRET)

    # THEN the job waits for its delayed re-feed (4 h), as after the same answer at send time, in the deferred index
    assert (first.status, second.status) == (200, 200)
    stored = world.job(job)
    assert (stored.status, stored.deferrals) == (JobStatus.PENDING, 1)
    assert stored.last_error is not None
    assert (stored.last_error.code, stored.last_error.error_class) == ("131049", ErrorClass.RETRY_LATER)
    assert stored.not_before is not None
    assert before + MARKETING_LIMIT_DELAYS[0] <= stored.not_before <= datetime.now(UTC) + MARKETING_LIMIT_DELAYS[0]
    assert stored.provider_message_id is None  # the next send's receipts are the job's
    (due,) = DynamoJobStore(world.table).deferred(queue_id, 10, due_by=stored.not_before)
    assert due.id == job.id
    # AND the counters moved from sent to pending once (the duplicate changed nothing), nothing counted failed
    assert second.body["unchanged"] == 1
    tally = world.tally(queue_id)
    assert (tally.counters.sent, tally.counters.pending, tally.counters.failed) == (-1, 1, 0)
    assert tally.error_counts == {"131049": 1}


def test_a_late_131049_for_a_plus_one_number_fails_the_job(world: WebhookWorld) -> None:
    # GIVEN a SENT job of a queue still sending
    queue_id, job = _sent_job_of_a_sending_queue(world)

    # WHEN Meta reports 131049 for a +1 recipient (Meta sends US numbers no marketing template at all)
    response = world.webhooks.meta(_marketing_limit(job, recipient=US_RECIPIENT), SECRET)

    # THEN the job failed for good, as at send time
    assert response.status == 200
    stored = world.job(job)
    assert stored.status == JobStatus.FAILED
    assert stored.last_error is not None
    assert stored.last_error.error_class == ErrorClass.PERMANENT
    tally = world.tally(queue_id)
    assert (tally.counters.sent, tally.counters.pending, tally.counters.failed) == (-1, 0, 1)


def test_a_late_131049_for_a_queue_no_longer_sending_fails_the_job(world: WebhookWorld) -> None:
    # GIVEN a SENT job of a queue that completed meanwhile (nothing would feed a re-feed)
    queue_id, job = _sent_job_of_a_sending_queue(world)
    set_queue_status(world.settings, world.business_id, queue_id, QueueStatus.COMPLETED)

    # WHEN Meta reports 131049 for it
    world.webhooks.meta(_marketing_limit(job), SECRET)

    # THEN it fails with the error rather than wait for a feed that will not come
    assert world.job(job).status == JobStatus.FAILED
    assert world.tally(queue_id).counters.pending == 0


def test_a_late_131049_after_the_last_re_feed_fails_the_job(world: WebhookWorld) -> None:
    # GIVEN a SENT job that was already deferred as many times as there are delays
    queue_id, job = _sent_job_of_a_sending_queue(world)
    exhausted = job.model_copy(update={"deferrals": len(MARKETING_LIMIT_DELAYS)})
    world.table.batch_write([job_to_item(exhausted)])

    # WHEN Meta reports 131049 once more
    world.webhooks.meta(_marketing_limit(exhausted), SECRET)

    # THEN the job fails with it
    assert world.job(job).status == JobStatus.FAILED
    assert world.tally(queue_id).counters.pending == 0


def test_a_late_twilio_63049_defers_the_job_too(world: WebhookWorld) -> None:
    # GIVEN a SENT job of a Twilio account's queue still sending
    account = twilio_account(world, 1, TOKEN)
    queue_id = queue_for(world, account["id"], twilio=True)
    set_queue_status(world.settings, world.business_id, queue_id, QueueStatus.PROCESSING)
    (job,) = world.sent_jobs(queue_id, account["id"], 1, prefix="SM")
    params: dict[str, str] = fixture("twilio/status_undelivered.json")
    params["MessageSid"] = params["SmsSid"] = job.provider_message_id or ""
    params.update(ErrorCode="63049", To=f"whatsapp:{job.phone_number}")

    # WHEN Twilio reports Meta's per-user marketing limit (63049)
    response = world.webhooks.twilio(account["id"], params, TOKEN, job_reference(job.queue_id, job.id))

    # THEN the job waits for its delayed re-feed, counted pending again
    assert response.status == 200, response.body
    stored = world.job(job)
    assert (stored.status, stored.deferrals) == (JobStatus.PENDING, 1)
    tally = world.tally(queue_id)
    assert (tally.counters.sent, tally.counters.pending) == (-1, 1)


def test_a_late_twilio_daily_limit_pauses_the_queue_until_the_reset_and_the_schedule_resumes_it(
    world: WebhookWorld,
) -> None:
    # GIVEN a SENT job of a Twilio account's queue still sending
    account = twilio_account(world, 1, TOKEN)
    queue_id = queue_for(world, account["id"], twilio=True)
    set_queue_status(world.settings, world.business_id, queue_id, QueueStatus.PROCESSING)
    (job,) = world.sent_jobs(queue_id, account["id"], 1, prefix="SM")
    params: dict[str, str] = fixture("twilio/status_undelivered.json")
    params["MessageSid"] = params["SmsSid"] = job.provider_message_id or ""
    params["ErrorCode"] = "63038"
    before = datetime.now(UTC).replace(microsecond=0)

    # WHEN Twilio reports its daily limit (63038) for it
    response = world.webhooks.twilio(account["id"], params, TOKEN, job_reference(job.queue_id, job.id))

    # THEN the queue is paused, and one schedule in the group resumes it when the rolling 24 hours have passed
    assert response.status == 200, response.body
    assert world.business.get(f"/api/whatsapp/queue/{queue_id}/process").body["status"] == "PAUSED"
    scheduler = boto3.client("scheduler", region_name=world.settings.region)
    group = str(world.settings.schedule_group_name)
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]]
    assert names == [f"{queue_id}-resume"]
    schedule = scheduler.get_schedule(Name=f"{queue_id}-resume", GroupName=group)
    at = datetime.strptime(schedule["ScheduleExpression"], "at(%Y-%m-%dT%H:%M:%S)").replace(tzinfo=UTC)
    assert before + timedelta(hours=24) <= at <= datetime.now(UTC) + timedelta(hours=24)
    assert json.loads(schedule["Target"]["Input"])["action"] == "resume"

    # WHEN it fires (the scheduler function gets the event Scheduler fills in)
    fired = load_function_module("scheduler", "handler").lambda_handler(
        {
            "source": "wabacast.schedule",
            "action": "resume",
            "businessId": world.business_id,
            "queueId": queue_id,
            "scheduledTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        FakeLambdaContext(),
    )

    # THEN the queue sends again
    assert fired["outcome"] == "resumed: the provider's limit has reset", fired
    assert world.business.get(f"/api/whatsapp/queue/{queue_id}/process").body["status"] == "PROCESSING"


def test_a_resume_by_request_before_the_reset_leaves_no_schedule(world: WebhookWorld) -> None:
    # GIVEN a queue a late Twilio daily limit paused, with its resume schedule
    account = twilio_account(world, 1, TOKEN)
    queue_id = queue_for(world, account["id"], twilio=True)
    set_queue_status(world.settings, world.business_id, queue_id, QueueStatus.PROCESSING)
    (job,) = world.sent_jobs(queue_id, account["id"], 1, prefix="SM")
    params: dict[str, str] = fixture("twilio/status_undelivered.json")
    params["MessageSid"] = params["SmsSid"] = job.provider_message_id or ""
    params["ErrorCode"] = "63038"
    world.webhooks.twilio(account["id"], params, TOKEN, job_reference(job.queue_id, job.id))
    scheduler = boto3.client("scheduler", region_name=world.settings.region)
    group = str(world.settings.schedule_group_name)
    assert len(scheduler.list_schedules(GroupName=group)["Schedules"]) == 1

    # WHEN the business resumes it by request
    resumed = world.business.post(f"/api/whatsapp/queue/{queue_id}/resume")

    # THEN it sends, and no schedule is left to fire later
    assert resumed.status in (200, 202), resumed.body
    assert scheduler.list_schedules(GroupName=group)["Schedules"] == []


def test_late_failures_of_one_queue_in_one_notification_read_the_queue_once(
    world: WebhookWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 10 SENT jobs of a queue still sending, and one notification reporting 131049 for each of them
    account = meta_account(world, 1, NUMBER_ID, SECRET)
    queue_id = queue_for(world, account["id"])
    set_queue_status(world.settings, world.business_id, queue_id, QueueStatus.PROCESSING)
    jobs = world.sent_jobs(queue_id, account["id"], 10)
    envelope = _marketing_limit(jobs[0])
    envelope["entry"][0]["changes"][0]["value"]["statuses"] = [
        _marketing_limit(job)["entry"][0]["changes"][0]["value"]["statuses"][0] for job in jobs
    ]
    reads: list[dict[str, Any]] = []
    real_call = botocore.client.BaseClient._make_api_call

    def counting_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "GetItem":
            reads.append(params["Key"])
        return real_call(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting_call)

    # WHEN Meta posts it
    response = world.webhooks.meta(envelope, SECRET)

    # THEN every job waits for its re-feed, and the queue (which decides whether a job may wait) was read once
    assert response.status == 200, response.body
    assert {world.job(job).status for job in jobs} == {JobStatus.PENDING}
    queue_reads = [key for key in reads if key["SK"]["S"].endswith(queue_id)]
    assert len(queue_reads) == 1, reads
