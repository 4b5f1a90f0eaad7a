"""Status receipts: delivery only moves forward, and each counter moves once per job and state."""

from __future__ import annotations

import itertools
from collections import Counter as Tally
from datetime import UTC, datetime, timedelta

import pytest

from wabacast.domain.jobs import Counter, DeliveryState, ErrorClass, Job, JobError, JobStatus
from wabacast.domain.receipts import Receipt, ReceiptStatus, apply_receipt

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
PERMANENT = JobError(code="131026", message="Message undeliverable", error_class=ErrorClass.PERMANENT)


def job(status: JobStatus = JobStatus.SENT, **changes: object) -> Job:
    base = Job(
        id="job_1",
        queue_id="q_1",
        business_id="biz_1",
        phone_number="+34600000001",
        variables={},
        seq=1,
        status=status,
        attempts=1,
        account_id="acc_1",
        provider_message_id="wamid.1" if status == JobStatus.SENT else None,
        created_at=T0,
        updated_at=T0,
    )
    return base.model_copy(update=changes)


def receipt(status: ReceiptStatus, minutes: int = 1) -> Receipt:
    error = PERMANENT if status == ReceiptStatus.FAILED else None
    return Receipt(status=status, provider_message_id="wamid.1", at=T0 + timedelta(minutes=minutes), error=error)


def play(start: Job, statuses: list[ReceiptStatus]) -> tuple[Job, Tally[Counter]]:
    """Apply receipts in order as the webhook would: each to the job as it stands, summing counter deltas."""
    current, totals = start, Tally[Counter]()
    for index, status in enumerate(statuses):
        move = apply_receipt(current, receipt(status, index + 1), now=T0 + timedelta(seconds=index + 1))
        if move is not None:
            current = move.job
            totals.update(move.counter_deltas)
    return current, totals


def test_delivered_then_read_counts_each_once() -> None:
    # GIVEN a sent job
    # WHEN it is delivered, then read
    final, totals = play(job(), [ReceiptStatus.DELIVERED, ReceiptStatus.READ])
    # THEN delivered and read each count once and the job stays SENT
    assert final.status == JobStatus.SENT
    assert final.delivery == DeliveryState.READ
    assert totals == Tally({Counter.DELIVERED: 1, Counter.READ: 1})


def test_read_before_delivered_counts_delivered_too_and_the_late_delivered_changes_nothing() -> None:
    # GIVEN a sent job
    # WHEN read arrives before delivered
    final, totals = play(job(), [ReceiptStatus.READ, ReceiptStatus.DELIVERED])
    # THEN delivered counts once (implied by read) and the late delivered is no move
    assert final.delivery == DeliveryState.READ
    assert final.delivered_at == final.read_at
    assert totals == Tally({Counter.DELIVERED: 1, Counter.READ: 1})


def test_a_sent_receipt_for_a_sent_job_is_no_write() -> None:
    # GIVEN a job the sender recorded as SENT
    # WHEN the provider confirms "sent"
    move = apply_receipt(job(), receipt(ReceiptStatus.SENT), now=T0)
    # THEN nothing is written
    assert move is None


def test_a_late_failure_moves_sent_to_failed_with_its_error() -> None:
    # GIVEN a sent job
    # WHEN the provider reports a failure
    move = apply_receipt(job(), receipt(ReceiptStatus.FAILED), now=T0 + timedelta(minutes=2))
    # THEN it is FAILED with the error, and the counters move sent -> failed
    assert move is not None
    assert move.job.status == JobStatus.FAILED
    assert move.job.last_error == PERMANENT
    assert move.error == PERMANENT
    assert move.counter_deltas == {Counter.SENT: -1, Counter.FAILED: 1}


def test_a_failure_after_a_delivery_is_ignored() -> None:
    # GIVEN a delivered job
    delivered, _ = play(job(), [ReceiptStatus.DELIVERED])
    # WHEN a failure arrives afterwards
    move = apply_receipt(delivered, receipt(ReceiptStatus.FAILED), now=T0 + timedelta(minutes=5))
    # THEN nothing changes
    assert move is None


def test_a_delivery_after_a_late_failure_counts_delivered_and_keeps_the_failure() -> None:
    # GIVEN a job that failed late
    # WHEN a delivered receipt follows, twice
    final, totals = play(job(), [ReceiptStatus.FAILED, ReceiptStatus.DELIVERED, ReceiptStatus.DELIVERED])
    # THEN it stays FAILED, counted once as failed and once as delivered
    assert final.status == JobStatus.FAILED
    assert totals == Tally({Counter.SENT: -1, Counter.FAILED: 1, Counter.DELIVERED: 1})


def test_a_receipt_for_an_unknown_outcome_makes_the_job_sent() -> None:
    # GIVEN a job failed as UNKNOWN_OUTCOME (a sender died after the provider call)
    unknown = JobError(code="UNKNOWN_OUTCOME", message="not resent", error_class=ErrorClass.UNKNOWN_OUTCOME)
    failed = job(JobStatus.FAILED, last_error=unknown)
    # WHEN the provider reports it delivered
    move = apply_receipt(failed, receipt(ReceiptStatus.DELIVERED), now=T0 + timedelta(minutes=1))
    # THEN it is SENT and delivered, with the provider's message id, and counted so
    assert move is not None
    assert move.job.status == JobStatus.SENT
    assert move.job.last_error is None
    assert move.job.provider_message_id == "wamid.1"
    assert move.counter_deltas == {Counter.FAILED: -1, Counter.SENT: 1, Counter.DELIVERED: 1}


def test_a_receipt_for_a_job_still_being_sent_settles_it_as_sent() -> None:
    # GIVEN a claimed job whose sender has not recorded the answer yet
    # WHEN the provider's "sent" arrives first
    move = apply_receipt(job(JobStatus.SENDING), receipt(ReceiptStatus.SENT), now=T0)
    # THEN the job is SENT (the sender's own settle then finds it changed and writes nothing)
    assert move is not None
    assert move.job.status == JobStatus.SENT
    assert move.counter_deltas == {Counter.PENDING: -1, Counter.SENT: 1}


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.RETRY, JobStatus.SKIPPED, JobStatus.OPTED_OUT])
def test_receipts_for_jobs_not_at_the_provider_are_ignored(status: JobStatus) -> None:
    for kind in ReceiptStatus:
        assert apply_receipt(job(status), receipt(kind), now=T0) is None


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations([ReceiptStatus.SENT, ReceiptStatus.DELIVERED, ReceiptStatus.READ])),
)
def test_any_order_and_duplicates_of_sent_delivered_read_leave_the_same_counts(order: tuple[ReceiptStatus]) -> None:
    # GIVEN a sent job
    # WHEN sent, delivered and read arrive in any order, each twice
    final, totals = play(job(), [*order, *order])
    # THEN delivered and read count once each, whatever the order
    assert final.delivery == DeliveryState.READ
    assert +totals == Tally({Counter.DELIVERED: 1, Counter.READ: 1})
