"""Cancel, retry-failed, dead letters and schedules, through the API, the planner and the senders."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import ApiClient, phone
from tests.integration.delivery.conftest import (
    Invocation,
    Pipeline,
    assert_counters_add_up,
    error_counts,
    new_queue,
    process,
    queue_action,
    sandbox_account,
)
from wabacast.adapters.dynamodb.jobs import DynamoJobStore
from wabacast.domain.delivery import DEAD_LETTER_REFEEDS, MAX_RECEIVE_COUNT
from wabacast_local.sandbox import SandboxServer


def test_cancel_skips_every_job_not_sent_yet(business: ApiClient, make_pipeline: Callable[..., Pipeline]) -> None:
    # GIVEN a queue that sent its first window (10/s, one second at a time) and has its second one in SQS
    account = sandbox_account(business, phone(1), mps=10)
    pipeline = make_pipeline(feed_window_s=1)
    recipients = [phone(6_000 + n) for n in range(30)]
    queue = new_queue(business, recipients)
    process(business, queue["id"])
    pipeline.tick()
    pipeline.drain()
    pipeline.tick()
    assert pipeline.backlog(account["id"]) == 10

    # WHEN it is cancelled
    cancelled = queue_action(business, queue["id"], "cancel")
    # AND the senders and the planner run on
    for _ in range(2):
        pipeline.drain()
        pipeline.tick()

    # THEN it is CANCELLED at once, with its reason
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["statusReason"] == "cancelled by request"
    # AND nothing more was sent: the jobs in SQS and those still in the table became SKIPPED
    assert len(pipeline.sandbox_messages()) == 10
    assert pipeline.job_statuses(queue["id"]) == {"SENT": 10, "SKIPPED": 20}
    progress = pipeline.progress(queue["id"])
    assert progress["status"] == "CANCELLED"
    assert progress["counters"]["pending"] == 0
    assert progress["counters"]["skipped"] == 20
    assert_counters_add_up(progress["counters"])
    assert pipeline.backlog(account["id"]) == 0
    # AND the planner let go of it
    assert pipeline.tick()["accounts"] == 0


def test_cancel_has_the_planner_skip_the_jobs_never_fed(business: ApiClient, pipeline: Pipeline) -> None:
    # GIVEN a queue with one job sent and four planned but never fed (its account's daily budget is used up)
    sandbox_account(business, phone(1), mps=10, daily=1)
    recipients = [phone(6_100 + n) for n in range(5)]
    queue = new_queue(business, recipients)
    process(business, queue["id"])
    pipeline.tick()
    pipeline.drain()
    assert len(pipeline.sandbox_messages()) == 1

    # WHEN it is cancelled and the planner runs
    queue_action(business, queue["id"], "cancel")
    pipeline.tick()

    # THEN the waiting jobs were skipped by the planner, the counters add up
    assert pipeline.job_statuses(queue["id"]) == {"SENT": 1, "SKIPPED": 4}
    counters = pipeline.progress(queue["id"])["counters"]
    assert counters["skipped"] == 4
    assert counters["pending"] == 0
    assert_counters_add_up(counters)


def test_retry_failed_requeues_jobs_that_ran_out_of_attempts_and_sends_them(
    business: ApiClient, pipeline: Pipeline, sandbox: SandboxServer
) -> None:
    # GIVEN a provider failing every send with a retryable error, and a queue allowing a single attempt
    sandbox.configure(failure_rate=1.0, failure_code=131016)
    sandbox_account(business, phone(1))
    recipients = [phone(6_200 + n) for n in range(6)]
    queue = new_queue(business, recipients, maxAttempts=1)
    process(business, queue["id"])
    failed = pipeline.run_until_settled(queue["id"], max_rounds=5)[queue["id"]]
    assert failed["status"] == "COMPLETED"
    assert failed["counters"]["failed"] == len(recipients)
    assert error_counts(failed) == {"131016": len(recipients)}
    assert pipeline.sandbox_messages() == []

    # WHEN the provider recovers and the failures are retried
    sandbox.configure(failure_rate=0.0)
    response = business.post(f"/api/whatsapp/queue/{queue['id']}/retry-failed")
    after_retry = pipeline.progress(queue["id"])
    final = pipeline.run_until_settled(queue["id"], max_rounds=5)[queue["id"]]

    # THEN all of them were requeued, the queue went back to PROCESSING, and it completed with all sent
    assert response.status == 200, response.body
    assert response.body == {"requeued": len(recipients), "more": False}
    assert after_retry["status"] == "PROCESSING"
    assert after_retry["counters"]["pending"] == len(recipients)
    assert_counters_add_up(after_retry["counters"])
    assert final["status"] == "COMPLETED"
    assert final["counters"]["sent"] == len(recipients)
    assert final["counters"]["failed"] == 0
    assert pipeline.recipients_messaged() == dict.fromkeys(recipients, 1)
    # AND there is nothing left to retry
    again = business.post(f"/api/whatsapp/queue/{queue['id']}/retry-failed")
    assert again.body == {"requeued": 0, "more": False}


def test_retry_failed_leaves_permanent_failures_alone(
    business: ApiClient, pipeline: Pipeline, sandbox: SandboxServer
) -> None:
    # GIVEN one recipient the provider refuses for good (131026 undeliverable)
    sandbox.configure(recipient_errors={phone(6_300): 131026})
    sandbox_account(business, phone(1))
    queue = new_queue(business, [phone(6_300), phone(6_301)])
    process(business, queue["id"])
    pipeline.run_until_settled(queue["id"], max_rounds=5)

    # WHEN its failures are retried
    response = business.post(f"/api/whatsapp/queue/{queue['id']}/retry-failed")

    # THEN nothing is requeued: a permanent failure is not retryable
    assert response.body == {"requeued": 0, "more": False}
    progress = pipeline.progress(queue["id"])
    assert progress["status"] == "COMPLETED"
    assert progress["counters"]["failed"] == 1
    assert progress["counters"]["sent"] == 1


def test_a_dead_lettered_message_of_a_job_short_of_its_attempts_is_fed_again(
    business: ApiClient, pipeline: Pipeline
) -> None:
    # GIVEN two jobs in the account's queue
    account = sandbox_account(business, phone(1))
    queue = new_queue(business, [phone(6_400), phone(6_401)])
    process(business, queue["id"])
    pipeline.tick()
    messages = pipeline.receive(account["id"])
    assert len(messages) == 2
    doomed = messages[0]
    job_id = json.loads(doomed["Body"])["j"]
    pipeline.release([Invocation(account["id"], messages)])

    # WHEN a message for one of them lands in the dead-letter queue and the dead-letter consumer runs
    pipeline.sqs.send_message(
        QueueUrl=pipeline.queue_url(account["id"], dead_letter=True),
        MessageBody=doomed["Body"],
        MessageGroupId="dlq",
        MessageDeduplicationId="dlq-1",
    )
    assert pipeline.drain_dead_letters() == 1

    # THEN the job, which had none of its attempts, is handed back to the planner, not failed
    job = next(job for job in pipeline.jobs(queue["id"]) if job.id == job_id)
    assert (job.status.value, job.attempts, job.refeed, job.dead_letters) == ("PENDING", 0, True, 1)
    assert_counters_add_up(pipeline.progress(queue["id"])["counters"])
    # AND both jobs are sent once, the handed-back one counting its first attempt
    pipeline.drain()
    pipeline.tick()
    pipeline.drain()
    pipeline.tick()
    assert pipeline.recipients_messaged() == {phone(6_400): 1, phone(6_401): 1}
    assert {(job.status.value, job.attempts) for job in pipeline.jobs(queue["id"])} == {("SENT", 1)}
    final = pipeline.progress(queue["id"])
    assert final["status"] == "COMPLETED"
    assert final["counters"]["sent"] == 2


def test_a_message_the_sender_cannot_process_is_redriven_fed_once_more_and_its_job_failed(
    business: ApiClient, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a sender that crashes on every delivery of one queue's batch
    account = sandbox_account(business, phone(1))
    queue = new_queue(business, [phone(6_500)])
    process(business, queue["id"])
    pipeline.tick()
    original_get_jobs = DynamoJobStore.get_jobs

    def get_jobs(self: DynamoJobStore, refs: object) -> object:
        raise RuntimeError("the sender cannot handle this record")

    handled = []
    for _ in range(1 + DEAD_LETTER_REFEEDS):
        # WHEN SQS delivers it maxReceiveCount times (each time the visibility timeout lapses)
        monkeypatch.setattr(DynamoJobStore, "get_jobs", get_jobs)
        for _ in range(MAX_RECEIVE_COUNT):
            report = pipeline.drain_once()
            assert len(report.crashed) == 1
            pipeline.redeliver_crashed()
        # AND then hands it to the dead-letter queue instead of the sender
        assert pipeline.drain_once().invocations == []
        monkeypatch.setattr(DynamoJobStore, "get_jobs", original_get_jobs)
        handled.append(pipeline.drain_dead_letters())
        # AND the planner feeds what the dead-letter consumer handed back
        pipeline.tick()

    # THEN the dead-letter consumer handed the job back once (it had had no attempt), then failed it
    assert handled == [1] * (1 + DEAD_LETTER_REFEEDS)
    assert pipeline.job_statuses(queue["id"]) == {"FAILED": 1}
    (job,) = pipeline.jobs(queue["id"])
    assert (job.attempts, job.dead_letters) == (0, DEAD_LETTER_REFEEDS)
    # AND nothing was sent, and the queue is done
    assert pipeline.sandbox_messages() == []
    progress = pipeline.progress(queue["id"])
    assert progress["status"] == "COMPLETED"
    assert progress["counters"]["failed"] == 1
    assert_counters_add_up(progress["counters"])
    assert pipeline.backlog(account["id"]) == 0


def test_a_queue_starting_later_is_scheduled_not_processed(business: ApiClient, pipeline: Pipeline) -> None:
    # GIVEN a queue whose schedule starts tomorrow
    sandbox_account(business, phone(1))
    start_at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    queue = new_queue(business, [phone(6_600)], schedule={"startAt": start_at, "timezone": "UTC"})

    # WHEN it is processed, and the planner and senders run
    started = process(business, queue["id"])
    pipeline.tick()
    pipeline.drain()

    # THEN it is SCHEDULED, not PROCESSING: no job was planned and nothing sent
    assert started["status"] == "SCHEDULED"
    progress = pipeline.progress(queue["id"])
    assert progress["status"] == "SCHEDULED"
    assert progress["counters"]["total"] == 0
    assert pipeline.jobs(queue["id"]) == []
    assert pipeline.sandbox_messages() == []
