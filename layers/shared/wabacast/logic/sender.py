"""The sender: sends one SQS batch of jobs for one account, at most once per job, within the account's rate.

For a batch it loads jobs, queues and opt-outs in bulk and settles what needs no provider call (duplicates,
cancelled or paused queues, opt-outs, jobs a dead sender left claimed). It reserves rate-limit slots for the rest
with one conditional write, within the account's messaging limit (unique recipients per rolling 24 h: what does not
fit goes back to the planner, docs/decisions.md 30), then, in a thread pool, each job waits for its slot, is claimed
(one conditional write, at the last moment), and goes to the provider. The batch's outcomes are written together at
the end: one transaction per queue holding the job moves and one counter-shard update
(wabacast.adapters.dynamodb.jobs); then one batch write records the 24 h windows of the new recipients it reached.

At most once: a job is claimed (PENDING/RETRY -> SENDING) right before the provider call and settled after it. A
job found SENDING by a later delivery means the previous sender died between the two: the provider may have
accepted it, so it is failed as UNKNOWN_OUTCOME and never resent (docs/providers.md). The window is the provider
round trip plus the rest of the batch's sends (at most its slot spread, 9 / messagesPerSecond).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from wabacast.clock import Clock, utc_now
from wabacast.domain.delivery import DEAD_LETTER_REFEEDS, SQS_HAND_BACKS, JobMessage, SendOutcome
from wabacast.domain.jobs import CLAIMABLE, TERMINAL_JOB_STATUSES, ErrorClass, Job, JobError, JobMove, JobStatus
from wabacast.domain.messaging_limit import account_recipient_limit
from wabacast.domain.models import Account, Queue, QueueStatus, TemplateCategory
from wabacast.domain.receipts import job_reference
from wabacast.logic.delivery_ports import JobStore, ProviderPort, QueueLifecycle, RatePort
from wabacast.logic.fates import OPT_OUT_SCOPE_OF_CLASS, FailureFates, failure_move
from wabacast.logic.ports import AccountStore, BusinessStore, ContactStore, MetricsSink
from wabacast.logic.scheduling import ScheduleKeeper, expired, window_open
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
    message: JobMessage
    queue_url: str
    # When SQS accepted the message (epoch seconds): the job's queued_at.
    sent_timestamp: float | None = None
    # SQS's ApproximateReceiveCount: this is the message's n-th delivery (attempts are counted on the job).
    receive_count: int = 1


@dataclass
class BatchResult:
    """Message ids SQS must deliver again (retryable failures, rate limited); everything else is done."""

    retry: set[str] = field(default_factory=set)
    sent: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Attempt:
    """What one provider call came to: its outcome and the move to write (None: nothing to write)."""

    outcome: SendOutcome
    move: JobMove | None = None
    error: ProviderError | None = None


class Sender:
    def __init__(
        self,
        *,
        lifecycle: QueueLifecycle,
        jobs: JobStore,
        businesses: BusinessStore,
        accounts: AccountStore,
        contacts: ContactStore,
        providers: ProviderPort,
        rates: RatePort,
        # Hands a message back to SQS after a delay: (queue URL, receipt handle, seconds).
        redelivery: Callable[[str, str, int], None],
        metrics: MetricsSink,
        secret_name: Callable[[str, str], str],
        max_rate_wait_s: float = 20.0,
        clock: Clock = utc_now,
        wall_time: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        schedules: ScheduleKeeper | None = None,
    ) -> None:
        self._lifecycle = lifecycle
        self._jobs = jobs
        self._businesses = businesses
        self._accounts = accounts
        self._contacts = contacts
        self._providers = providers
        self._rates = rates
        self._redeliver = redelivery
        self._metrics = metrics
        self._secret_name = secret_name
        self._max_rate_wait_s = max_rate_wait_s
        self._clock = clock
        self._wall_time = wall_time
        self._sleep = sleep
        self._fates = FailureFates(contacts=contacts, lifecycle=lifecycle, clock=clock, schedules=schedules)

    def send_batch(self, account_id: str, records: Sequence[InboundRecord]) -> BatchResult:
        """`account_id`: the account whose SQS queue the batch came from (the sending account)."""
        result = BatchResult()
        if not records:
            return result
        jobs = self._jobs.get_jobs((r.message.queue_id, r.message.job_id) for r in records)
        queues = self._lifecycle.read_queues((r.message.business_id, r.message.queue_id) for r in records)
        business_id = records[0].message.business_id
        business = self._businesses.get(business_id)
        account = self._accounts.get(business, account_id) if business else None
        phones = [job.phone_number for job in jobs.values()]
        # Opt-outs depend on the template's category (a marketing-only opt-out lets utility templates through):
        # one read per category in the batch, almost always one.
        categories = {queue.template.category for queue in queues.values()}
        opted_out: dict[TemplateCategory, set[str]] = {
            category: self._contacts.opted_out_among(business_id, phones, category=category) if phones else set()
            for category in categories
        }
        now = self._clock()

        moves: list[JobMove] = []
        candidates: list[tuple[InboundRecord, Job, Queue]] = []
        seen: set[str] = set()
        for record in records:
            job = jobs.get(record.message.job_id)
            queue = queues.get(record.message.queue_id)
            if job is None or queue is None or job.status in TERMINAL_JOB_STATUSES or job.id in seen:
                # Settled already, or a second copy in this very batch: this copy is spent.
                self._metrics.add("DuplicateDeliveries", 1, account_id=account_id)
                continue
            if job.not_before is not None and job.not_before > now:
                # A copy of a job waiting for its delayed re-feed (a sweep's second copy): the planner feeds it.
                self._metrics.add("DuplicateDeliveries", 1, account_id=account_id)
                continue
            seen.add(job.id)
            if job.status == JobStatus.SENDING:
                moves.append(self._unknown_outcome(job, now))
                result.failed += 1
            elif queue.status == QueueStatus.CANCELLED:
                moves.append(job.move(JobStatus.SKIPPED, now=now, skip_reason="queue cancelled"))
            elif expired(queue.schedule, now):
                moves.append(job.move(JobStatus.SKIPPED, now=now, skip_reason="expired"))
            elif queue.status != QueueStatus.PROCESSING or account is None or not account.can_send:
                # Paused, or the account must stop sending: back to the planner, which feeds it again on resume or
                # through the business's default account.
                moves.append(job.move(JobStatus.PENDING, now=now, refeed=True))
            elif job.phone_number in opted_out.get(queue.template.category, set()):
                moves.append(job.move(JobStatus.OPTED_OUT, now=now, skip_reason="opted out"))
                self._metrics.add("OptedOut", 1, account_id=account_id)
            elif not window_open(queue.schedule, now, job.recipient_zone):
                # Fed before the window closed (or a retry due outside it): back to the planner until it opens.
                moves.append(job.move(JobStatus.PENDING, now=now, refeed=True))
                self._metrics.add("OutsideWindow", 1, account_id=account_id)
            else:
                candidates.append((record, job, queue))
        if not candidates or account is None or business is None:
            self._jobs.settle(moves)
            return result

        reserved_at = self._wall_time()
        reservation = self._rates.reserve(
            account.id,
            [job.phone_number for _, job, _ in candidates],
            messages_per_second=account.limits.messages_per_second,
            recipient_limit=account_recipient_limit(account),
            now=reserved_at,
            max_wait_s=self._max_rate_wait_s,
        )
        granted_indexes = set(reservation.granted)
        granted = [candidates[index] for index in reservation.granted]
        for index, (record, job, _) in enumerate(candidates):
            if index in granted_indexes:
                continue
            if reservation.limit_reached or record.receive_count > SQS_HAND_BACKS:
                # No room for its recipient in the messaging limit's rolling 24 h: back to the planner, which feeds
                # it when room returns. Or a message handed back through SQS often enough: the planner feeds a new
                # one, so hand-backs never bring a message near its redrive (maxReceiveCount, decision 23).
                moves.append(job.move(JobStatus.PENDING, now=now, refeed=True))
            else:
                # Every slot is taken for longer than we may wait: SQS hands it out again later.
                self._redeliver(record.queue_url, record.receipt_handle, int(reservation.retry_after_s) + 1)
                result.retry.add(record.message_id)
        if len(granted) < len(candidates):
            self._metrics.add("RateLimited", len(candidates) - len(granted), account_id=account.id)

        attempts: list[_Attempt] = []
        if granted:
            with ThreadPoolExecutor(max_workers=len(granted)) as pool:
                attempts = list(
                    pool.map(
                        lambda item: self._send_one(item[0], item[1], item[2], account, item[3]),
                        [(*candidate, slot) for candidate, slot in zip(granted, reservation.slots, strict=True)],
                    )
                )
        moves += [attempt.move for attempt in attempts if attempt.move is not None]
        applied = {move.job.id for move in self._jobs.settle(moves)}
        # Only recipients a message really went to open a window (one that failed was counted, which errs safe);
        # opened at the reservation, before the message left, so the window never outlasts Meta's.
        opened = [
            job.phone_number
            for (_, job, _), attempt in zip(granted, attempts, strict=True)
            if attempt.outcome == SendOutcome.SENT and job.phone_number in reservation.opened
        ]
        if opened:
            self._rates.record_windows(account.id, opened, opened_at=reserved_at)
        for (record, job, queue), attempt in zip(granted, attempts, strict=True):
            if attempt.outcome == SendOutcome.RETRY:
                result.retry.add(record.message_id)
            elif attempt.outcome == SendOutcome.SENT and job.id in applied:
                result.sent += 1
            elif attempt.outcome == SendOutcome.FAILED and job.id in applied:
                result.failed += 1
            if attempt.move is not None and attempt.move.error is not None and job.id in applied:
                self._fates.apply(attempt.move.job, queue, attempt.move.error, provider=account.provider.value)
                if attempt.move.error.error_class in OPT_OUT_SCOPE_OF_CLASS:
                    self._metrics.add("OptedOut", 1, account_id=job.account_id)
        return result

    # One job -------------------------------------------------------------------------------------------------
    def _send_one(self, record: InboundRecord, job: Job, queue: Queue, account: Account, slot: float) -> _Attempt:
        delay = slot - self._wall_time()
        if delay > 0:
            self._sleep(delay)
            # The window may have closed (or the queue expired) while this job waited for its slot.
            now = self._clock()
            if expired(queue.schedule, now):
                return _Attempt(SendOutcome.HANDED_BACK, job.move(JobStatus.SKIPPED, now=now, skip_reason="expired"))
            if not window_open(queue.schedule, now, job.recipient_zone):
                return _Attempt(SendOutcome.HANDED_BACK, job.move(JobStatus.PENDING, now=now, refeed=True))
        # Claimed at the last moment: a sender that stops before this line leaves the job claimable.
        queued_at = (
            datetime.fromtimestamp(record.sent_timestamp, UTC) if record.sent_timestamp is not None else job.queued_at
        )
        claim = job.claim(account_id=account.id, now=self._clock(), queued_at=queued_at)
        if not self._jobs.claim(claim):
            return _Attempt(SendOutcome.SETTLED_ELSEWHERE)
        claimed = claim.job
        message = OutboundMessage(
            job_id=job.id,
            to=job.phone_number,
            from_number=account.phone_number,
            template_name=queue.template.name,
            language=queue.template.language,
            variables=job.variables,
            content_sid=queue.template.content_sid,
            header=queue.template.header,
            buttons=tuple(queue.template.buttons),
            callback_reference=job_reference(queue.id, job.id),
        )
        started = time.perf_counter()
        try:
            provider = self._providers.for_account(account, self._secret_name(account.business_id, account.id))
            receipt = provider.send(message)
        except ProviderError as error:
            self._record_latency(account, started)
            return self._failure(record, claimed, queue, error)
        except Exception:
            # Our own failure before or around the call: hand the job back for a retry (attempt already counted).
            self._jobs.settle([claimed.move(JobStatus.RETRY, now=self._clock())])
            raise
        self._record_latency(account, started)
        sent_at = self._clock()
        self._metrics.add("MessagesSent", 1, account_id=account.id)
        move = claimed.move(
            JobStatus.SENT, now=sent_at, provider_message_id=receipt.provider_message_id, sent_at=sent_at
        )
        return _Attempt(SendOutcome.SENT, move)

    def _record_latency(self, account: Account, started: float) -> None:
        self._metrics.add(
            "SendLatency", (time.perf_counter() - started) * 1000, account_id=account.id, unit="Milliseconds"
        )

    def _failure(self, record: InboundRecord, job: Job, queue: Queue, error: ProviderError) -> _Attempt:
        job_error = JobError(code=error.code, message=error.message[:500], error_class=error.error_class)
        self._metrics.add("MessagesFailed", 1, account_id=job.account_id, error_class=error.error_class.value)
        fate = failure_move(job, queue, job_error, now=self._clock(), backoff=backoff_seconds)
        if fate.redeliver_after_s is not None:
            self._redeliver(record.queue_url, record.receipt_handle, fate.redeliver_after_s)
            self._metrics.add("MessagesRetried", 1, account_id=job.account_id)
            return _Attempt(SendOutcome.RETRY, fate.move)
        if fate.deferred:
            # Not now: the planner feeds it again after `not_before`; this message is done with.
            self._metrics.add("MessagesDeferred", 1, account_id=job.account_id)
            return _Attempt(SendOutcome.DEFERRED, fate.move)
        return _Attempt(SendOutcome.FAILED, fate.move, error)

    def _unknown_outcome(self, job: Job, now: datetime) -> JobMove:
        error = JobError(
            code="UNKNOWN_OUTCOME",
            message="a sender stopped between the provider call and recording its answer; not resent",
            error_class=ErrorClass.UNKNOWN_OUTCOME,
        )
        self._metrics.add("MessagesFailed", 1, account_id=job.account_id, error_class=error.error_class.value)
        return job.move(JobStatus.FAILED, now=now, last_error=error)


@dataclass(frozen=True)
class DeadLetterResult:
    failed: int = 0
    handed_back: int = 0


def dead_letter(
    jobs: JobStore, lifecycle: QueueLifecycle, messages: Sequence[JobMessage], clock: Clock = utc_now
) -> DeadLetterResult:
    """SQS gave up on these messages (maxReceiveCount receives). Receives are not attempts (decision 23): a job
    that had fewer than its queue's maxAttempts, in a queue still to be sent, goes back to the planner
    (DEAD_LETTER_REFEEDS times); every other unsettled job is FAILED with its last error, so counters add up."""
    found = jobs.get_jobs((message.queue_id, message.job_id) for message in messages)
    queues = lifecycle.read_queues((message.business_id, message.queue_id) for message in messages)
    now = clock()
    moves = []
    for job in found.values():
        if job.status in TERMINAL_JOB_STATUSES:
            continue
        queue = queues.get(job.queue_id)
        if (
            job.status in CLAIMABLE
            and queue is not None
            and queue.status in (QueueStatus.PROCESSING, QueueStatus.PAUSED)
            and job.attempts < queue.max_attempts
            and job.dead_letters < DEAD_LETTER_REFEEDS
        ):
            moves.append(job.move(JobStatus.PENDING, now=now, refeed=True, dead_letters=job.dead_letters + 1))
            continue
        error = job.last_error or JobError(
            code="DEAD_LETTERED",
            message="SQS gave up on the message (maxReceiveCount reached)",
            error_class=ErrorClass.PERMANENT,
        )
        moves.append(job.move(JobStatus.FAILED, now=now, last_error=error, refeed=False))
    applied = jobs.settle(moves)
    handed_back = sum(1 for move in applied if move.job.status == JobStatus.PENDING)
    return DeadLetterResult(failed=len(applied) - handed_back, handed_back=handed_back)
