"""Delivery jobs: one per recipient of a queue, and what a provider's answer means for them."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class JobStatus(StrEnum):
    PENDING = "PENDING"  # materialized, waiting to be fed to the account's SQS queue
    QUEUED = "QUEUED"  # in the account's SQS queue
    SENDING = "SENDING"  # claimed by a sender; the provider call may be under way
    RETRY = "RETRY"  # a retryable failure; SQS redelivers it after a backoff
    SENT = "SENT"
    FAILED = "FAILED"
    OPTED_OUT = "OPTED_OUT"
    SKIPPED = "SKIPPED"


# Which queue counter a job in each status counts towards: total = pending + sent + failed + optedOut + skipped.
COUNTER_OF_STATUS: dict[JobStatus, str] = {
    JobStatus.PENDING: "pending",
    JobStatus.QUEUED: "pending",
    JobStatus.SENDING: "pending",
    JobStatus.RETRY: "pending",
    JobStatus.SENT: "sent",
    JobStatus.FAILED: "failed",
    JobStatus.OPTED_OUT: "opted_out",
    JobStatus.SKIPPED: "skipped",
}
TERMINAL_JOB_STATUSES = frozenset({JobStatus.SENT, JobStatus.FAILED, JobStatus.OPTED_OUT, JobStatus.SKIPPED})


class ErrorClass(StrEnum):
    RETRYABLE = "retryable"  # back to SQS with backoff until maxAttempts
    PERMANENT = "permanent"  # FAILED at once
    OPTED_OUT = "opted_out"  # FAILED, and the number joins the business's opt-outs
    PAUSE_QUEUE = "pause_queue"  # FAILED, and the queue is paused with the reason (account/template trouble)
    UNKNOWN_OUTCOME = "unknown_outcome"  # the provider may have accepted it; never resent


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


def job_id_for(queue_id: str, phone_number: str) -> str:
    """Deterministic: a re-run of the planner over the same recipient lands on the same job."""
    digest = hashlib.sha256(f"{queue_id}|{phone_number}".encode()).hexdigest()[:32]
    return f"job_{digest}"
