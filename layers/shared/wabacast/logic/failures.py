"""What a failed message does beyond its job, whether the provider refused it at once (the sender) or reported it
later (a status webhook): the error's class, from wabacast.providers.errors, decides."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from wabacast.domain.jobs import ErrorClass, Job, JobError
from wabacast.domain.models import OptOut, OptOutSource, Queue, QueueStatus


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


def apply_failure_fate(
    job: Job,
    error: JobError,
    queue: Queue | None,
    *,
    contacts: OptOutWriter,
    lifecycle: QueuePauser,
    now: datetime,
) -> None:
    """OPTED_OUT: the number joins the business's opt-outs; PAUSE_QUEUE: a PROCESSING queue is paused with the
    reason. Every other class ends with the job itself."""
    if error.error_class == ErrorClass.OPTED_OUT:
        contacts.add_opt_out(
            job.business_id,
            OptOut(
                phone_number=job.phone_number,
                reason=f"provider {error.code}: {error.message}"[:500],
                source=OptOutSource.PROVIDER,
                created_at=now,
            ),
        )
    elif error.error_class == ErrorClass.PAUSE_QUEUE and queue is not None:
        lifecycle.transition(
            queue,
            allowed_from=(QueueStatus.PROCESSING,),
            to=QueueStatus.PAUSED,
            now=now,
            reason=f"provider error {error.code}: {error.message}"[:500],
            register=False,
        )
