"""Delivery jobs: one per recipient of a queue, the moves a job may make, and what each move does to the queue's
counters. The one table below is the state machine; nothing else writes counter deltas."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobStatus(StrEnum):
    PENDING = "PENDING"  # planned; fed to the account's SQS queue once the planner's feed cursor passes it
    SENDING = "SENDING"  # claimed by a sender; the provider call may be under way
    RETRY = "RETRY"  # a retryable failure; SQS redelivers it after a backoff
    SENT = "SENT"
    FAILED = "FAILED"
    OPTED_OUT = "OPTED_OUT"
    SKIPPED = "SKIPPED"


class DeliveryState(StrEnum):
    """How far the provider says a SENT job got, in order; it only moves forward (wabacast.domain.receipts)."""

    DELIVERED = "DELIVERED"
    READ = "READ"


class Counter(StrEnum):
    """The queue counters: total = pending + sent + failed + opted_out + skipped at every moment. COST is money, not
    jobs: the micro-units of the price table's currency its jobs cost (wabacast.pricing), added once per job."""

    TOTAL = "total"
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    OPTED_OUT = "opted_out"
    SKIPPED = "skipped"
    COST = "cost_micros"


# Which counter a job in each status counts towards.
COUNTER_OF_STATUS: dict[JobStatus, Counter] = {
    JobStatus.PENDING: Counter.PENDING,
    JobStatus.SENDING: Counter.PENDING,
    JobStatus.RETRY: Counter.PENDING,
    JobStatus.SENT: Counter.SENT,
    JobStatus.FAILED: Counter.FAILED,
    JobStatus.OPTED_OUT: Counter.OPTED_OUT,
    JobStatus.SKIPPED: Counter.SKIPPED,
}
TERMINAL_JOB_STATUSES = frozenset({JobStatus.SENT, JobStatus.FAILED, JobStatus.OPTED_OUT, JobStatus.SKIPPED})

# The allowed moves. PENDING -> PENDING is a hand-back (a sender found the queue paused or the account unable to
# send): the job waits for the planner to feed it again. SENDING -> PENDING is a delayed re-feed (the provider
# said "not now, try again in hours": RETRY_LATER): the planner feeds it again once its `not_before` has passed.
# SENT -> PENDING is the same delayed re-feed when the provider says so later, in a status webhook.
ALLOWED_MOVES: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset(
        {JobStatus.PENDING, JobStatus.SENDING, JobStatus.FAILED, JobStatus.OPTED_OUT, JobStatus.SKIPPED}
    ),
    JobStatus.SENDING: frozenset({JobStatus.SENT, JobStatus.RETRY, JobStatus.FAILED, JobStatus.PENDING}),
    JobStatus.RETRY: frozenset(
        {JobStatus.PENDING, JobStatus.SENDING, JobStatus.FAILED, JobStatus.OPTED_OUT, JobStatus.SKIPPED}
    ),
    # retry-failed; FAILED -> SENT: the provider reports a job failed as UNKNOWN_OUTCOME as sent after all;
    # FAILED -> FAILED: a delivery receipt after a late failure (wabacast.domain.receipts).
    JobStatus.FAILED: frozenset({JobStatus.PENDING, JobStatus.SENT, JobStatus.FAILED}),
    # Status receipts: SENT -> SENT records delivery progress, SENT -> FAILED a failure the provider reported late,
    # SENT -> PENDING a late "not now" (RETRY_LATER: a delayed re-feed).
    JobStatus.SENT: frozenset({JobStatus.SENT, JobStatus.FAILED, JobStatus.PENDING}),
    JobStatus.OPTED_OUT: frozenset(),
    JobStatus.SKIPPED: frozenset(),
}
# Statuses a sender may claim a job from.
CLAIMABLE = frozenset({JobStatus.PENDING, JobStatus.RETRY})


class IllegalJobMoveError(Exception):
    """A move the state machine does not allow: a bug in the caller, never a user error."""


class ErrorClass(StrEnum):
    RETRYABLE = "retryable"  # back to SQS with backoff until maxAttempts
    PERMANENT = "permanent"  # FAILED at once
    OPTED_OUT = "opted_out"  # FAILED, and the number joins the business's opt-outs (every template)
    # FAILED, and the number joins the business's opt-outs for marketing templates only (Meta 131050)
    OPTED_OUT_MARKETING = "opted_out_marketing"
    PAUSE_QUEUE = "pause_queue"  # FAILED, and the queue is paused with the reason (account/template trouble)
    UNKNOWN_OUTCOME = "unknown_outcome"  # the provider may have accepted it; never resent
    # Back to the planner, fed again hours later with growing delays (a delayed re-feed, decision 27)
    RETRY_LATER = "retry_later"


