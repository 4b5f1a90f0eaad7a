"""What becomes of a job whose send failed, and what else the failure changes: one place for the sender (errors
at send time) and the status webhooks (errors the provider reports later), so both give a failure the same fate.

`failure_move(job, queue, error, now=...)` is the job's move (pure): retry through SQS, a delayed re-feed by the
planner (RETRY_LATER), or FAILED. A status webhook's failure takes `deferral(job, error, now=...)` the same way
(wabacast.logic.webhooks), so a late "not now" is a delayed re-feed too, not a failure.
`FailureFates.apply(job, queue, error, provider=...)` does the rest, once the move is written: an opt-out (scope
`all` or `marketing`), or the queue paused with the reason (and, for a limit that lifts by itself, when it does,
with a one-time schedule that resumes the queue then: ScheduleAction.RESUME).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from wabacast.clock import Clock, utc_now
from wabacast.domain.jobs import ErrorClass, Job, JobError, JobMove, JobStatus
from wabacast.domain.models import OptOut, OptOutScope, OptOutSource, Queue, QueueStatus
from wabacast.logic.scheduling import ScheduleKeeper
from wabacast.providers.errors import resets_after

# Meta's per-user marketing limit lifts after some hours (Meta does not say when): each delayed re-feed waits
# longer; after the last one the job fails with the error.
MARKETING_LIMIT_DELAYS: tuple[timedelta, ...] = (timedelta(hours=4), timedelta(hours=12), timedelta(hours=24))

OPT_OUT_SCOPE_OF_CLASS: dict[ErrorClass, OptOutScope] = {
    ErrorClass.OPTED_OUT: OptOutScope.ALL,
    ErrorClass.OPTED_OUT_MARKETING: OptOutScope.MARKETING,
}


class OptOutWriter(Protocol):
    def add_opt_out(self, business_id: str, opt_out: OptOut) -> tuple[OptOut, bool]: ...


class QueuePauser(Protocol):
    def transition(
        self,
        queue: Queue,
        *,
        allowed_from: tuple[QueueStatus, ...],
        to: QueueStatus,
        now: datetime,
        reason: str | None = None,
        register: bool | None = None,
    ) -> bool: ...


@dataclass(frozen=True)
class FailureMove:
    """A failed job's move; `redeliver_after_s` when SQS should hand its message out again after that long."""

    move: JobMove
    redeliver_after_s: int | None = None

    @property
    def deferred(self) -> bool:
        return self.move.job.status == JobStatus.PENDING


def deferral(job: Job, error: JobError, *, now: datetime) -> JobMove | None:
    """The delayed re-feed of a job the provider refused for now (RETRY_LATER: Meta's per-user marketing limit,
    never for +1 numbers, which the error table already classifies PERMANENT), while it has re-feeds left; None
    otherwise. From SENDING (the send's answer) or from SENT (a status webhook): the refused message is done with,
    so its provider message id goes, and the next send's receipts are the job's."""
    if error.error_class != ErrorClass.RETRY_LATER or job.deferrals >= len(MARKETING_LIMIT_DELAYS):
        return None
    return job.move(
        JobStatus.PENDING,
        now=now,
        last_error=error,
        not_before=now + MARKETING_LIMIT_DELAYS[job.deferrals],
        deferrals=job.deferrals + 1,
        refeed=False,
        provider_message_id=None,
    )


def failure_move(
    job: Job, queue: Queue, error: JobError, *, now: datetime, backoff: Callable[[int], int]
) -> FailureMove:
    """The move of a job (claimed: SENDING) whose send failed with `error`, already classified; `backoff(attempts)`:
    seconds before SQS hands a retryable one out again."""
    if error.error_class == ErrorClass.RETRYABLE and job.attempts < queue.max_attempts:
        return FailureMove(job.move(JobStatus.RETRY, now=now, last_error=error), backoff(job.attempts))
    deferred = deferral(job, error, now=now)
    if deferred is not None:
        return FailureMove(deferred)
    return FailureMove(job.move(JobStatus.FAILED, now=now, last_error=error))


class FailureFates:
    """The side effects of a failure, applied after the job's move was written."""

    def __init__(
        self,
        *,
        contacts: OptOutWriter,
        lifecycle: QueuePauser,
        clock: Clock = utc_now,
        schedules: ScheduleKeeper | None = None,
    ) -> None:
        self._contacts = contacts
        self._lifecycle = lifecycle
        self._clock = clock
        self._schedules = schedules or ScheduleKeeper(None)

    def apply(self, job: Job, queue: Queue | None, error: JobError, *, provider: str) -> None:
        """`provider`: the sending account's provider ("meta", "twilio", "sandbox"), for rows that say more than
        their class (a pause that lifts by itself). `queue`: None when it is gone (a late failure of a deleted
        queue's job), which only an opt-out outlives."""
        scope = OPT_OUT_SCOPE_OF_CLASS.get(error.error_class)
        if scope is not None:
            self._contacts.add_opt_out(
                job.business_id,
                OptOut(
                    phone_number=job.phone_number,
                    reason=f"provider {error.code}: {error.message}"[:500],
                    source=OptOutSource.PROVIDER,
                    created_at=self._clock(),
                    scope=scope,
                ),
            )
        elif error.error_class == ErrorClass.PAUSE_QUEUE and queue is not None:
            now = self._clock()
            reason = f"provider error {error.code}: {error.message}"
            lifts = resets_after(provider, error.code)
            if lifts is not None:
                # Said first, so the 500-character cut never drops it.
                reason = f"until {(now + lifts).isoformat(timespec='minutes')} (limit resets): {reason}"
            paused = self._lifecycle.transition(
                queue,
                allowed_from=(QueueStatus.PROCESSING,),
                to=QueueStatus.PAUSED,
                now=now,
                reason=reason[:500],
                register=False,
            )
            # Only the sender (or webhook) that paused it: the others found it paused already. The pause's own time
            # plus the limit's: the scheduler function checks a firing against it (ProcessingService.on_schedule).
            if paused and lifts is not None:
                self._schedules.resume_at(queue, now + lifts)
