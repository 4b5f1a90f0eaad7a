"""wabacast.logic.sender on the delivery fakes: at most one send per job, within the account's rate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.unit.delivery.builders import NOW, numbers
from tests.unit.delivery.conftest import DeliveryWorld, counters_add_up
from tests.unit.delivery_fakes import provider_error
from tests.unit.fakes import phone
from wabacast.domain.delivery import MAX_ATTEMPTS_LIMIT, MAX_RECEIVE_COUNT, SQS_HAND_BACKS, JobMessage
from wabacast.domain.jobs import ErrorClass, JobStatus
from wabacast.domain.models import (
    AccountLimits,
    AccountStatus,
    OptOut,
    OptOutSource,
    QualityRating,
    Queue,
    QueueStatus,
)
from wabacast.logic.sender import DeadLetterResult, InboundRecord, dead_letter
from wabacast.providers.errors import local_error

RETRYABLE = provider_error("131000", http_status=500)


def _fed(world: DeliveryWorld, count: int = 3, **queue_fields: Any) -> list[InboundRecord]:
    """A processing queue of `count` numbers, planned and fed; the records a sender receives for it."""
    world.add_queue(recipients=numbers(count), **queue_fields)
    world.plan()
    return world.records()


def _move_queue(world: DeliveryWorld, to: QueueStatus, *, register: bool | None = None) -> None:
    assert world.lifecycle.transition(
        world.queue(), allowed_from=list(QueueStatus), to=to, now=world.clock.now, register=register
    )


# Sending -----------------------------------------------------------------------------------------------------------
def test_a_batch_is_sent_and_its_jobs_settled_with_their_counters(world: DeliveryWorld) -> None:
    # GIVEN three fed jobs of a queue whose variable is static
    world.add_queue(recipients=numbers(3), variables={"1": "Spring sale"})
    world.plan()
    records = world.records()
    world.clock.advance(seconds=2)
    # WHEN a sender gets them in one batch
    result = world.sender().send_batch(world.account.id, records)
    # THEN each goes to the provider once and is settled SENT, with the counters following
    assert (result.sent, result.failed, result.retry) == (3, 0, set())
    sent = world.providers.provider(world.account.id).sent
    assert sorted(message.to for message in sent) == numbers(3)
    assert {(m.from_number, m.template_name, m.language) for m in sent} == {
        (world.account.phone_number, "welcome", "en")
    }
    assert all(message.variables == {"1": "Spring sale"} for message in sent)
    # AND each carries its job's reference, which the provider echoes in its status webhooks (decision 26)
    assert sorted(message.callback_reference or "" for message in sent) == sorted(
        f"q_main/{job.id}" for job in world.jobs.jobs_of("q_main")
    )
    for job in world.jobs.jobs_of("q_main"):
        assert (job.status, job.attempts, job.account_id) == (JobStatus.SENT, 1, world.account.id)
        assert job.provider_message_id is not None
        assert job.sent_at == world.clock.now
        assert job.queued_at == datetime.fromtimestamp(world.wall(), UTC)
    counters = world.jobs.tally("q_main").counters
    assert (counters.total, counters.pending, counters.sent) == (3, 0, 3)
    assert world.metrics.total("MessagesSent", account_id=world.account.id) == 3
    assert world.providers.lookups[0] == (world.account.id, f"wabacast/{world.business.id}/accounts/{world.account.id}")


def test_deliveries_of_settled_or_unknown_jobs_are_acknowledged_without_sending(world: DeliveryWorld) -> None:
    # GIVEN three jobs already sent, delivered again by SQS, with a message naming a job that does not exist
    records = _fed(world)
    sender = world.sender()
    sender.send_batch(world.account.id, records)
    ghost = InboundRecord(
        message_id="msg-ghost",
        receipt_handle="receipt-ghost",
        message=JobMessage(business_id=world.business.id, queue_id="q_main", job_id="job_ghost"),
        queue_url="https://sqs.local/ghost.fifo",
    )
    # WHEN a sender gets them
    again = sender.send_batch(world.account.id, [*records, ghost])
    # THEN nothing is sent again and every message is acknowledged
    assert (again.sent, again.failed, again.retry) == (0, 0, set())
    assert len(world.providers.sent) == 3
    assert world.metrics.total("DuplicateDeliveries") == 4
    assert world.statuses() == {JobStatus.SENT: 3}


def test_a_second_copy_of_a_job_in_the_same_batch_is_spent(world: DeliveryWorld) -> None:
    # GIVEN a batch holding two copies of one job (a feeding and a sweep's re-feeding)
    (record,) = _fed(world, 1)
    copy = InboundRecord("msg-copy", "receipt-copy", record.message, record.queue_url, record.sent_timestamp)
    # WHEN a sender gets it
    result = world.sender().send_batch(world.account.id, [record, copy])
    # THEN the job is sent once and the copy acknowledged
    assert (result.sent, result.retry) == (1, set())
    assert len(world.providers.sent) == 1
    assert world.metrics.total("DuplicateDeliveries") == 1


def test_a_job_found_claimed_fails_as_unknown_outcome_and_is_not_sent_again(world: DeliveryWorld) -> None:
    # GIVEN a job a previous sender claimed and then died with (the provider may have accepted it)
    (record,) = _fed(world, 1)
    job = world.jobs.job_of_phone("q_main", phone(1))
    assert world.jobs.claim(job.claim(account_id=world.account.id, now=world.clock.now))
    # WHEN SQS delivers its message again
    result = world.sender().send_batch(world.account.id, [record])
    # THEN it fails as UNKNOWN_OUTCOME without a provider call
    stored = world.jobs.job_of_phone("q_main", phone(1))
    assert stored.status == JobStatus.FAILED
    assert stored.last_error is not None
    assert (stored.last_error.code, stored.last_error.error_class) == ("UNKNOWN_OUTCOME", ErrorClass.UNKNOWN_OUTCOME)
    assert (result.failed, result.retry) == (1, set())
    assert world.providers.sent == []
    assert world.jobs.tally("q_main").counters.failed == 1


# Queue and account state -------------------------------------------------------------------------------------------
def test_jobs_of_a_cancelled_queue_are_skipped_unsent(world: DeliveryWorld) -> None:
    # GIVEN fed jobs of a queue cancelled since
    records = _fed(world)
    _move_queue(world, QueueStatus.CANCELLED, register=True)
    # WHEN a sender gets them
    result = world.sender().send_batch(world.account.id, records)
    # THEN they are skipped with the reason, not sent, and counted
    assert {(job.status, job.skip_reason) for job in world.jobs.jobs_of("q_main")} == {
        (JobStatus.SKIPPED, "queue cancelled")
    }
    assert (result.sent, result.retry) == (0, set())
    assert world.providers.sent == []
    counters = world.jobs.tally("q_main").counters
    assert (counters.pending, counters.skipped) == (0, 3)


def test_jobs_of_a_paused_queue_are_handed_back_to_the_planner(world: DeliveryWorld) -> None:
    # GIVEN fed jobs of a queue paused since
    records = _fed(world)
    _move_queue(world, QueueStatus.PAUSED, register=False)
    # WHEN a sender gets them
    result = world.sender().send_batch(world.account.id, records)
    # THEN they wait, pending and handed back, for the planner to feed them on resume
    assert {(job.status, job.refeed, job.attempts) for job in world.jobs.jobs_of("q_main")} == {
        (JobStatus.PENDING, True, 0)
    }
    assert (result.sent, result.retry) == (0, set())
    assert world.providers.sent == []
    assert world.jobs.tally("q_main").counters.pending == 3


@pytest.mark.parametrize(
    "trouble", [{"status": AccountStatus.SUSPENDED}, {"quality_rating": QualityRating.RED}], ids=["suspended", "red"]
)
def test_jobs_are_handed_back_when_the_account_can_no_longer_send(
    world: DeliveryWorld, trouble: dict[str, object]
) -> None:
    # GIVEN fed jobs of an account that stopped being able to send
    records = _fed(world)
    world.set_account(world.account, **trouble)
    # WHEN a sender of that account gets them
    result = world.sender().send_batch(world.account.id, records)
    # THEN they are handed back unsent (the planner feeds them through the default account)
    assert {(job.status, job.refeed) for job in world.jobs.jobs_of("q_main")} == {(JobStatus.PENDING, True)}
    assert (result.sent, result.retry) == (0, set())
    assert world.providers.sent == []


def test_a_number_that_opted_out_after_planning_is_not_sent_to(world: DeliveryWorld) -> None:
    # GIVEN fed jobs, and one number that opted out since
    records = _fed(world)
    world.contacts.add_opt_out(
        world.business.id, OptOut(phone_number=phone(2), source=OptOutSource.STOP_REPLY, created_at=NOW)
    )
    # WHEN a sender gets them
    result = world.sender().send_batch(world.account.id, records)
    # THEN that job is settled OPTED_OUT without a provider call; the others are sent
    assert world.jobs.job_of_phone("q_main", phone(2)).status == JobStatus.OPTED_OUT
    assert result.sent == 2
    assert phone(2) not in [message.to for message in world.providers.sent]
    counters = world.jobs.tally("q_main").counters
    assert (counters.sent, counters.opted_out, counters.pending) == (2, 1, 0)


# Provider errors ---------------------------------------------------------------------------------------------------
def test_a_retryable_error_is_redelivered_with_backoff_until_max_attempts_then_fails(world: DeliveryWorld) -> None:
    # GIVEN a fed job of a queue allowing 3 attempts, and a provider failing with a retryable error every time
    (record,) = _fed(world, 1, max_attempts=3)
    world.providers.provider(world.account.id).fail_next(RETRYABLE, times=3)
    sender = world.sender()
    # WHEN SQS delivers its message three times
    results = []
    for _ in range(3):
        world.clock.advance(seconds=30)
        results.append(sender.send_batch(world.account.id, [record]))
    # THEN the first two go back to SQS after 15 s then 30 s, and the third fails the job
    assert [result.retry for result in results] == [{record.message_id}, {record.message_id}, set()]
    assert [result.failed for result in results] == [0, 0, 1]
    assert world.feed.redeliveries == [
        (record.queue_url, record.receipt_handle, 15),
        (record.queue_url, record.receipt_handle, 30),
    ]
    job = world.jobs.job_of_phone("q_main", phone(1))
    assert (job.status, job.attempts) == (JobStatus.FAILED, 3)
    assert job.last_error is not None
    assert (job.last_error.code, job.last_error.error_class) == ("131000", ErrorClass.RETRYABLE)
    tally = world.jobs.tally("q_main")
    assert (tally.counters.failed, tally.counters.pending) == (1, 0)
    assert tally.error_counts == {"131000": 3}  # every failed attempt is in the error statistics
    assert world.metrics.total("MessagesRetried") == 2


def test_a_permanent_error_fails_the_job_at_once(world: DeliveryWorld) -> None:
    # GIVEN a fed job the provider cannot deliver
    (record,) = _fed(world, 1)
    world.providers.provider(world.account.id).fail_next(provider_error("131026"))
    # WHEN a sender gets it
    result = world.sender().send_batch(world.account.id, [record])
    # THEN it fails without a retry
    job = world.jobs.job_of_phone("q_main", phone(1))
    assert job.status == JobStatus.FAILED
    assert job.last_error is not None
    assert job.last_error.error_class == ErrorClass.PERMANENT
    assert (result.failed, result.retry) == (1, set())
    assert world.feed.redeliveries == []
    assert world.jobs.tally("q_main").error_counts == {"131026": 1}


def test_an_answer_that_may_hide_an_acceptance_is_never_retried(world: DeliveryWorld) -> None:
    # GIVEN a fed job whose provider call timed out after the request left
    (record,) = _fed(world, 1)
    world.providers.provider(world.account.id).fail_next(local_error("READ_TIMEOUT", "no answer in 10 s"))
    # WHEN a sender gets it
    result = world.sender().send_batch(world.account.id, [record])
    # THEN it fails with that error, not back to SQS
    job = world.jobs.job_of_phone("q_main", phone(1))
    assert job.status == JobStatus.FAILED
    assert job.last_error is not None
    assert (job.last_error.code, job.last_error.error_class) == ("READ_TIMEOUT", ErrorClass.UNKNOWN_OUTCOME)
    assert (result.failed, result.retry) == (1, set())


def test_a_provider_opt_out_fails_the_job_and_adds_the_number_to_the_opt_outs(world: DeliveryWorld) -> None:
    # GIVEN a fed job whose recipient stopped marketing messages at the provider
    (record,) = _fed(world, 1)
    world.providers.provider(world.account.id).fail_next(provider_error("131050"))
    # WHEN a sender gets it
    result = world.sender().send_batch(world.account.id, [record])
    # THEN the job fails and the number joins the business's opt-outs, naming the provider's code
    assert world.jobs.job_of_phone("q_main", phone(1)).status == JobStatus.FAILED
    assert result.failed == 1
    opt_out = world.contacts.get_opt_out(world.business.id, phone(1))
    assert opt_out is not None
    assert opt_out.source == OptOutSource.PROVIDER
    assert opt_out.reason is not None
    assert opt_out.reason.startswith("provider 131050:")


def test_a_pause_queue_error_fails_the_job_and_pauses_the_queue(world: DeliveryWorld) -> None:
    # GIVEN three fed jobs, the first of which meets an expired access token
    records = _fed(world)
    world.providers.provider(world.account.id).fail_for(phone(1), provider_error("190", http_status=401))
    # WHEN a sender gets them
    result = world.sender().send_batch(world.account.id, records)
    # THEN that job fails, the queue is paused with the error as reason and leaves the registry
    assert world.jobs.job_of_phone("q_main", phone(1)).status == JobStatus.FAILED
    assert (result.failed, result.sent) == (1, 2)
    queue = world.queue()
    assert queue.status == QueueStatus.PAUSED
    assert queue.status_reason is not None
    assert queue.status_reason.startswith("provider error 190:")
    assert world.registered() == set()


# Rate limits -------------------------------------------------------------------------------------------------------
def test_without_a_slot_within_the_wait_the_batch_goes_back_to_sqs(world: DeliveryWorld) -> None:
    # GIVEN fed jobs, and an account whose next free slot is 7.5 s away (more than the sender may wait)
    records = _fed(world)
    world.rates.deny(retry_after_s=7.5)
    # WHEN a sender gets them
    result = world.sender().send_batch(world.account.id, records)
    # THEN each message is made invisible until the slots free up, and no job is touched
    assert result.retry == {record.message_id for record in records}
    assert world.feed.redeliveries == [(record.queue_url, record.receipt_handle, 8) for record in records]
    assert {(job.status, job.attempts, job.refeed) for job in world.jobs.jobs_of("q_main")} == {
        (JobStatus.PENDING, 0, False)
    }
    assert world.providers.sent == []
    assert world.metrics.total("RateLimited", account_id=world.account.id) == 3


def test_a_message_handed_back_through_sqs_often_enough_goes_back_to_the_planner(world: DeliveryWorld) -> None:
    # GIVEN fed jobs, an account whose slots are taken for longer than the sender may wait, and messages SQS has
    # handed out SQS_HAND_BACKS times already (hand-backs or throttled receives: SQS cannot tell)
    records = [replace(record, receive_count=SQS_HAND_BACKS + 1) for record in _fed(world)]
    world.rates.deny(retry_after_s=7.5)
    # WHEN a sender gets them
    result = world.sender().send_batch(world.account.id, records)
    # THEN they are not made invisible again (that would bring them nearer the redrive) but handed back to the
    # planner, which feeds new messages; no attempt is counted
    assert result.retry == set()
    assert world.feed.redeliveries == []
    assert {(job.status, job.attempts, job.refeed) for job in world.jobs.jobs_of("q_main")} == {
        (JobStatus.PENDING, 0, True)
    }
    assert world.providers.sent == []
    assert world.metrics.total("RateLimited", account_id=world.account.id) == 3


def test_the_redrive_sits_above_every_receive_the_rules_account_for() -> None:
    # GIVEN the largest maxAttempts a queue accepts
    (bound,) = (rule.le for rule in Queue.model_fields["max_attempts"].metadata if hasattr(rule, "le"))
    # THEN the redrive's derivation uses it, and leaves room for hand-backs through SQS and unseen receives
    assert bound == MAX_ATTEMPTS_LIMIT
    assert MAX_RECEIVE_COUNT > MAX_ATTEMPTS_LIMIT + SQS_HAND_BACKS


def test_the_wait_for_a_slot_is_bounded_by_max_rate_wait(world: DeliveryWorld) -> None:
    # GIVEN fed jobs, and other senders holding the account's slots for the next 30 s
    records = _fed(world, 1)
    world.rates.tat[world.account.id] = world.wall() + 30
    # WHEN a sender that may wait 20 s gets them
    result = world.sender(max_rate_wait_s=20).send_batch(world.account.id, records)
    # THEN the message comes back after the slots free up
    assert result.retry == {records[0].message_id}
    assert world.feed.redeliveries == [(records[0].queue_url, records[0].receipt_handle, 31)]


def test_jobs_over_the_messaging_limit_are_handed_back(world: DeliveryWorld) -> None:
    # GIVEN fed jobs, and an account whose messaging limit has no room left
    records = _fed(world)
    world.rates.deny(limit_reached=True)
    # WHEN a sender gets them
    result = world.sender().send_batch(world.account.id, records)
    # THEN they are handed back to the planner (which feeds them when room returns), not retried
    assert {(job.status, job.refeed) for job in world.jobs.jobs_of("q_main")} == {(JobStatus.PENDING, True)}
    assert result.retry == set()
    assert world.providers.sent == []


def test_jobs_beyond_the_room_left_in_the_messaging_limit_are_handed_back_and_the_rest_sent(
    world: DeliveryWorld,
) -> None:
    # GIVEN three fed jobs to three new recipients, and an account whose own cap dropped to 2 since they were fed
    records = _fed(world)
    world.set_account(world.account, limits=AccountLimits(messages_per_second=10, daily_recipient_limit=2))
    # WHEN a sender gets them
    result = world.sender().send_batch(world.account.id, records)
    # THEN two are sent and the third is handed back
    assert result.sent == 2
    assert world.statuses() == {JobStatus.SENT: 2, JobStatus.PENDING: 1}
    assert [job.refeed for job in world.jobs.jobs_of("q_main") if job.status == JobStatus.PENDING] == [True]


def test_each_job_is_claimed_only_after_waiting_for_its_slot(world: DeliveryWorld) -> None:
    # GIVEN a fed job whose rate slot is 5 s away, and a sleep that lets the clocks run
    (record,) = _fed(world, 1)
    world.rates.tat[world.account.id] = world.wall() + 5
    events: list[str] = []
    world.jobs.journal = events

    def sleep(seconds: float) -> None:
        events.append("sleep")
        world.clock.advance(seconds=seconds)
        world.wall.advance(seconds)

    # WHEN a sender gets it
    result = world.sender(sleep=sleep).send_batch(world.account.id, [record])
    # THEN it sleeps until the slot, then claims the job, then settles it
    assert result.sent == 1
    assert [event for event in events if event in ("sleep", "jobs.claim", "jobs.settle")] == [
        "sleep",
        "jobs.claim",
        "jobs.settle",
    ]
    assert world.jobs.job_of_phone("q_main", phone(1)).updated_at == NOW + timedelta(seconds=5)


def test_slots_spread_a_batch_over_the_account_rate(world: DeliveryWorld) -> None:
    # GIVEN five fed jobs on an account at 10 msg/s
    records = _fed(world, 5)
    # WHEN a sender gets them
    world.sender().send_batch(world.account.id, records)
    # THEN each waits its slot, 0.1 s apart (the first goes at once)
    assert sorted(world.sleeps) == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert len(world.rates.calls_made[0].recipients) == 5


# Failures of our own -----------------------------------------------------------------------------------------------
def _provider_code_fails(world: DeliveryWorld) -> None:
    world.providers.provider(world.account.id).fail_next(RuntimeError("provider adapter bug"))


def _provider_lookup_fails(world: DeliveryWorld) -> None:
    world.providers.fail_next("for_account", RuntimeError("provider adapter bug"))


@pytest.mark.parametrize("failure", [_provider_code_fails, _provider_lookup_fails], ids=["send", "lookup"])
def test_a_failure_in_our_provider_code_hands_the_claimed_job_back_and_raises(
    world: DeliveryWorld, failure: Callable[[DeliveryWorld], None]
) -> None:
    # GIVEN a fed job, and provider code that raises something other than a ProviderError
    (record,) = _fed(world, 1)
    failure(world)
    sender = world.sender()
    # WHEN a sender gets it
    with pytest.raises(RuntimeError, match="provider adapter bug"):
        sender.send_batch(world.account.id, [record])
    # THEN the claimed job is back in RETRY (its attempt counted), and the next delivery sends it
    job = world.jobs.job_of_phone("q_main", phone(1))
    assert (job.status, job.attempts, job.last_error) == (JobStatus.RETRY, 1, None)
    assert world.jobs.tally("q_main").counters.pending == 1
    retried = sender.send_batch(world.account.id, [record])
    assert retried.sent == 1
    assert world.jobs.job_of_phone("q_main", phone(1)).attempts == 2


def test_a_settle_that_fails_after_the_provider_accepted_never_leads_to_a_second_send(world: DeliveryWorld) -> None:
    # GIVEN two fed jobs, and a store that fails the batch's settle
    records = _fed(world, 2)
    world.jobs.fail_next("settle", RuntimeError("DynamoDB unavailable"))
    sender = world.sender()
    # WHEN a sender sends them and cannot record it, and SQS delivers them again
    with pytest.raises(RuntimeError, match="DynamoDB unavailable"):
        sender.send_batch(world.account.id, records)
    claimed = world.statuses()
    again = sender.send_batch(world.account.id, records)
    # THEN they stayed claimed, and the next delivery fails them as UNKNOWN_OUTCOME instead of sending again
    assert claimed == {JobStatus.SENDING: 2}
    assert len(world.providers.sent) == 2
    assert again.failed == 2
    assert {job.last_error.code for job in world.jobs.jobs_of("q_main") if job.last_error} == {"UNKNOWN_OUTCOME"}
    assert world.statuses() == {JobStatus.FAILED: 2}
    assert counters_add_up(world)


# Dead letters ------------------------------------------------------------------------------------------------------
def test_dead_lettered_jobs_that_had_their_attempts_fail_with_their_last_error(world: DeliveryWorld) -> None:
    # GIVEN three fed jobs of a queue allowing 2 attempts: one that used them (a retryable error, then a sender
    # that crashed around its second call), one a dead sender left SENDING, one sent
    records = _fed(world, max_attempts=2)
    world.providers.provider(world.account.id).fail_for(phone(1), RETRYABLE)
    world.sender().send_batch(world.account.id, [records[0], records[2]])
    world.clock.advance(seconds=1)
    second_try = world.jobs.job_of_phone("q_main", phone(1)).claim(account_id=world.account.id, now=world.clock.now)
    assert world.jobs.claim(second_try)
    world.jobs.settle([second_try.job.move(JobStatus.RETRY, now=world.clock.now)])
    claim = world.jobs.job_of_phone("q_main", phone(2)).claim(account_id=world.account.id, now=world.clock.now)
    assert world.jobs.claim(claim)
    # WHEN their messages reach the dead-letter queue
    result = dead_letter(world.jobs, world.lifecycle, [record.message for record in records], clock=world.clock)
    # THEN the unsettled ones fail (with their last error, or DEAD_LETTERED) and the sent one stays sent
    assert result == DeadLetterResult(failed=2, handed_back=0)
    first, second, third = world.jobs.jobs_of("q_main")
    assert (first.status, first.attempts) == (JobStatus.FAILED, 2)
    assert first.last_error is not None
    assert (first.last_error.code, first.last_error.error_class) == ("131000", ErrorClass.RETRYABLE)
    assert second.status == JobStatus.FAILED
    assert second.last_error is not None
    assert (second.last_error.code, second.last_error.error_class) == ("DEAD_LETTERED", ErrorClass.PERMANENT)
    assert third.status == JobStatus.SENT
    counters = world.jobs.tally("q_main").counters
    assert (counters.pending, counters.failed, counters.sent) == (0, 2, 1)
    assert counters_add_up(world)


def test_dead_lettered_jobs_short_of_their_attempts_go_back_to_the_planner_once(world: DeliveryWorld) -> None:
    # GIVEN two fed jobs of a queue allowing 3 attempts: one never claimed, one with one retryable failure
    records = _fed(world, 2, max_attempts=3)
    world.providers.provider(world.account.id).fail_for(phone(2), RETRYABLE)
    world.sender().send_batch(world.account.id, [records[1]])
    messages = [record.message for record in records]
    # WHEN their messages reach the dead-letter queue (receives used up by throttles or crashes, not attempts)
    first = dead_letter(world.jobs, world.lifecycle, messages, clock=world.clock)
    # THEN both go back to the planner with their attempts as they were, nothing failed
    assert first == DeadLetterResult(failed=0, handed_back=2)
    jobs = world.jobs.jobs_of("q_main")
    assert [(job.status, job.attempts, job.refeed, job.dead_letters) for job in jobs] == [
        (JobStatus.PENDING, 0, True, 1),
        (JobStatus.PENDING, 1, True, 1),
    ]
    # AND when their new messages are dead-lettered too, they fail: a record that can never be sent ends
    world.clock.advance(seconds=1)
    second = dead_letter(world.jobs, world.lifecycle, messages, clock=world.clock)
    assert second == DeadLetterResult(failed=2, handed_back=0)
    assert world.statuses() == {JobStatus.FAILED: 2}
    assert counters_add_up(world)
