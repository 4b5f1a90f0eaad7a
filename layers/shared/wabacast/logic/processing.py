"""Starting, pausing, resuming, cancelling a queue, re-queueing its retryable failures, and its live progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from wabacast.clock import Clock, utc_now
from wabacast.domain.delivery import PlanState, QueueTally
from wabacast.domain.jobs import JobStatus
from wabacast.domain.models import Queue, QueueCounters, QueueStatus
from wabacast.errors import ConflictError, NotFoundError
from wabacast.logic.delivery_ports import CounterStore, JobStore, QueueLifecycle
from wabacast.logic.ports import QueueStore

RETRY_FAILED_LIMIT = 1000


class PlannerTrigger(Protocol):
    def start(self, business_id: str, queue_id: str) -> None: ...


@dataclass(frozen=True)
class ErrorSummary:
    code: str
    message: str
    count: int


@dataclass(frozen=True)
class Progress:
    queue_id: str
    status: QueueStatus
    status_reason: str | None
    counters: QueueCounters
    percent_done: float
    rate_per_second: float
    eta_seconds: float | None
    last_errors: list[ErrorSummary]
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class RetryReport:
    requeued: int
    more: bool


class ProcessingService:
    def __init__(
        self,
        queues: QueueStore,
        lifecycle: QueueLifecycle,
        jobs: JobStore,
        counters: CounterStore,
        trigger: PlannerTrigger | None,
        clock: Clock = utc_now,
    ) -> None:
        self._queues = queues
        self._lifecycle = lifecycle
        self._jobs = jobs
        self._counters = counters
        self._trigger = trigger
        self._clock = clock

    def process(self, business_id: str, queue_id: str) -> Progress:
        queue = self._queue(business_id, queue_id)
        now = self._clock()
        start_at = queue.schedule.start_at
        if start_at is not None and start_at > now:
            self._move(queue, (QueueStatus.DRAFT, QueueStatus.SCHEDULED), QueueStatus.SCHEDULED, register=None)
        else:
            self._move(queue, (QueueStatus.DRAFT, QueueStatus.SCHEDULED), QueueStatus.PROCESSING, register=True)
            if self._trigger is not None:
                self._trigger.start(business_id, queue_id)
        return self.progress(business_id, queue_id)

    def pause(self, business_id: str, queue_id: str) -> Progress:
        queue = self._queue(business_id, queue_id)
        self._move(
            queue,
            (QueueStatus.PROCESSING, QueueStatus.SCHEDULED),
            QueueStatus.PAUSED,
            register=False,
            reason="paused by request",
        )
        return self.progress(business_id, queue_id)

    def resume(self, business_id: str, queue_id: str) -> Progress:
        queue = self._queue(business_id, queue_id)
        self._move(queue, (QueueStatus.PAUSED,), QueueStatus.PROCESSING, register=True)
        if self._trigger is not None:
            self._trigger.start(business_id, queue_id)
        return self.progress(business_id, queue_id)

    def cancel(self, business_id: str, queue_id: str) -> Progress:
        queue = self._queue(business_id, queue_id)
        # Registered so the planner turns the jobs still waiting in the table into SKIPPED ones.
        self._move(
            queue,
            (QueueStatus.DRAFT, QueueStatus.SCHEDULED, QueueStatus.PROCESSING, QueueStatus.PAUSED),
            QueueStatus.CANCELLED,
            register=True,
            reason="cancelled by request",
        )
        return self.progress(business_id, queue_id)

    def retry_failed(self, business_id: str, queue_id: str) -> RetryReport:
        """Re-queue jobs that failed with a retryable cause (they ran out of attempts), up to 1,000 a call."""
        queue = self._queue(business_id, queue_id)
        if queue.status not in (QueueStatus.PROCESSING, QueueStatus.PAUSED, QueueStatus.COMPLETED):
            raise ConflictError(f"a queue that is {queue.status.value} has no failures to retry", field="status")
        jobs = self._jobs.retryable_failed(queue.id, RETRY_FAILED_LIMIT + 1)
        now = self._clock()
        # Handed back to the planner, which feeds them again before anything new.
        moves = [job.move(JobStatus.PENDING, now=now, attempts=0, refeed=True) for job in jobs[:RETRY_FAILED_LIMIT]]
        requeued = len(self._jobs.settle(moves)) if moves else 0
        if requeued and queue.status != QueueStatus.PAUSED:
            # PROCESSING or COMPLETED, whatever it is now: the planner may have completed it since it was read here,
            # and a write to it also stops a completion the planner decided on before these jobs were pending.
            self._lifecycle.transition(
                queue,
                allowed_from=(QueueStatus.PROCESSING, QueueStatus.COMPLETED),
                to=QueueStatus.PROCESSING,
                now=self._clock(),
                register=True,
            )
        return RetryReport(requeued=requeued, more=len(jobs) > RETRY_FAILED_LIMIT)

    def progress(self, business_id: str, queue_id: str) -> Progress:
        queue = self._lifecycle.read_queue(business_id, queue_id)
        if queue is None:
            raise NotFoundError("queue not found")
        return _progress(queue, self._counters.tally(queue_id), self._jobs.read_plan(queue_id), self._clock())

    def _queue(self, business_id: str, queue_id: str) -> Queue:
        queue = self._queues.get(business_id, queue_id)
        if queue is None:
            raise NotFoundError("queue not found")
        return queue

    def _move(
        self,
        queue: Queue,
        allowed: tuple[QueueStatus, ...],
        to: QueueStatus,
        *,
        register: bool | None,
        reason: str | None = None,
    ) -> None:
        if queue.status not in allowed or not self._lifecycle.transition(
            queue, allowed_from=allowed, to=to, now=self._clock(), reason=reason, register=register
        ):
            current = self._queues.get(queue.business_id, queue.id)
            status = current.status.value if current else queue.status.value
            expected = " or ".join(status.value for status in allowed)
            raise ConflictError(f"the queue is {status}; this needs it to be {expected}", field="status")


def _progress(queue: Queue, tally: QueueTally, plan: PlanState, now: datetime) -> Progress:
    counters = tally.counters
    if counters.total:
        percent = round(100.0 * (counters.total - counters.pending) / counters.total, 2)
    else:
        percent = 100.0 if queue.status == QueueStatus.COMPLETED else 0.0
    rate = plan.rate_per_second
    settled = tally.settled
    if not rate and queue.status == QueueStatus.PROCESSING and queue.started_at and settled:
        # Before the planner has two samples a few seconds apart, the average since the start is the best guess.
        elapsed = (now - queue.started_at).total_seconds()
        rate = settled / elapsed if elapsed > 0 else 0.0
    eta = round(counters.pending / rate, 1) if rate > 0 and counters.pending else None
    errors = sorted(
        (
            ErrorSummary(code=code, message=tally.error_messages.get(code, ""), count=count)
            for code, count in tally.error_counts.items()
            if count
        ),
        key=lambda summary: -summary.count,
    )[:10]
    return Progress(
        queue_id=queue.id,
        status=queue.status,
        status_reason=queue.status_reason,
        counters=counters,
        percent_done=percent,
        rate_per_second=round(rate, 2),
        eta_seconds=eta,
        last_errors=errors,
        started_at=queue.started_at,
        completed_at=queue.completed_at,
    )
