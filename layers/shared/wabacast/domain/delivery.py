"""Values the delivery pipeline passes between logic and adapters: planning state, job moves, rate-limit
reservations, messages for the account queues. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wabacast.domain.jobs import Job, JobError, JobStatus


@dataclass(frozen=True)
class PlanState:
    """The planner's progress through a queue's audience, stored on the queue item."""

    cursor: dict[str, Any] | None
    version: int
    done: bool
    next_seq: int


@dataclass(frozen=True)
class QueueProgress:
    """Lifecycle extras read beside the queue: planning state, error statistics, measured send rate."""

    plan: PlanState
    error_counts: dict[str, int]
    error_messages: dict[str, str]
    rate_per_second: float
    rate_sample_at: float | None
    rate_sample_done: int


@dataclass(frozen=True)
class ActiveAccount:
    business_id: str
    account_id: str
    queue_ids: frozenset[str]


@dataclass(frozen=True)
class JobOutcome:
    """A job's move from one status to another, with what it changes on the queue's counters."""

    job: Job
    from_statuses: tuple[JobStatus, ...]
    counter_changes: dict[str, int]
    error: JobError | None = None


@dataclass(frozen=True)
class Reservation:
    """`slots`: epoch seconds at which each granted message may go. Empty when nothing was granted, with
    `retry_after_s` (rate) or `daily_exhausted` saying why."""

    slots: list[float] = field(default_factory=list)
    retry_after_s: float = 0.0
    daily_exhausted: bool = False


@dataclass(frozen=True)
class OutgoingMessage:
    job_id: str
    group_id: str
    body: dict[str, Any]
    # SQS drops a message whose deduplication id it saw in the last 5 minutes; None: the job id.
    deduplication_id: str | None = None
