"""At most once: a job is never sent twice, whatever SQS or a dying sender does."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
from wabacast.adapters.dynamodb.jobs import DynamoJobStore
from wabacast.adapters.sqs import AccountQueues
from wabacast.domain.jobs import JobMove, JobStatus


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


def test_two_copies_of_a_job_in_one_batch_send_once(business: ApiClient, pipeline: Pipeline) -> None:
    # GIVEN a job whose SQS message is there twice (a planner re-fed it while its first message still waited)
    account = sandbox_account(business, phone(1))
    queue = new_queue(business, [phone(100)])
    process(business, queue["id"])
    pipeline.tick()
    original = pipeline.receive(account["id"])
    assert len(original) == 1
    pipeline.sqs.send_message(
        QueueUrl=pipeline.queue_url(account["id"]),
        MessageBody=original[0]["Body"],
        MessageGroupId="another-group",
        MessageDeduplicationId="another-copy",
    )
    (copy,) = pipeline.receive(account["id"])

    # WHEN one sender batch holds both copies (DynamoDB refuses a BatchGetItem naming a key twice)
    invocation = pipeline.invoke_sender(account["id"], [*original, copy])

    # THEN the batch succeeds: one message went out, and both copies are acknowledged
    assert invocation.error is None
    assert invocation.failures == set()
    assert pipeline.recipients_messaged() == {phone(100): 1}
    assert pipeline.progress(queue["id"])["counters"]["sent"] == 1


def test_a_sender_dying_after_the_provider_accepted_leaves_the_jobs_failed_unknown_never_resent(
    business: ApiClient, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a batch of three jobs, where the sender dies after the provider accepted the messages and before it
    # recorded them (a batch's outcomes are written together, after its provider calls)
    account = sandbox_account(business, phone(1))
    recipients = [phone(100), phone(101), phone(102)]
    queue = new_queue(business, recipients)
    process(business, queue["id"])
    pipeline.tick()
    original_settle = DynamoJobStore.settle
    died: list[int] = []

    def settle(self: DynamoJobStore, moves: Sequence[JobMove]) -> list[JobMove]:
        if any(move.job.status == JobStatus.SENT for move in moves) and not died:
            died.append(len(moves))
            raise RuntimeError("the sender's sandbox was killed")
        return original_settle(self, moves)

    monkeypatch.setattr(DynamoJobStore, "settle", settle)

    # WHEN the batch is delivered: the invocation fails, so SQS keeps the batch
    first = pipeline.drain_once()
    # AND the messages become visible again and are delivered once more
    assert len(first.crashed) == 1
    assert died == [3]
    assert pipeline.redeliver_crashed() == 3
    pipeline.drain()
    pipeline.tick()

    # THEN the jobs the sender died on are FAILED as UNKNOWN_OUTCOME: the provider may have them
    jobs = pipeline.jobs(queue["id"])
    assert {job.status for job in jobs} == {JobStatus.FAILED}
    assert {job.last_error.code for job in jobs if job.last_error} == {"UNKNOWN_OUTCOME"}
    # AND the provider got exactly one message for each recipient: none was resent
    assert pipeline.recipients_messaged() == dict.fromkeys(recipients, 1)
    # AND the counters add up, the error is reported, the queue is done
    progress = pipeline.progress(queue["id"])
    assert progress["counters"]["sent"] == 0
    assert progress["counters"]["failed"] == 3
    assert_counters_add_up(progress["counters"])
    assert error_counts(progress) == {"UNKNOWN_OUTCOME": 3}
    assert progress["status"] == "COMPLETED"
    assert pipeline.backlog(account["id"]) == 0


def test_a_sender_dying_before_its_claims_leaves_the_jobs_claimable_and_sends_them_once(
    business: ApiClient, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a batch whose sender dies while waiting for its rate slots, before claiming any job
    account = sandbox_account(business, phone(1))
    recipients = [phone(110), phone(111)]
    queue = new_queue(business, recipients)
    process(business, queue["id"])
    pipeline.tick()
    original_claim = DynamoJobStore.claim
    died: list[str] = []

    def claim(self: DynamoJobStore, move: JobMove) -> bool:
        if not died:
            died.append(move.job.id)
            raise RuntimeError("the sender's sandbox timed out while sleeping for its slot")
        return original_claim(self, move)

    monkeypatch.setattr(DynamoJobStore, "claim", claim)

    # WHEN the batch is delivered and the invocation dies, and SQS delivers it again
    assert len(pipeline.drain_once().crashed) == 1
    pipeline.redeliver_crashed()
    progress = pipeline.run_until_settled(queue["id"], max_rounds=5)[queue["id"]]

    # THEN nothing was lost to an unknown outcome: every job was sent, once
    assert progress["status"] == "COMPLETED"
    assert progress["counters"]["sent"] == len(recipients)
    assert progress["counters"]["failed"] == 0
    assert pipeline.recipients_messaged() == dict.fromkeys(recipients, 1)
    assert pipeline.backlog(account["id"]) == 0


def test_jobs_lost_between_the_planner_and_sqs_are_fed_again_and_sent_once(
    business: ApiClient, make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a planner whose messages are lost on their way to SQS after it moved its feed cursor past them
    account = sandbox_account(business, phone(1))
    pipeline = make_pipeline(requeue_after_s=0.001)
    queue = new_queue(business, [phone(100), phone(101)])
    process(business, queue["id"])
    with monkeypatch.context() as lose:
        lose.setattr(AccountQueues, "send", lambda self, account_id, messages: [])
        assert pipeline.tick()["jobs_fed"] == 2
    assert pipeline.backlog(account["id"]) == 0

    # WHEN later ticks find them still unclaimed after `requeue_after_s`, and the senders run between them
    for _ in range(3):
        pipeline.tick()
        pipeline.drain()

    # THEN each was fed again and sent exactly once
    assert pipeline.recipients_messaged() == {phone(100): 1, phone(101): 1}
    progress = pipeline.progress(queue["id"])
    assert progress["status"] == "COMPLETED"
    assert progress["counters"]["sent"] == 2


def test_a_message_that_is_not_a_job_is_acknowledged_and_the_others_are_sent(
    business: ApiClient, pipeline: Pipeline
) -> None:
    # GIVEN a job in the account's queue, and a message beside it that names no job
    account = sandbox_account(business, phone(1))
    queue = new_queue(business, [phone(120)])
    process(business, queue["id"])
    pipeline.tick()
    pipeline.sqs.send_message(
        QueueUrl=pipeline.queue_url(account["id"]),
        MessageBody='{"not": "a job"}',
        MessageGroupId="stray",
        MessageDeduplicationId="stray-1",
    )

    # WHEN the sender gets both
    report = pipeline.drain_once()

    # THEN the invocation succeeds, the stray message is consumed, and the job is sent
    assert report.crashed == []
    assert pipeline.backlog(account["id"]) == 0
    assert pipeline.recipients_messaged() == {phone(120): 1}
