"""Receive counts are not attempts (docs/decisions.md, 16): rate-limit hand-backs and receives the sender never
saw (a throttled function) neither use a job's attempts nor send it to the dead-letter queue."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.integration.conftest import ApiClient, phone
from tests.integration.delivery.conftest import (
    Invocation,
    Pipeline,
    assert_counters_add_up,
    new_queue,
    process,
    sandbox_account,
)
from wabacast.adapters.dynamodb.ratelimit import GCRA_SK, RateLimiter
from wabacast.domain.delivery import MAX_RECEIVE_COUNT, SQS_HAND_BACKS
from wabacast.domain.jobs import Job, JobStatus
from wabacast.storage.table import PARTITION_KEY, SORT_KEY

HAND_BACKS = 15


def _hold_every_slot_for_an_hour(pipeline: Pipeline, account_id: str) -> None:
    """Other senders reserve the account's next hour of slots (1 msg/s): the real GCRA item, as they would."""
    # One recipient of their own: the hour of slots takes one place of the messaging limit, not 3,600.
    reservation = RateLimiter(pipeline.table).reserve(
        account_id,
        [phone(9_999)] * 3600,
        messages_per_second=1,
        recipient_limit=1_000_000,
        now=time.time(),
        max_wait_s=1.0,
    )
    assert len(reservation.slots) == 3600


def _the_hour_passes(pipeline: Pipeline, account_id: str) -> None:
    pipeline.table.client.delete_item(
        TableName=pipeline.table.table_name,
        Key={PARTITION_KEY: {"S": f"RATE#{account_id}"}, SORT_KEY: {"S": GCRA_SK}},
    )


def _only_job(pipeline: Pipeline, queue_id: str) -> Job:
    (job,) = pipeline.jobs(queue_id)
    return job


def _receive_count(message: dict[str, Any]) -> int:
    return int(message["Attributes"]["ApproximateReceiveCount"])


def test_fifteen_rate_limit_hand_backs_then_a_success_use_one_attempt_and_dead_letter_nothing(
    business: ApiClient, make_pipeline: Callable[..., Pipeline]
) -> None:
    # GIVEN an account at 1 message/s whose slots other senders hold for the next hour, and a queue of one
    account = sandbox_account(business, phone(1), mps=1)
    pipeline = make_pipeline(max_rate_wait_s=1)
    queue = new_queue(business, [phone(7_000)])
    process(business, queue["id"])
    _hold_every_slot_for_an_hour(pipeline, account["id"])

    # WHEN a sender gets its message 15 times and finds no slot each time; between two deliveries the wait the
    # sender asked for passes (SQS hands out what it held back) and the planner ticks (it feeds what came back)
    receive_counts: list[int] = []
    for _ in range(HAND_BACKS):
        pipeline.tick()
        report = pipeline.drain_once(account_ids=[account["id"]])
        assert len(report.invocations) == 1, "the message was neither in the queue nor fed again"
        (invocation,) = report.invocations
        (message,) = invocation.messages
        receive_counts.append(_receive_count(message))
        assert invocation.error is None
        job = _only_job(pipeline, queue["id"])
        assert (job.status, job.attempts) == (JobStatus.PENDING, 0)
        pipeline.release(
            [Invocation(account["id"], [m for m in invocation.messages if m["MessageId"] in invocation.failures])]
        )
    # AND then the slots free up
    _the_hour_passes(pipeline, account["id"])
    pipeline.tick()
    pipeline.drain()
    pipeline.tick()

    # THEN the job is SENT, once, with one attempt
    job = _only_job(pipeline, queue["id"])
    assert (job.status, job.attempts, job.dead_letters) == (JobStatus.SENT, 1, 0)
    assert pipeline.recipients_messaged() == {phone(7_000): 1}
    progress = pipeline.progress(queue["id"])
    assert progress["status"] == "COMPLETED"
    assert (progress["counters"]["sent"], progress["counters"]["failed"]) == (1, 0)
    assert_counters_add_up(progress["counters"])
    # AND no message came near the redrive: SQS kept a message for SQS_HAND_BACKS hand-backs, then the planner fed
    # a new one
    cycle = list(range(1, SQS_HAND_BACKS + 2))
    assert receive_counts == (cycle * HAND_BACKS)[:HAND_BACKS]
    assert max(receive_counts) < MAX_RECEIVE_COUNT
    # AND nothing is in the dead-letter queue
    assert pipeline.receive(account["id"], dead_letter=True) == []
    assert pipeline.backlog(account["id"]) == 0


def test_receives_a_throttled_function_never_saw_do_not_fail_the_job(business: ApiClient, pipeline: Pipeline) -> None:
    # GIVEN a job in its account's queue
    account = sandbox_account(business, phone(1))
    queue = new_queue(business, [phone(7_100)])
    process(business, queue["id"])
    pipeline.tick()

    # WHEN Lambda's poller receives its message maxReceiveCount times and gives it back each time, the function
    # being throttled (the sender never runs), so SQS moves it to the dead-letter queue
    for _ in range(MAX_RECEIVE_COUNT):
        messages = pipeline.receive(account["id"])
        assert len(messages) == 1
        pipeline.release([Invocation(account["id"], messages)])
    assert pipeline.receive(account["id"]) == []
    # AND the dead-letter consumer runs, then the planner and the senders
    assert pipeline.drain_dead_letters() == 1
    handed_back = _only_job(pipeline, queue["id"])
    pipeline.tick()
    pipeline.drain()
    pipeline.tick()

    # THEN the dead-letter consumer saw the job had had none of its attempts and handed it back to the planner
    assert (handed_back.status, handed_back.attempts, handed_back.refeed) == (JobStatus.PENDING, 0, True)
    # AND it was fed again and sent, with one attempt
    job = _only_job(pipeline, queue["id"])
    assert (job.status, job.attempts, job.dead_letters) == (JobStatus.SENT, 1, 1)
    assert pipeline.recipients_messaged() == {phone(7_100): 1}
    progress = pipeline.progress(queue["id"])
    assert progress["status"] == "COMPLETED"
    assert (progress["counters"]["sent"], progress["counters"]["failed"]) == (1, 0)
    assert_counters_add_up(progress["counters"])
    assert pipeline.receive(account["id"], dead_letter=True) == []
