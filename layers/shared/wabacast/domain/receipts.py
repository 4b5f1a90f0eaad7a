"""Provider status receipts (webhooks): what a "sent", "delivered", "read" or "failed" does to a job.

Receipts arrive late, twice and out of order. The rules, so that every queue counter moves once per job and state:
- delivery only moves forward: (sent) < DELIVERED < READ. A READ that comes first counts `delivered` too, once;
  the DELIVERED that follows it changes nothing;
- a `failed` after the send is recorded (SENT -> FAILED, with its error) while nothing said it was delivered; a
  `failed` after a delivery or read receipt is ignored (the recipient has it);
- a delivery or read receipt after a late failure still counts `delivered` / `read` (the job stays FAILED);
- a receipt for a job a sender left SENDING, or failed as UNKNOWN_OUTCOME (decision 8), says the provider took
  it: the job becomes SENT (or FAILED with the provider's error);
- a receipt that changes nothing (a duplicate, an older status) is no move at all, so it costs no write;
- the first receipt that carries pricing and finds the job delivered (or delivers it, or confirms its send) records
  the job's cost, adding it to the queue's COST counter in the same move; the job's cost is then set, so no later
  or duplicate receipt counts it again. A failure is never priced (providers bill delivered messages), and a priced
  "sent" for a job already SENT waits for the delivery rather than cost a write of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from wabacast.domain.jobs import Counter, DeliveryState, ErrorClass, Job, JobError, JobMove, JobStatus
from wabacast.pricing import PriceTable

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


REFERENCE_SEPARATOR = "/"


def job_reference(queue_id: str, job_id: str) -> str:
    """What a send hands the provider to echo in its status webhooks (decision 26)."""
    return f"{queue_id}{REFERENCE_SEPARATOR}{job_id}"


def parse_job_reference(reference: str | None) -> tuple[str, str] | None:
    """(queue id, job id) of a reference made by job_reference; None for anything else."""
    if not reference:
        return None
    queue_id, separator, job_id = reference.partition(REFERENCE_SEPARATOR)
    if not separator or not _ID.fullmatch(queue_id) or not _ID.fullmatch(job_id):
        return None
    return queue_id, job_id


class ReceiptStatus(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True)
class ReceiptPricing:
    """What the provider says the message is billed as: Meta's `pricing` object, or Twilio's `Price`."""

    billable: bool = True
    # marketing / utility / authentication (Meta's pricing.category); None: the queue's template category.
    category: str | None = None
    # The provider's own amount (Twilio's Price) in micro-units; None: priced from the price table.
    amount_micros: int | None = None


@dataclass(frozen=True)
class Receipt:
    """One status the provider reported for one message."""

    status: ReceiptStatus
    provider_message_id: str
    at: datetime
    # Set for FAILED: the provider's error, classified through wabacast.providers.errors.
    error: JobError | None = None
    # Set when the status says what the message is billed as (Meta: on sent and delivered; Twilio: see its parser).
    pricing: ReceiptPricing | None = None


def receipt_cost(job: Job, receipt: Receipt, prices: PriceTable | None, category: str | None = None) -> int | None:
    """What this receipt says `job` cost (micro-units), when the job has no cost yet; None: nothing to record.
    `category`: the queue's template category, for a receipt whose pricing names none."""
    pricing = receipt.pricing
    if job.cost_micros is not None or pricing is None or receipt.status == ReceiptStatus.FAILED:
        return None
    if not pricing.billable:
        return 0
    if pricing.amount_micros is not None:
        return pricing.amount_micros
    if prices is None:
        return None
    return prices.price(job.phone_number, pricing.category or category)


_RANK: dict[DeliveryState | None, int] = {None: 0, DeliveryState.DELIVERED: 1, DeliveryState.READ: 2}
_REACHES: dict[ReceiptStatus, DeliveryState | None] = {
    ReceiptStatus.SENT: None,
    ReceiptStatus.DELIVERED: DeliveryState.DELIVERED,
    ReceiptStatus.READ: DeliveryState.READ,
}


def _unknown_outcome(job: Job) -> bool:
    return (
        job.status == JobStatus.FAILED
        and job.last_error is not None
        and job.last_error.error_class == ErrorClass.UNKNOWN_OUTCOME
    )


def apply_receipt(
    job: Job, receipt: Receipt, *, now: datetime, prices: PriceTable | None = None, category: str | None = None
) -> JobMove | None:
    """The move `receipt` makes of `job`, with its counter deltas; None when it changes nothing. `prices` and
    `category` price a receipt whose provider gave no amount (receipt_cost)."""
    if receipt.status == ReceiptStatus.FAILED:
        return _failure(job, receipt, now)
    if job.status not in (JobStatus.SENDING, JobStatus.SENT, JobStatus.FAILED):
        # PENDING / RETRY (claimable again) or settled without a provider call: not about a send we track.
        return None
    became_sent = job.status == JobStatus.SENDING or _unknown_outcome(job)
    reached = _REACHES[receipt.status]
    delivery = reached if _RANK[reached] > _RANK[job.delivery] else job.delivery
    cost = receipt_cost(job, receipt, prices, category)
    if cost is not None and not became_sent and delivery is None:
        # A priced "sent" for a job already SENT: the delivery that follows records it (providers bill delivered
        # messages), in the write it makes anyway, instead of a transaction of its own (decision 28).
        cost = None
    if not became_sent and delivery == job.delivery and cost is None:
        return None
    changes: dict[str, Any] = {"delivery": delivery}
    if cost is not None:
        changes["cost_micros"] = cost
    if delivery is not None and job.delivered_at is None:
        changes["delivered_at"] = receipt.at
    if delivery == DeliveryState.READ and job.read_at is None:
        changes["read_at"] = receipt.at
    status = job.status
    if became_sent:
        status = JobStatus.SENT
        changes.update(
            provider_message_id=job.provider_message_id or receipt.provider_message_id,
            sent_at=job.sent_at or receipt.at,
            last_error=None,
        )
    move = job.move(status, now=now, **changes)
    deltas = dict(move.counter_deltas)
    for counter, rank in ((Counter.DELIVERED, 1), (Counter.READ, 2)):
        if _RANK[job.delivery] < rank <= _RANK[delivery]:
            deltas[counter] = deltas.get(counter, 0) + 1
    if cost:
        deltas[Counter.COST] = cost
    return JobMove(job=move.job, before=job, counter_deltas=deltas, error=None)


def _failure(job: Job, receipt: Receipt, now: datetime) -> JobMove | None:
    if receipt.error is None:
        raise ValueError("a failed receipt carries its error")
    if job.delivery is not None:
        return None  # delivered or read already: the recipient has the message
    if job.status in (JobStatus.SENDING, JobStatus.SENT) or _unknown_outcome(job):
        return job.move(
            JobStatus.FAILED,
            now=now,
            last_error=receipt.error,
            provider_message_id=job.provider_message_id or receipt.provider_message_id,
        )
    return None
