"""At most once: a job is never sent twice, whatever SQS or a dying sender does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import ApiClient, FakeLambdaContext, phone
from tests.integration.delivery.conftest import (
    Pipeline,
    assert_counters_add_up,
    error_counts,
    new_queue,
    process,
    sandbox_account,
)
from wabacast.adapters.dynamodb.delivery import DeliveryStore
from wabacast.adapters.sqs import AccountQueues
from wabacast.domain.delivery import JobOutcome
from wabacast.domain.jobs import JobStatus


def test_the_same_sqs_message_delivered_twice_sends_once(business: ApiClient, pipeline: Pipeline) -> None:
    # GIVEN a queue whose jobs are in the account's SQS queue
    account = sandbox_account(business, phone(1))
    recipients = [phone(100), phone(101), phone(102)]
    queue = new_queue(business, recipients)
    process(business, queue["id"])
    pipeline.tick()
    messages = pipeline.receive(account["id"])
    assert len(messages) == 3
    event = pipeline.event(account["id"], messages)

    # WHEN the sender gets the batch, and then the very same batch again (SQS delivers at least once)
    first = pipeline.sender.lambda_handler(event, FakeLambdaContext())
    second = pipeline.sender.lambda_handler(event, FakeLambdaContext())

    # THEN both invocations succeed, and the provider got one message per recipient
    assert first == second == {"batchItemFailures": []}
    assert pipeline.recipients_messaged() == dict.fromkeys(recipients, 1)
    counters = pipeline.progress(queue["id"])["counters"]
    assert counters["sent"] == 3
    assert_counters_add_up(counters)


def test_a_second_copy_of_a_job_in_sqs_is_acknowledged_without_sending(business: ApiClient, pipeline: Pipeline) -> None:
    # GIVEN a job that was sent
    account = sandbox_account(business, phone(1))
    queue = new_queue(business, [phone(100)])
    process(business, queue["id"])
    pipeline.tick()
    original = pipeline.receive(account["id"])
    assert len(original) == 1
    pipeline.invoke_sender(account["id"], original)
    # AND another SQS message for the same job (a planner that re-fed a job it thought lost)
    pipeline.sqs.send_message(
        QueueUrl=pipeline.queue_url(account["id"]),
        MessageBody=original[0]["Body"],
        MessageGroupId=phone(100),
        MessageDeduplicationId="another-copy",
    )

    # WHEN the sender gets that copy
    copy = pipeline.receive(account["id"])
    invocation = pipeline.invoke_sender(account["id"], copy)

    # THEN it is acknowledged, and nothing more was sent
    assert invocation.error is None
    assert invocation.failures == set()
    assert pipeline.backlog(account["id"]) == 0
    assert pipeline.recipients_messaged() == {phone(100): 1}
    assert pipeline.progress(queue["id"])["counters"]["sent"] == 1


def test_a_sender_dying_after_the_provider_accepted_leaves_the_job_failed_unknown_never_resent(
    business: ApiClient, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a batch of three jobs, where the sender dies right after the provider accepted the second one's
    # message and before recording it
    account = sandbox_account(business, phone(1))
    recipients = [phone(100), phone(101), phone(102)]
    queue = new_queue(business, recipients)
    process(business, queue["id"])
    pipeline.tick()
    victim = next(job for job in pipeline.jobs(queue["id"]) if job.phone_number == phone(101))
    original_apply = DeliveryStore.apply
    died: list[str] = []

    def apply(self: DeliveryStore, outcome: JobOutcome, queue_: Any) -> bool:
        if outcome.job.id == victim.id and outcome.job.status == JobStatus.SENT and not died:
            died.append(outcome.job.id)
            raise RuntimeError("the sender's sandbox was killed")
        return original_apply(self, outcome, queue_)

    monkeypatch.setattr(DeliveryStore, "apply", apply)

    # WHEN the batch is delivered: the invocation fails, so SQS keeps the batch
    first = pipeline.drain_once()
    # AND the messages become visible again and are delivered once more
    assert len(first.crashed) == 1
    assert died == [victim.id]
    assert pipeline.redeliver_crashed() == 3
    pipeline.drain()
    pipeline.tick()

    # THEN the job the sender died on is FAILED as UNKNOWN_OUTCOME, the others SENT
    jobs = {job.phone_number: job for job in pipeline.jobs(queue["id"])}
    unknown = jobs[phone(101)]
    assert unknown.status == JobStatus.FAILED
    assert unknown.last_error is not None
    assert unknown.last_error.code == "UNKNOWN_OUTCOME"
    assert {jobs[phone(100)].status, jobs[phone(102)].status} == {JobStatus.SENT}
    # AND the provider got exactly one message for each recipient: the unknown one was not resent
    assert pipeline.recipients_messaged() == dict.fromkeys(recipients, 1)
    # AND the counters add up, the error is reported, the queue is done
    progress = pipeline.progress(queue["id"])
    assert progress["counters"]["sent"] == 2
    assert progress["counters"]["failed"] == 1
    assert_counters_add_up(progress["counters"])
    assert error_counts(progress) == {"UNKNOWN_OUTCOME": 1}
    assert progress["status"] == "COMPLETED"
    assert pipeline.backlog(account["id"]) == 0


def test_jobs_lost_between_the_planner_and_sqs_are_fed_again_and_sent_once(
    business: ApiClient, make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a planner that marks jobs QUEUED and then loses the messages on their way to SQS
    account = sandbox_account(business, phone(1))
    pipeline = make_pipeline(requeue_after_s=0.001)
    queue = new_queue(business, [phone(100), phone(101)])
    process(business, queue["id"])
    with monkeypatch.context() as lose:
        lose.setattr(AccountQueues, "send", lambda self, account_id, messages: [])
        assert pipeline.tick()["jobs_fed"] == 2
    assert pipeline.backlog(account["id"]) == 0

    # WHEN later ticks find them still QUEUED after `requeue_after_s`, and the senders run between them
    for _ in range(3):
        pipeline.tick()
        pipeline.drain()

    # THEN each was fed again and sent exactly once
    assert pipeline.recipients_messaged() == {phone(100): 1, phone(101): 1}
    progress = pipeline.progress(queue["id"])
    assert progress["status"] == "COMPLETED"
    assert progress["counters"]["sent"] == 2
