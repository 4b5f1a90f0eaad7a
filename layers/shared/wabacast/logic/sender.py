"""The sender: sends one SQS batch of jobs for one account, at most once per job, within the account's rate.

For a batch it loads jobs, queues and opt-outs in bulk, settles what needs no provider call (duplicates,
cancelled or paused queues, opt-outs), reserves rate-limit slots for the rest with one conditional write, then
claims and sends each job at its slot in a thread pool (a batch of 10 costs about one provider round trip).

At most once: a job is claimed (QUEUED/RETRY -> SENDING) before the provider call and settled after it. A job
found SENDING by a later delivery means the previous sender died between the two: the provider may have
accepted it, so it is failed as UNKNOWN_OUTCOME and never resent (docs/providers.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from wabacast.clock import Clock, utc_now
from wabacast.domain.delivery import JobOutcome
from wabacast.domain.jobs import TERMINAL_JOB_STATUSES, ErrorClass, Job, JobError, JobStatus
from wabacast.domain.models import (
    Account,
    AccountStatus,
    Business,
    OptOut,
    OptOutSource,
    QualityRating,
    Queue,
    QueueStatus,
)
from wabacast.logic.delivery_ports import DeliveryPort, FeedPort, ProviderPort, RatePort
from wabacast.logic.ports import AccountStore, BusinessStore, ContactStore, MetricsSink
from wabacast.providers.base import OutboundMessage, ProviderError

# Seconds before SQS hands a retryable job out again: grows per attempt, capped.
BACKOFF_BASE_S = 15
BACKOFF_CAP_S = 900


def backoff_seconds(attempt: int) -> int:
    return int(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class InboundRecord:
    message_id: str
    receipt_handle: str
    body: dict[str, Any]
    queue_url: str


@dataclass
class BatchResult:
    """Message ids SQS must deliver again (retryable failures, rate limited); everything else is done."""

    retry: set[str] = field(default_factory=set)
    sent: int = 0
    failed: int = 0


class Sender:
    def __init__(
        self,
        *,
        delivery: DeliveryPort,
        businesses: BusinessStore,
        accounts: AccountStore,
        contacts: ContactStore,
        providers: ProviderPort,
        rates: RatePort,
        feed: FeedPort,
        metrics: MetricsSink,
        secret_name: Callable[[str, str], str],
        max_rate_wait_s: float = 20.0,
        clock: Clock = utc_now,
        wall_time: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._delivery = delivery
        self._businesses = businesses
        self._accounts = accounts
        self._contacts = contacts
        self._providers = providers
        self._rates = rates
        self._feed = feed
        self._metrics = metrics
        self._secret_name = secret_name
        self._max_rate_wait_s = max_rate_wait_s
        self._clock = clock
        self._wall_time = wall_time
        self._sleep = sleep

    def send_batch(self, account_id: str, records: Sequence[InboundRecord]) -> BatchResult:
        """`account_id`: the account whose SQS queue the batch came from (the sending account)."""
        result = BatchResult()
        refs = [(r.body["q"], r.body["j"]) for r in records]
        jobs = self._delivery.get_jobs(refs)
        queues = self._delivery.get_queues((r.body["b"], r.body["q"]) for r in records)
        business_id = records[0].body["b"] if records else ""
        business = self._businesses.get(business_id)
        account = self._accounts.get(business, account_id) if business else None
        phones = [job.phone_number for job in jobs.values()]
        opted_out = self._contacts.opted_out_among(business_id, phones) if phones else set()

        candidates: list[tuple[InboundRecord, Job, Queue]] = []
        for record in records:
            job = jobs.get(record.body["j"])
            found = queues.get(record.body["q"])
            if job is None or found is None or job.status in TERMINAL_JOB_STATUSES or job.status == JobStatus.PENDING:
                # Already settled, or handed back to the planner: this copy of the message is spent.
                self._metrics.add("DuplicateDeliveries", 1, account_id=account_id)
                continue
            queue = found[0]
            if job.status == JobStatus.SENDING:
                self._settle_unknown(job, queue)
                result.failed += 1
                continue
            if queue.status == QueueStatus.CANCELLED:
                self._move(job, queue, JobStatus.SKIPPED, {"pending": -1, "skipped": 1}, skip="queue cancelled")
                continue
            if (
                queue.status != QueueStatus.PROCESSING
                or account is None
                or account.status != AccountStatus.ACTIVE
                or account.quality_rating == QualityRating.RED
            ):
                # Paused, or the account must stop sending: back to the planner, which feeds it again on resume or
                # through the business's default account.
                self._move(job, queue, JobStatus.PENDING, {})
                continue
            if job.phone_number in opted_out:
                self._move(job, queue, JobStatus.OPTED_OUT, {"pending": -1, "opted_out": 1}, skip="opted out")
                continue
            candidates.append((record, job, queue))
        if not candidates or account is None or business is None:
            return result

        reservation = self._rates.reserve(
            account.id,
            len(candidates),
            messages_per_second=account.limits.messages_per_second,
            daily_limit=account.limits.daily_recipient_limit,
            now=self._wall_time(),
            max_wait_s=self._max_rate_wait_s,
        )
        granted = candidates[: len(reservation.slots)]
        for record, job, queue in candidates[len(reservation.slots) :]:
            if reservation.daily_exhausted or reservation.slots:
                # Over today's volume: back to the planner, which stops feeding until the day turns.
                self._move(job, queue, JobStatus.PENDING, {})
            else:
                # Every slot is taken for longer than we may wait: SQS hands it out again later.
                self._feed.delay_redelivery(record.queue_url, record.receipt_handle, int(reservation.retry_after_s) + 1)
                result.retry.add(record.message_id)
        if len(granted) < len(candidates):
            self._metrics.add("RateLimited", len(candidates) - len(granted), account_id=account.id)
        if not granted:
            return result

        with ThreadPoolExecutor(max_workers=len(granted)) as pool:
            outcomes = list(
                pool.map(
                    lambda item: self._send_one(item[0], item[1], item[2], account, business, item[3]),
                    [(*candidate, slot) for candidate, slot in zip(granted, reservation.slots, strict=False)],
                )
            )
        for record, outcome in zip([c[0] for c in granted], outcomes, strict=True):
            if outcome == "retry":
                result.retry.add(record.message_id)
            elif outcome == "sent":
                result.sent += 1
            elif outcome == "failed":
                result.failed += 1
        for _, (queue, _) in queues.items():
            self._delivery.complete_if_done(queue, self._clock())
        return result

    # One job -------------------------------------------------------------------------------------------------
    def _send_one(
        self, record: InboundRecord, job: Job, queue: Queue, account: Account, business: Business, slot: float
    ) -> str:
        claimed = job.model_copy(
            update={
                "status": JobStatus.SENDING,
                "attempts": job.attempts + 1,
                "account_id": account.id,
                "updated_at": self._clock(),
            }
        )
        if not self._delivery.apply(JobOutcome(claimed, (JobStatus.QUEUED, JobStatus.RETRY), {}), queue):
            return "done"  # someone else settled or claimed it meanwhile
        delay = slot - self._wall_time()
        if delay > 0:
            self._sleep(delay)
        message = OutboundMessage(
            job_id=job.id,
            to=job.phone_number,
            from_number=account.phone_number,
            template_name=queue.template.name,
            language=queue.template.language,
            variables=job.variables,
            content_sid=queue.template.content_sid,
        )
        started = time.perf_counter()
        try:
            provider = self._providers.for_account(account, self._secret_name(business.id, account.id))
            receipt = provider.send(message)
        except ProviderError as error:
            self._metrics.add(
                "SendLatency", (time.perf_counter() - started) * 1000, account_id=account.id, unit="Milliseconds"
            )
            return self._settle_failure(record, claimed, queue, error)
        except Exception:
            # Our own failure before or around the call: hand the job back for a retry (attempt already counted).
            self._delivery.apply(
                JobOutcome(claimed.model_copy(update={"status": JobStatus.RETRY}), (JobStatus.SENDING,), {}), queue
            )
            raise
        self._metrics.add(
            "SendLatency", (time.perf_counter() - started) * 1000, account_id=account.id, unit="Milliseconds"
        )
        sent_at = self._clock()
        sent = claimed.model_copy(
            update={
                "status": JobStatus.SENT,
                "provider_message_id": receipt.provider_message_id,
                "updated_at": sent_at,
                "sent_at": sent_at,
            }
        )
        self._metrics.add("MessagesSent", 1, account_id=account.id)
        if not self._delivery.apply(JobOutcome(sent, (JobStatus.SENDING,), {"pending": -1, "sent": 1}), queue):
            # Settled by someone else meanwhile (the dead-letter consumer): the provider has the message anyway.
            return "done"
        return "sent"

    def _settle_failure(self, record: InboundRecord, job: Job, queue: Queue, error: ProviderError) -> str:
        job_error = JobError(code=error.code, message=error.message[:500], error_class=error.error_class)
        self._metrics.add("MessagesFailed", 1, account_id=job.account_id or "", error_class=error.error_class.value)
        if error.error_class == ErrorClass.RETRYABLE and job.attempts < queue.max_attempts:
            retry = job.model_copy(
                update={"status": JobStatus.RETRY, "last_error": job_error, "updated_at": self._clock()}
            )
            self._delivery.apply(JobOutcome(retry, (JobStatus.SENDING,), {}, job_error), queue)
            self._feed.delay_redelivery(record.queue_url, record.receipt_handle, backoff_seconds(job.attempts))
            self._metrics.add("MessagesRetried", 1, account_id=job.account_id or "")
            return "retry"
        failed = job.model_copy(
            update={"status": JobStatus.FAILED, "last_error": job_error, "updated_at": self._clock()}
        )
        self._delivery.apply(JobOutcome(failed, (JobStatus.SENDING,), {"pending": -1, "failed": 1}, job_error), queue)
        if error.error_class == ErrorClass.OPTED_OUT:
            self._contacts.add_opt_out(
                job.business_id,
                OptOut(
                    phone_number=job.phone_number,
                    reason=f"provider {error.code}: {error.message}"[:500],
                    source=OptOutSource.PROVIDER,
                    created_at=self._clock(),
                ),
            )
        elif error.error_class == ErrorClass.PAUSE_QUEUE:
            self._delivery.transition(
                queue,
                allowed_from=(QueueStatus.PROCESSING,),
                to=QueueStatus.PAUSED,
                now=self._clock(),
                reason=f"provider error {error.code}: {error.message}"[:500],
                register=False,
            )
        return "failed"

    def _settle_unknown(self, job: Job, queue: Queue) -> None:
        error = JobError(
            code="UNKNOWN_OUTCOME",
            message="a sender stopped between the provider call and recording its answer; not resent",
            error_class=ErrorClass.UNKNOWN_OUTCOME,
        )
        failed = job.model_copy(update={"status": JobStatus.FAILED, "last_error": error, "updated_at": self._clock()})
        self._delivery.apply(JobOutcome(failed, (JobStatus.SENDING,), {"pending": -1, "failed": 1}, error), queue)
        self._metrics.add("MessagesFailed", 1, account_id=job.account_id or "", error_class=error.error_class.value)

    def _move(self, job: Job, queue: Queue, to: JobStatus, counters: dict[str, int], skip: str | None = None) -> None:
        moved = job.model_copy(update={"status": to, "skip_reason": skip, "updated_at": self._clock()})
        self._delivery.apply(JobOutcome(moved, (JobStatus.QUEUED, JobStatus.RETRY), counters), queue)


def dead_letter(delivery: DeliveryPort, record_bodies: Sequence[dict[str, Any]], clock: Clock = utc_now) -> int:
    """Fail every dead-lettered job that is not settled yet, with its last error, so counters add up."""
    jobs = delivery.get_jobs((body["q"], body["j"]) for body in record_bodies)
    queues = delivery.get_queues((body["b"], body["q"]) for body in record_bodies)
    failed = 0
    for job in jobs.values():
        if job.status in TERMINAL_JOB_STATUSES or job.queue_id not in queues:
            continue
        queue = queues[job.queue_id][0]
        error = job.last_error or JobError(
            code="DEAD_LETTERED",
            message="SQS gave up on the message (maxReceiveCount reached)",
            error_class=ErrorClass.PERMANENT,
        )
        outcome = JobOutcome(
            job.model_copy(update={"status": JobStatus.FAILED, "last_error": error, "updated_at": clock()}),
            (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.SENDING, JobStatus.RETRY),
            {"pending": -1, "failed": 1},
            error,
        )
        if delivery.apply(outcome, queue):
            failed += 1
            delivery.complete_if_done(queue, clock())
    return failed