class JobError(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    message: str = Field(max_length=500)
    error_class: ErrorClass


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    queue_id: str
    business_id: str
    phone_number: str
    variables: dict[str, str]
    seq: int = Field(description="Materialization order within the queue")
    status: JobStatus
    attempts: int = 0
    account_id: str | None = None
    provider_message_id: str | None = None
    last_error: JobError | None = None
    skip_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    # When the planner put it on the account's SQS queue, and when the provider accepted it.
    queued_at: datetime | None = None
    sent_at: datetime | None = None
    # A job handed back to the planner (paused queue, account unable to send, day's volume used, sending window
    # closed): fed again.
    refeed: bool = False
    # The run of the queue it belongs to (a recurring queue plans its audience again for every run).
    run: int = 1
    # The recipient's own time zone, set only for queues that send in each recipient's local time.
    recipient_zone: str | None = None
    # Times the dead-letter consumer handed it back to the planner before it had its attempts (DEAD_LETTER_REFEEDS).
    dead_letters: int = 0
    # A delayed re-feed (RETRY_LATER): the planner feeds the job again no sooner than this, and a sender drops any
    # copy that reaches it earlier. Cleared when the planner feeds it.
    not_before: datetime | None = None
    # Delayed re-feeds so far: each waits longer (wabacast.logic.fates.MARKETING_LIMIT_DELAYS), then the job fails.
    deferrals: int = 0
    # What the provider's status receipts said after the send (None: nothing beyond "sent").
    delivery: DeliveryState | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    # What the message cost, in micro-units of the price table's currency, recorded once (wabacast.domain.receipts).
    cost_micros: int | None = None

    def move(self, to: JobStatus, *, now: datetime, **changes: Any) -> JobMove:
        """This job moved to `to` (with `changes`), checked against ALLOWED_MOVES, with its counter deltas."""
        if to not in ALLOWED_MOVES[self.status]:
            raise IllegalJobMoveError(f"job {self.id}: {self.status.value} -> {to.value} is not allowed")
        moved = self.model_copy(update={**changes, "status": to, "updated_at": now})
        return JobMove(
            job=moved, before=self, counter_deltas=counter_deltas(self.status, to), error=changes.get("last_error")
        )

    def claim(self, *, account_id: str, now: datetime, queued_at: datetime | None = None) -> JobMove:
        """A sender takes the job for one provider call (attempt + 1); `queued_at`: when SQS got its message."""
        if self.status not in CLAIMABLE:
            raise IllegalJobMoveError(f"job {self.id}: {self.status.value} cannot be claimed")
        return self.move(
            JobStatus.SENDING,
            now=now,
            attempts=self.attempts + 1,
            account_id=account_id,
            refeed=False,
            not_before=None,
            queued_at=queued_at or self.queued_at,
        )


def counter_deltas(before: JobStatus, after: JobStatus) -> dict[Counter, int]:
    old, new = COUNTER_OF_STATUS[before], COUNTER_OF_STATUS[after]
    return {} if old == new else {old: -1, new: 1}


def planned_deltas(status: JobStatus) -> dict[Counter, int]:
    """A job that appears (is planned) in `status`."""
    return {Counter.TOTAL: 1, COUNTER_OF_STATUS[status]: 1}


@dataclass(frozen=True)
class JobMove:
    """A job's move, as the stores write it: `before` is what was read (the write is conditioned on it), `job` is
    what is written, `counter_deltas` what the queue's counters change by (derived, never written by hand)."""

    job: Job
    before: Job
    counter_deltas: dict[Counter, int]
    # The error this move records, counted in the queue's error statistics.
    error: JobError | None = None


def job_id_for(queue_id: str, phone_number: str, run: int = 1) -> str:
    """Deterministic: a re-run of the planner over the same recipient lands on the same job; each run of a recurring
    queue has its own jobs (recipients are deduplicated per run)."""
    scope = queue_id if run <= 1 else f"{queue_id}|run{run}"
    digest = hashlib.sha256(f"{scope}|{phone_number}".encode()).hexdigest()[:32]
    return f"job_{digest}"
