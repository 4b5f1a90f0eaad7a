"""Feeding in windows: a more urgent queue overtakes a running one; pause stops sends within one window."""

from __future__ import annotations

from collections.abc import Callable

from tests.integration.conftest import ApiClient, phone
from tests.integration.delivery.conftest import (
    Pipeline,
    assert_counters_add_up,
    new_queue,
    process,
    queue_action,
    sandbox_account,
)

MPS = 5
WINDOW = MPS * 1  # FEED_WINDOW_S = 1


def test_a_priority_10_queue_started_later_overtakes_a_running_priority_1_queue(
    business: ApiClient, make_pipeline: Callable[..., Pipeline]
) -> None:
    # GIVEN a slow account (5 messages/s) fed one second of sends at a time
    sandbox_account(business, phone(1), mps=MPS)
    pipeline = make_pipeline(feed_window_s=1)
    # AND a priority-1 queue that is already sending
    slow = [phone(1_000 + n) for n in range(20)]
    low = new_queue(business, slow, priority=1, name="Newsletter")
    process(business, low["id"])
    pipeline.tick()
    pipeline.drain()
    before = len(pipeline.sandbox_messages())
    assert before == WINDOW

    # WHEN a priority-10 queue is started on the same account
    urgent = [phone(2_000 + n) for n in range(2 * WINDOW)]
    high = new_queue(business, urgent, priority=10, name="Outage notice")
    process(business, high["id"])
    rounds = 0
    while pipeline.progress(high["id"])["counters"]["sent"] < len(urgent):
        rounds += 1
        assert rounds <= 5, pipeline.progress(high["id"])
        pipeline.tick()
        pipeline.drain()

    # THEN every send after it started went to its recipients, in its two windows
    after = ["+" + message["to"] for message in pipeline.sandbox_messages()[before:]]
    assert sorted(after) == sorted(urgent)
    assert rounds == 2
    # AND the next tick completes it
    pipeline.tick()
    assert pipeline.progress(high["id"])["status"] == "COMPLETED"
    # AND the priority-1 queue still has pending jobs, and finishes afterwards
    low_progress = pipeline.progress(low["id"])
    assert low_progress["status"] == "PROCESSING"
    assert low_progress["counters"]["pending"] == len(slow) - WINDOW
    assert_counters_add_up(low_progress["counters"])
    final = pipeline.run_until_settled(low["id"], max_rounds=10)[low["id"]]
    assert final["status"] == "COMPLETED"
    assert pipeline.recipients_messaged() == dict.fromkeys(slow + urgent, 1)


def test_pause_stops_sends_within_one_feed_window_and_resume_finishes(
    business: ApiClient, make_pipeline: Callable[..., Pipeline]
) -> None:
    # GIVEN a queue sending 10 messages/s, fed one second at a time
    account = sandbox_account(business, phone(1), mps=10)
    window = 10
    pipeline = make_pipeline(feed_window_s=1)
    recipients = [phone(3_000 + n) for n in range(35)]
    queue = new_queue(business, recipients)
    process(business, queue["id"])
    pipeline.tick()
    pipeline.drain()
    # AND its next window already in the account's SQS queue
    pipeline.tick()
    assert pipeline.backlog(account["id"]) == window
    sent_at_pause = len(pipeline.sandbox_messages())
    assert sent_at_pause == window

    # WHEN it is paused
    paused = queue_action(business, queue["id"], "pause")
    # AND the senders and the planner keep running
    for _ in range(3):
        pipeline.drain()
        pipeline.tick()

    # THEN it is PAUSED with its reason, and at most the jobs already fed went out (here: none, the senders
    # found the queue paused before claiming them)
    assert paused["status"] == "PAUSED"
    assert paused["statusReason"] == "paused by request"
    sent_while_paused = len(pipeline.sandbox_messages()) - sent_at_pause
    assert sent_while_paused <= window
    assert sent_while_paused == 0
    # AND the jobs that were in SQS went back to PENDING, none is left queued, and the counters add up
    assert pipeline.backlog(account["id"]) == 0
    statuses = pipeline.job_statuses(queue["id"])
    assert statuses == {"SENT": window, "PENDING": len(recipients) - window}
    progress = pipeline.progress(queue["id"])
    assert progress["status"] == "PAUSED"
    assert progress["counters"]["pending"] == len(recipients) - window
    assert_counters_add_up(progress["counters"])

    # WHEN it is resumed
    resumed = queue_action(business, queue["id"], "resume")
    final = pipeline.run_until_settled(queue["id"], max_rounds=10)[queue["id"]]

    # THEN it completes and every recipient got exactly one message
    assert resumed["status"] == "PROCESSING"
    assert resumed["statusReason"] is None
    assert final["status"] == "COMPLETED"
    assert final["counters"]["sent"] == len(recipients)
    assert pipeline.recipients_messaged() == dict.fromkeys(recipients, 1)


def test_pause_between_receive_and_send_hands_the_claimed_batch_back(
    business: ApiClient, make_pipeline: Callable[..., Pipeline]
) -> None:
    # GIVEN a batch a sender has already received
    account = sandbox_account(business, phone(1), mps=50)
    pipeline = make_pipeline(feed_window_s=1)
    recipients = [phone(4_000 + n) for n in range(8)]
    queue = new_queue(business, recipients)
    process(business, queue["id"])
    pipeline.tick()
    batch = pipeline.receive(account["id"])
    assert len(batch) == len(recipients)

    # WHEN the queue is paused before the sender runs it
    queue_action(business, queue["id"], "pause")
    invocation = pipeline.invoke_sender(account["id"], batch)

    # THEN nothing is sent, the messages are consumed, and the jobs wait as PENDING for a resume
    assert invocation.error is None
    assert invocation.failures == set()
    assert pipeline.sandbox_messages() == []
    assert pipeline.backlog(account["id"]) == 0
    assert pipeline.job_statuses(queue["id"]) == {"PENDING": len(recipients)}
