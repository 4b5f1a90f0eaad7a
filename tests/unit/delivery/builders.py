"""Queues and jobs for the delivery tests, built as the API and the planner would have stored them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tests.unit.fakes import phone
from wabacast.domain.jobs import Job, JobStatus, job_id_for
from wabacast.domain.models import ActiveHours, Queue, QueueStatus
from wabacast.phone import FROM_STORAGE

# FixedClock's default moment.
NOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)

Recipients = Sequence[str | tuple[str, dict[str, str]]]


def numbers(count: int, start: int = 1) -> list[str]:
    """`count` distinct valid numbers: phone(start), phone(start + 1), ..."""
    return [phone(n) for n in range(start, start + count)]


def make_queue(
    business_id: str,
    account_id: str,
    *,
    queue_id: str = "q_main",
    recipients: Recipients = (),
    tags: Sequence[str] = (),
    variables: dict[str, str] | None = None,
    priority: int = 5,
    status: QueueStatus = QueueStatus.PROCESSING,
    max_attempts: int = 3,
    created_at: datetime = NOW,
    started_at: datetime | None = NOW,
    active_hours: ActiveHours | None = None,
    schedule: dict[str, Any] | None = None,
    template: dict[str, Any] | None = None,
) -> Queue:
    """A stored queue; `recipients` are numbers, or (number, variables) pairs."""
    rows: list[dict[str, Any]] = [
        {"phone_number": entry, "variables": {}}
        if isinstance(entry, str)
        else {"phone_number": entry[0], "variables": entry[1]}
        for entry in recipients
    ]
    return Queue.model_validate(
        {
            "id": queue_id,
            "business_id": business_id,
            "name": f"Campaign {queue_id}",
            "account_id": account_id,
            "template": template or {"name": "welcome", "language": "en"},
            "variables": variables or {},
            "audience": {"recipients": rows, "contact_tags": list(tags)},
            "priority": priority,
            "schedule": {"timezone": "UTC", "active_hours": active_hours, **(schedule or {})},
            "max_attempts": max_attempts,
            "status": status,
            "counters": {},
            "created_at": created_at,
            "updated_at": created_at,
            "started_at": started_at if status != QueueStatus.DRAFT else None,
        },
        context={FROM_STORAGE: True},
    )


def make_job(
    queue: Queue,
    seq: int,
    *,
    phone_number: str | None = None,
    status: JobStatus = JobStatus.PENDING,
    at: datetime = NOW,
    **fields: Any,
) -> Job:
    """A planned job of `queue` (the planner's deterministic id), number phone(seq + 1) unless told."""
    number = phone_number or phone(seq + 1)
    return Job(
        id=job_id_for(queue.id, number),
        queue_id=queue.id,
        business_id=queue.business_id,
        phone_number=number,
        variables={},
        seq=seq,
        status=status,
        created_at=at,
        updated_at=at,
        **fields,
    )
