"""The planner: turns PROCESSING queues into jobs and feeds each account's SQS queue what it can send soon.

One tick walks the accounts in the planner registry. Per account, under a lease (so two planners never
interleave), it:
  1. materializes jobs for its queues' audiences, a page at a time with a saved cursor (re-runnable: job ids
     are deterministic, and a page is committed with one conditional cursor update);
  2. feeds the account's queue about `feed_window_s` of its rate, from its PROCESSING queues by priority
     (10 first) then start time, so pause/cancel and priority changes take effect within one window;
  3. completes queues with nothing left pending.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from wabacast.clock import Clock, utc_now
from wabacast.domain.delivery import ActiveAccount, JobOutcome, OutgoingMessage, PlanState, QueueProgress
from wabacast.domain.jobs import Job, JobStatus, job_id_for
from wabacast.domain.models import (
    Account,
    AccountStatus,
    Business,
    Contact,
    QualityRating,
    Queue,
    QueueStatus,
)
from wabacast.logic.delivery_ports import DeliveryPort, FeedPort, RatePort
from wabacast.logic.ports import AccountStore, BusinessStore, ContactStore, MetricsSink
from wabacast.logic.rendering import MissingVariableError, render_variables
from wabacast.logic.scheduling import within_active_hours

PAGE_SIZE = 100
FEED_CHUNK = 10
LEASE_SECONDS = 120.0
# Stop starting new work when less than this remains of the invocation.
SAFETY_MARGIN_S = 10.0


@dataclass(frozen=True)
class PlannerConfig:
    feed_window_s: float = 60.0
    requeue_after_s: float = 900.0


@dataclass
class TickReport:
    accounts: int = 0
    jobs_planned: int = 0
    jobs_fed: int = 0
    queues_completed: int = 0
    skipped_busy: int = 0
    errors: list[str] = field(default_factory=list)


def queue_message(job: Job) -> OutgoingMessage:
    # Group = recipient: one recipient's messages stay ordered and never go out in parallel.
    # Dedupe id = this feeding of the job (it was marked QUEUED at updated_at): a repeated send of the same feeding
    # is dropped, but a job fed again after going back to PENDING (pause/resume, retry-failed) is not.
    return OutgoingMessage(
        job_id=job.id,
        group_id=job.phone_number,
        body={"b": job.business_id, "q": job.queue_id, "j": job.id},
        deduplication_id=f"{job.id}-{int(job.updated_at.timestamp() * 1_000_000)}",
    )


class Planner:
    def __init__(
        self,
        *,
        delivery: DeliveryPort,
        businesses: BusinessStore,
        accounts: AccountStore,
        contacts: ContactStore,
        feed: FeedPort,
        rates: RatePort,
        metrics: MetricsSink,
        config: PlannerConfig,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._delivery = delivery
        self._businesses = businesses
        self._accounts = accounts
        self._contacts = contacts
        self._feed = feed
        self._rates = rates
        self._metrics = metrics
        self._config = config
        self._clock = clock
        self._monotonic = monotonic

    # Entry points --------------------------------------------------------------------------------------------
    def tick(self, remaining_s: Callable[[], float]) -> TickReport:
        report = TickReport()
        for active in self._delivery.active_accounts():
            if remaining_s() < SAFETY_MARGIN_S:
                break
            now = self._clock()
            if not self._delivery.acquire_lease(
                active.business_id, active.account_id, now=now.timestamp(), seconds=LEASE_SECONDS
            ):
                report.skipped_busy += 1
                continue
            report.accounts += 1
            try:
                self._plan_account(active, remaining_s, report)
            except Exception as error:  # one account's trouble must not starve the others
                report.errors.append(f"{active.account_id}: {type(error).__name__}: {error}"[:300])
            finally:
                self._delivery.release_lease(active.business_id, active.account_id)
        return report

    # One account ---------------------------------------------------------------------------------------------
    def _plan_account(self, active: ActiveAccount, remaining_s: Callable[[], float], report: TickReport) -> None:
        business = self._businesses.get(active.business_id)
        queues: list[tuple[Queue, QueueProgress]] = []
        for queue_id in sorted(active.queue_ids):
            found = self._delivery.read_queue(active.business_id, queue_id)
            if found is None:
                continue
            queue, progress = found
            if queue.status == QueueStatus.CANCELLED:
                self._cancel_pending(queue, remaining_s)
                continue
            if queue.status != QueueStatus.PROCESSING:
                self._delivery.unregister(queue, active.account_id)
                continue
            queues.append((queue, progress))
        if business is None or not queues:
            return
        account = self._accounts.get(business, active.account_id)
        sender = self._sending_account(business, account)
        if sender is None:
            reason = (
                f"account {active.account_id} cannot send "
                f"({'deleted' if account is None else account.status.value + '/' + account.quality_rating.value})"
                " and the business has no healthy default account"
            )
            for queue, _ in queues:
                self._delivery.transition(
                    queue,
                    allowed_from=(QueueStatus.PROCESSING,),
                    to=QueueStatus.PAUSED,
                    now=self._clock(),
                    reason=reason,
                    register=False,
                    account_id=active.account_id,
                )
            return
        # Priority 10 first, then the queue that started first.
        queues.sort(key=lambda pair: (-pair[0].priority, pair[0].started_at or pair[0].created_at))
        for queue, progress in queues:
            if not progress.plan.done and remaining_s() > SAFETY_MARGIN_S:
                report.jobs_planned += self._materialize(queue, progress.plan, remaining_s)
        report.jobs_fed += self._feed_account(sender, [queue for queue, _ in queues])
        for queue, _ in queues:
            found = self._delivery.read_queue(queue.business_id, queue.id, with_recipients=False)
            if found is None:
                continue
            current, progress = found
            if self._delivery.complete_if_done(current, self._clock()):
                report.queues_completed += 1
            self._sample_rate(current, progress)

    def _sending_account(self, business: Business, account: Account | None) -> Account | None:
        """The queue's account while it can send; else the business's default account when that one can."""
        if account is not None and _healthy(account):
            return account
        if business.default_account_id and (account is None or business.default_account_id != account.id):
            fallback = self._accounts.get(business, business.default_account_id)
            if fallback is not None and _healthy(fallback):
                return fallback
        return None

    # Materializing -------------------------------------------------------------------------------------------
    def _materialize(self, queue: Queue, plan: PlanState, remaining_s: Callable[[], float]) -> int:
        planned = 0
        while not plan.done and remaining_s() > SAFETY_MARGIN_S:
            recipients, cursor, done = self._next_page(queue, plan.cursor)
            phones = [phone for phone, _, _ in recipients]
            opted_out = self._contacts.opted_out_among(queue.business_id, phones) if phones else set()
            existing = self._delivery.existing_jobs(queue.id, [job_id_for(queue.id, phone) for phone in phones])
            now = self._clock()
            jobs: list[Job] = []
            counts = {"total": 0, "pending": 0, "opted_out": 0, "skipped": 0}
            seen: set[str] = set()
            for phone, recipient_variables, contact in recipients:
                job_id = job_id_for(queue.id, phone)
                earlier = existing.get(job_id)
                # Same number again (inline + tag, two tags): one job. A job this very page wrote before a crash
                # carries the same plan version and is written (and counted) again.
                if phone in seen or (earlier is not None and earlier.get("plan_version") != plan.version):
                    continue
                seen.add(phone)
                status, reason, variables = JobStatus.PENDING, None, {}
                if phone in opted_out:
                    status, reason = JobStatus.OPTED_OUT, "opted out"
                else:
                    try:
                        variables = render_variables(queue.variables, recipient_variables, phone, contact)
                    except MissingVariableError as missing:
                        status, reason = JobStatus.SKIPPED, str(missing)
                jobs.append(
                    Job(
                        id=job_id,
                        queue_id=queue.id,
                        business_id=queue.business_id,
                        phone_number=phone,
                        variables=variables,
                        seq=plan.next_seq + len(jobs),
                        status=status,
                        skip_reason=reason,
                        created_at=now,
                        updated_at=now,
                    )
                )
                counts["total"] += 1
                counts[{JobStatus.PENDING: "pending", JobStatus.OPTED_OUT: "opted_out"}.get(status, "skipped")] += 1
            if not self._delivery.commit_page(
                queue, plan, jobs=jobs, cursor=cursor, done=done, counter_changes=counts, now=now
            ):
                break  # another planner moved this queue's cursor: leave it the queue
            plan = PlanState(cursor=cursor, version=plan.version + 1, done=done, next_seq=plan.next_seq + len(jobs))
            planned += len(jobs)
            self._metrics.add("JobsPlanned", len(jobs), account_id=queue.account_id)
        return planned

    def _next_page(
        self, queue: Queue, cursor: dict[str, Any] | None
    ) -> tuple[list[tuple[str, dict[str, str], Contact | None]], dict[str, Any] | None, bool]:
        """The next page of recipients (phone, per-recipient variables, contact) and the cursor after it."""
        cursor = cursor or {"phase": "inline", "offset": 0}
        tags = queue.audience.contact_tags
        if cursor["phase"] == "inline":
            offset = int(cursor["offset"])
            chunk = queue.audience.recipients[offset : offset + PAGE_SIZE]
            contacts = self._contacts.get_many(queue.business_id, [r.phone_number for r in chunk]) if chunk else {}
            page = [(r.phone_number, r.variables, contacts.get(r.phone_number)) for r in chunk]
            if offset + PAGE_SIZE < len(queue.audience.recipients):
                return page, {"phase": "inline", "offset": offset + PAGE_SIZE}, False
            if tags:
                return page, {"phase": "tag", "tag": 0, "token": None}, False
            return page, None, True
        index, token = int(cursor["tag"]), cursor.get("token")
        listing = self._contacts.list(queue.business_id, tag=tags[index], limit=PAGE_SIZE, next_token=token)
        page = [(contact.phone_number, {}, contact) for contact in listing.items]
        if listing.next_token:
            return page, {"phase": "tag", "tag": index, "token": listing.next_token}, False
        if index + 1 < len(tags):
            return page, {"phase": "tag", "tag": index + 1, "token": None}, False
        return page, None, True

    # Feeding -------------------------------------------------------------------------------------------------
    def _feed_account(self, sender: Account, queues: list[Queue]) -> int:
        now = self._clock()
        window = math.ceil(sender.limits.messages_per_second * self._config.feed_window_s)
        budget = window - self._feed.backlog(sender.id)
        budget = min(
            budget, self._rates.daily_remaining(sender.id, sender.limits.daily_recipient_limit, now.timestamp())
        )
        fed = 0
        for queue in queues:
            self._requeue_lost(queue, sender, now)
            if budget <= 0:
                break
            if not within_active_hours(queue.schedule, now):
                continue
            while budget > 0:
                jobs = self._delivery.pending_jobs(queue.id, min(budget, PAGE_SIZE))
                if not jobs:
                    break
                for start in range(0, len(jobs), FEED_CHUNK):
                    moved = self._delivery.mark_queued(jobs[start : start + FEED_CHUNK], sender.id, self._clock())
                    if not moved:
                        continue
                    refused = set(self._feed.send(sender.id, [queue_message(job) for job in moved]))
                    # Refused by SQS: left QUEUED, they are fed again once `requeue_after_s` has passed.
                    fed += len(moved) - len(refused)
                    budget -= len(moved)
                if len(jobs) < PAGE_SIZE and budget > 0:
                    break
        if fed:
            self._metrics.add("JobsFed", fed, account_id=sender.id)
        return fed

    def _requeue_lost(self, queue: Queue, sender: Account, now: datetime) -> None:
        """QUEUED jobs that never reached a sender (the planner died between marking and SQS) are fed again;
        a second copy in SQS is harmless, the sender acknowledges a job that is no longer QUEUED."""
        stale = self._delivery.stale_queued_jobs(
            queue.id, now - timedelta(seconds=self._config.requeue_after_s), PAGE_SIZE
        )
        if stale:
            self._feed.send(sender.id, [queue_message(job) for job in stale])
            self._metrics.add("JobsRequeued", len(stale), account_id=sender.id)

    # Cancel and progress -------------------------------------------------------------------------------------
    def _cancel_pending(self, queue: Queue, remaining_s: Callable[[], float]) -> None:
        """A cancelled queue's jobs that never left the table become SKIPPED, so its counters add up."""
        while remaining_s() > SAFETY_MARGIN_S:
            jobs = self._delivery.pending_jobs(queue.id, PAGE_SIZE)
            if not jobs:
                self._delivery.unregister(queue)
                return
            for job in jobs:
                skipped = job.model_copy(
                    update={"status": JobStatus.SKIPPED, "skip_reason": "queue cancelled", "updated_at": self._clock()}
                )
                self._delivery.apply(JobOutcome(skipped, (JobStatus.PENDING,), {"pending": -1, "skipped": 1}), queue)

    def _sample_rate(self, queue: Queue, progress: QueueProgress) -> None:
        counters = queue.counters
        done = counters.sent + counters.failed + counters.opted_out + counters.skipped
        now = self._clock().timestamp()
        previous_at = progress.rate_sample_at
        if previous_at is None:
            self._delivery.record_rate(queue, at=now, done=done, rate=0.0)
        elif now - previous_at >= 5.0:
            rate = max(0.0, (done - progress.rate_sample_done) / (now - previous_at))
            self._delivery.record_rate(queue, at=now, done=done, rate=rate)


def _healthy(account: Account) -> bool:
    return account.status == AccountStatus.ACTIVE and account.quality_rating != QualityRating.RED
