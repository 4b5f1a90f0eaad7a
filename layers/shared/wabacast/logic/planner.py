"""The planner: turns PROCESSING queues into jobs and feeds each account's SQS queue what it can send soon.

The tick (every minute) hands one unit of work per active account to a worker of its own (`PlanDispatch`: the plan
queue in AWS), so hundreds of accounts, or one account at 1,000 msg/s, fit in a minute; with no dispatch (unit
tests, one-process tools) the tick plans every account itself. Per account, under a lease (two planners never
interleave on one account), `plan_account`:
  1. materializes jobs for its queues' audiences, a page at a time with a saved cursor (re-runnable: job ids are
     deterministic, and a page is committed with one conditional write of the plan item);
  2. feeds the account's queue about `feed_window_s` of its rate, from its PROCESSING queues by priority (10 first)
     then start time: handed-back jobs first, then the planned ones after the queue's feed cursor. The budget is also
     bounded by the room left in the account's messaging limit (unique recipients in a rolling 24 h); while there
     is none, nothing is fed and each queue records when room returns. Feeding writes no
     job: the cursor (one write per queue and tick) says what was fed;
  3. sweeps: jobs fed more than `requeue_after_s` ago that no sender ever claimed (lost between the planner and
     SQS) are fed again; a second copy in SQS is harmless, a sender claims a job at most once;
  4. completes queues whose audience is planned and whose counters show nothing pending (a recurring queue's run
     ends instead, and the queue waits for its next occurrence as SCHEDULED).
Feeding honours the queue's sending window (wabacast.logic.scheduling): nothing is fed while it is closed, and a
queue sending in recipients' local time feeds each job only while its recipient's window is open (the others are
handed back, indexed by zone, until theirs opens). A queue past its `endAt` has what is left skipped as expired.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from wabacast.clock import Clock, utc_now
from wabacast.domain.delivery import (
    ActiveAccount,
    FeedCandidate,
    FeedMark,
    JobMessage,
    OutgoingMessage,
    PlanAccountMessage,
    PlanState,
    QueueTally,
)
from wabacast.domain.jobs import Job, JobMove, JobStatus, job_id_for
from wabacast.domain.messaging_limit import account_recipient_limit
from wabacast.domain.models import (
    Account,
    Business,
    Contact,
    Queue,
    QueueRun,
    QueueStatus,
    RunStatus,
    counters_since,
)
from wabacast.domain.recipient_zones import recipient_zone
from wabacast.logic.delivery_ports import (
    CounterStore,
    FeedPort,
    JobStore,
    PlanDispatch,
    PlannerRegistry,
    QueueLifecycle,
    RatePort,
)
from wabacast.logic.ports import AccountStore, BusinessStore, ContactStore, MetricsSink
from wabacast.logic.rendering import MissingVariableError, render_variables
from wabacast.logic.scheduling import expired, window_open

PAGE_SIZE = 100
# Planned jobs read from the index per feeding query (each one a few dozen bytes there).
FEED_PAGE = 1000
LEASE_SECONDS = 300.0
# Stop starting new work when less than this remains of the invocation.
SAFETY_MARGIN_S = 10.0
# Feed marks closer together than this are merged: the plan item keeps about one per tick.
MARK_SPACING_S = 30.0


@dataclass(frozen=True)
class PlannerConfig:
    feed_window_s: float = 60.0
    requeue_after_s: float = 900.0


@dataclass
class TickReport:
    accounts: int = 0
    dispatched: int = 0
    jobs_planned: int = 0
    jobs_fed: int = 0
    jobs_requeued: int = 0
    queues_completed: int = 0
    skipped_busy: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: TickReport) -> None:
        for name in ("accounts", "dispatched", "jobs_planned", "jobs_fed", "jobs_requeued", "queues_completed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped_busy += other.skipped_busy
        self.errors.extend(other.errors)


def job_message(business_id: str, queue_id: str, job_id: str, phone_number: str, fed_at: float) -> OutgoingMessage:
    # Group = recipient: one recipient's messages stay ordered and never go out in parallel.
    # Dedupe id = this feeding of the job: a repeated send of one feeding is dropped, a later feeding is not.
    return OutgoingMessage(
        job_id=job_id,
        group_id=phone_number,
        message=JobMessage(business_id=business_id, queue_id=queue_id, job_id=job_id),
        deduplication_id=f"{job_id}-{int(fed_at * 1_000_000)}",
    )


class Planner:
    def __init__(
        self,
        *,
        lifecycle: QueueLifecycle,
        registry: PlannerRegistry,
        jobs: JobStore,
        counters: CounterStore,
        businesses: BusinessStore,
        accounts: AccountStore,
        contacts: ContactStore,
        feed: FeedPort,
        rates: RatePort,
        metrics: MetricsSink,
        config: PlannerConfig,
        dispatch: PlanDispatch | None = None,
        clock: Clock = utc_now,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        self._lifecycle = lifecycle
        self._registry = registry
        self._jobs = jobs
        self._counters = counters
        self._businesses = businesses
        self._accounts = accounts
        self._contacts = contacts
        self._feed = feed
        self._rates = rates
        self._metrics = metrics
        self._config = config
        self._dispatch = dispatch
        self._clock = clock
        self._wall_time = wall_time

    # Entry points --------------------------------------------------------------------------------------------
    def tick(self, remaining_s: Callable[[], float]) -> TickReport:
        """One schedule tick: a heartbeat, then one unit of work per active account."""
        self._metrics.add("PlannerTick", 1, account_id=None)
        report = TickReport()
        active = self._registry.active_accounts()
        if self._dispatch is not None:
            messages = [
                PlanAccountMessage(business_id=entry.business_id, account_id=entry.account_id) for entry in active
            ]
            refused = self._dispatch.dispatch(messages) if messages else []
            report.dispatched = len(messages) - len(refused)
            report.errors += [f"{message.account_id}: not dispatched" for message in refused]
            return report
        for entry in active:
            if remaining_s() < SAFETY_MARGIN_S:
                break
            report.add(self._plan_under_lease(entry, remaining_s))
        return report

    def plan_account(self, business_id: str, account_id: str, remaining_s: Callable[[], float]) -> TickReport:
        """One account's work (the plan worker's entry point). An account that has left the registry has none."""
        entry = self._registry.account(business_id, account_id)
        if entry is None:
            return TickReport()
        return self._plan_under_lease(entry, remaining_s)

    def _plan_under_lease(self, entry: ActiveAccount, remaining_s: Callable[[], float]) -> TickReport:
        report = TickReport()
        if not self._registry.acquire_lease(
            entry.business_id, entry.account_id, now=self._wall_time(), seconds=LEASE_SECONDS
        ):
            report.skipped_busy += 1
            return report
        report.accounts += 1
        try:
            self._plan_account(entry, remaining_s, report)
        except Exception as error:  # one account's trouble must not starve the others
            report.errors.append(f"{entry.account_id}: {type(error).__name__}: {error}"[:300])
        finally:
            self._registry.release_lease(entry.business_id, entry.account_id)
        return report

    # One account ---------------------------------------------------------------------------------------------
    def _plan_account(self, entry: ActiveAccount, remaining_s: Callable[[], float], report: TickReport) -> None:
        business = self._businesses.get(entry.business_id)
        queues: list[Queue] = []
        for queue_id in sorted(entry.queue_ids):
            queue = self._lifecycle.read_queue(entry.business_id, queue_id)
            if queue is None:
                self._registry.unregister(entry.business_id, entry.account_id, queue_id)
            elif queue.status == QueueStatus.CANCELLED:
                self._skip_pending(queue, entry.account_id, remaining_s, reason="queue cancelled")
            elif queue.status != QueueStatus.PROCESSING:
                self._registry.unregister(entry.business_id, entry.account_id, queue_id)
            elif expired(queue.schedule, self._clock()):
                if self._skip_pending(queue, entry.account_id, remaining_s, reason="expired"):
                    report.queues_completed += self._finish(queue, entry.account_id, expired_now=True)
            else:
                queues.append(queue)
        if business is None or not queues:
            return
        account = self._accounts.get(business, entry.account_id)
        sender = self._sending_account(business, account)
        if sender is None:
            reason = (
                f"account {entry.account_id} cannot send "
                f"({'deleted' if account is None else account.status.value + '/' + account.quality_rating.value})"
                " and the business has no healthy default account"
            )
            for queue in queues:
                self._lifecycle.transition(
                    queue,
                    allowed_from=(QueueStatus.PROCESSING,),
                    to=QueueStatus.PAUSED,
                    now=self._clock(),
                    reason=reason,
                    register=False,
                    account_id=entry.account_id,
                )
            return
        # Priority 10 first, then the queue that started first.
        queues.sort(key=lambda queue: (-queue.priority, queue.started_at or queue.created_at))
        plans = {queue.id: self._jobs.read_plan(queue.id) for queue in queues}
        # First about one window per queue, so sending starts at once; the rest of the audience after feeding, in the
        # time left (a large tag audience would otherwise hold the first messages back for a whole invocation).
        window = math.ceil(sender.limits.messages_per_second * self._config.feed_window_s)
        for limit in (window, None):
            for queue in queues:
                if not plans[queue.id].done and remaining_s() > SAFETY_MARGIN_S:
                    plans[queue.id], planned = self._materialize(queue, plans[queue.id], remaining_s, limit)
                    report.jobs_planned += planned
            if limit is not None:
                self._feed_account(sender, queues, plans, report)
        pending_since: list[datetime] = []
        for queue in queues:
            tally = self._counters.tally(queue.id)
            if tally.counters.pending:
                pending_since.append(queue.started_at or queue.created_at)
            plan = plans[queue.id]
            if plan.done and tally.counters.pending == 0:
                report.queues_completed += self._finish(queue, entry.account_id, tally=tally)
            if tally.counters != queue.counters:
                self._lifecycle.record_counters(queue, tally.counters)
            self._sample_rate(queue, plan, tally)
        # Age of the oldest pending job, taken as its queue's start (jobs are fed in order, oldest queue first).
        backlog_s = (self._clock() - min(pending_since)).total_seconds() if pending_since else 0.0
        self._metrics.add("QueueBacklog", max(backlog_s, 0.0), account_id=entry.account_id, unit="Seconds")

    def _finish(
        self, queue: Queue, account_id: str, *, tally: QueueTally | None = None, expired_now: bool = False
    ) -> int:
        """The queue's work is done: COMPLETED, or for a recurring queue the run ends and the queue waits for its
        next occurrence (SCHEDULED) unless it expired. 1 when the queue completed or its run ended."""
        now = self._clock()
        reason = "expired: schedule.endAt passed" if expired_now else None
        if not queue.schedule.recurring:
            return int(
                self._lifecycle.transition(
                    queue,
                    allowed_from=(QueueStatus.PROCESSING,),
                    to=QueueStatus.COMPLETED,
                    now=now,
                    reason=reason,
                    register=False,
                    account_id=account_id,
                    # A retry-failed that reopened work after this tick read the queue keeps it PROCESSING.
                    unchanged_since=queue.updated_at,
                )
            )
        tally = tally or self._counters.tally(queue.id)
        run = self._lifecycle.read_run(queue.id, queue.run_number) or QueueRun(
            queue_id=queue.id, number=queue.run_number, status=RunStatus.PROCESSING, started_at=now
        )
        ended = run.model_copy(
            update={
                "status": RunStatus.COMPLETED,
                "completed_at": now,
                "reason": reason,
                "counters": counters_since(run.baseline, tally.counters),
            }
        )
        last = expired_now or expired(queue.schedule, now)
        return int(
            self._lifecycle.end_run(
                queue,
                ended,
                to=QueueStatus.COMPLETED if last else QueueStatus.SCHEDULED,
                now=now,
                reason=reason,
                unchanged_since=queue.updated_at,
            )
        )

    def _sending_account(self, business: Business, account: Account | None) -> Account | None:
        """The queue's account while it can send; else the business's default account when that one can."""
        if account is not None and account.can_send:
            return account
        if business.default_account_id and (account is None or business.default_account_id != account.id):
            fallback = self._accounts.get(business, business.default_account_id)
            if fallback is not None and fallback.can_send:
                return fallback
        return None

    # Materializing -------------------------------------------------------------------------------------------
    def _materialize(
        self, queue: Queue, plan: PlanState, remaining_s: Callable[[], float], limit: int | None = None
    ) -> tuple[PlanState, int]:
        """Plan pages of the audience until it is done, time runs short, or (with `limit`) that many jobs more."""
        planned = 0
        while not plan.done and remaining_s() > SAFETY_MARGIN_S and (limit is None or planned < limit):
            recipients, cursor, done = self._next_page(queue, plan.cursor)
            phones = [phone for phone, _, _ in recipients]
            opted_out = (
                self._contacts.opted_out_among(queue.business_id, phones, category=queue.template.category)
                if phones
                else set()
            )
            run = plan.run
            existing = self._jobs.existing_plan_versions(
                queue.id, [job_id_for(queue.id, phone, run) for phone in phones]
            )
            now = self._clock()
            jobs: list[Job] = []
            seen: set[str] = set()
            zones: set[str] = set()
            local_time = queue.schedule.recipient_local_time
            for phone, recipient_variables, contact in recipients:
                job_id = job_id_for(queue.id, phone, run)
                # Same number again (inline + tag, two tags): one job. A job this very page wrote before a crash
                # carries the same plan version and is written (and counted) again.
                if phone in seen or (job_id in existing and existing[job_id] != plan.version):
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
                zone = None
                if local_time:
                    zone = recipient_zone(contact.timezone if contact else None, phone, queue.schedule.timezone)
                    zones.add(zone)
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
                        run=run,
                        recipient_zone=zone,
                    )
                )
            new_zones = frozenset(zones - plan.zones)
            if not self._jobs.commit_page(
                queue.id, plan, jobs=jobs, cursor=cursor, done=done, now=now, zones=new_zones
            ):
                break  # another planner moved this queue's cursor: leave it the queue
            plan = replace(
                plan,
                cursor=cursor,
                version=plan.version + 1,
                done=done,
                next_seq=plan.next_seq + len(jobs),
                zones=plan.zones | new_zones,
            )
            planned += len(jobs)
            self._metrics.add("JobsPlanned", len(jobs), account_id=queue.account_id)
            opted_out_jobs = sum(1 for job in jobs if job.status == JobStatus.OPTED_OUT)
            if opted_out_jobs:
                self._metrics.add("OptedOut", opted_out_jobs, account_id=queue.account_id)
        return plan, planned

    def _next_page(
        self, queue: Queue, cursor: dict[str, Any] | None
    ) -> tuple[list[tuple[str, dict[str, str], Contact | None]], dict[str, Any] | None, bool]:
        """The next page of recipients (phone, per-recipient variables, contact) and the cursor after it."""
        cursor = cursor or {"phase": "inline", "offset": 0}
        tags = queue.audience.contact_tags
        if cursor["phase"] == "inline":
            offset, count = int(cursor["offset"]), queue.audience.recipient_count
            chunk = self._lifecycle.inline_recipients(queue.id, offset, PAGE_SIZE) if offset < count else []
            contacts = self._contacts.get_many(queue.business_id, [r.phone_number for r in chunk]) if chunk else {}
            page = [(r.phone_number, r.variables, contacts.get(r.phone_number)) for r in chunk]
            if offset + PAGE_SIZE < count:
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
    def _feed_account(
        self, sender: Account, queues: Sequence[Queue], plans: dict[str, PlanState], report: TickReport
    ) -> None:
        now = self._clock()
        window = math.ceil(sender.limits.messages_per_second * self._config.feed_window_s)
        usage = self._rates.usage(sender.id, account_recipient_limit(sender), self._wall_time())
        # What is already in SQS takes its share of both the window and the messaging limit's room. A message to a
        # recipient counted already would fit anyway; the budget treats every one as new (holding some back a tick).
        budget = min(window, usage.remaining) - self._feed.backlog(sender.id)
        # Held back by the limit: each queue shows when room returns (GET .../process, limitResetsAt).
        limit_resets_at = usage.resets_at if usage.remaining == 0 else None
        if limit_resets_at is not None:
            self._metrics.add("MessagingLimitReached", 1, account_id=sender.id)
        fed = 0
        for queue in queues:
            plan = self._sweep(queue, sender, plans[queue.id], report)
            plan = replace(plan, limit_resets_at=limit_resets_at)
            local_time = queue.schedule.recipient_local_time and queue.schedule.active_hours is not None
            if budget > 0 and (local_time or window_open(queue.schedule, now)):
                for zone in self._open_zones(queue, plan, now) if local_time else [None]:
                    handed_back = self._feed_handed_back(queue, sender, budget, zone)
                    budget -= handed_back
                    fed += handed_back
                due = self._feed_deferred(queue, sender, budget, now)
                budget -= due
                fed += due
                fed_now, plan = self._feed_planned(queue, sender, plan, budget, local_time=local_time)
                budget -= fed_now
                fed += fed_now
            if plan != plans[queue.id]:
                self._jobs.record_feed(
                    queue.id,
                    fed_seq=plan.fed_seq,
                    swept_seq=plan.swept_seq,
                    marks=plan.feed_marks,
                    limit_resets_at=plan.limit_resets_at,
                )
                plans[queue.id] = plan
        if fed:
            self._metrics.add("JobsFed", fed, account_id=sender.id)
        report.jobs_fed += fed

    def _open_zones(self, queue: Queue, plan: PlanState, now: datetime) -> list[str]:
        zones = plan.zones | {queue.schedule.timezone}
        return sorted(zone for zone in zones if window_open(queue.schedule, now, zone))

    def _feed_handed_back(self, queue: Queue, sender: Account, budget: int, zone: str | None = None) -> int:
        """Jobs a sender handed back (paused queue, account unable to send, window closed): fed again before anything
        new. In recipients' local time, those of one zone whose window is open."""
        if budget <= 0:
            return 0
        jobs = self._jobs.handed_back(queue.id, min(budget, PAGE_SIZE), zone)
        if not jobs:
            return 0
        fed_at = self._wall_time()
        messages = [job_message(job.business_id, job.queue_id, job.id, job.phone_number, fed_at) for job in jobs]
        refused = set(self._feed.send(sender.id, messages))
        for job in jobs:
            if job.id not in refused:
                self._jobs.clear_hand_back(job)
        return len(jobs) - len(refused)

    def _feed_deferred(self, queue: Queue, sender: Account, budget: int, now: datetime) -> int:
        """Jobs whose delayed re-feed is due (RETRY_LATER): fed again, each leaving the deferred index with one
        write. A recipient whose own window is shut is handed back by the sender, as any other."""
        if budget <= 0:
            return 0
        jobs = self._jobs.deferred(queue.id, min(budget, PAGE_SIZE), due_by=now)
        if not jobs:
            return 0
        fed_at = self._wall_time()
        messages = [job_message(job.business_id, job.queue_id, job.id, job.phone_number, fed_at) for job in jobs]
        refused = set(self._feed.send(sender.id, messages))
        for job in jobs:
            if job.id not in refused:
                self._jobs.clear_deferral(job)
        return len(jobs) - len(refused)

    def _feed_planned(
        self, queue: Queue, sender: Account, plan: PlanState, budget: int, *, local_time: bool = False
    ) -> tuple[int, PlanState]:
        """Feed the planned jobs after the cursor; in recipients' local time, jobs whose recipient's window is shut
        are handed back under their zone instead (a write each, so they count against the budget too)."""
        fed = 0
        spent = 0
        fed_seq = plan.fed_seq
        while budget - spent > 0:
            candidates = self._jobs.unfed(queue.id, fed_seq, min(budget - spent, FEED_PAGE))
            if not candidates:
                break
            deferred: set[str] = set()
            if local_time:
                now = self._clock()
                closed = [c for c in candidates if not window_open(queue.schedule, now, c.recipient_zone)]
                self._defer(queue, closed, now)
                deferred = {c.job_id for c in closed}
            fed_at = self._wall_time()
            messages = [
                job_message(queue.business_id, queue.id, c.job_id, c.phone_number, fed_at)
                for c in candidates
                if c.job_id not in deferred
            ]
            refused = set(self._feed.send(sender.id, messages)) if messages else set()
            # The cursor only passes what SQS took (or what was handed back); from the first refusal on, the next
            # tick feeds again.
            for candidate in candidates:
                if candidate.job_id in refused:
                    break
                fed_seq = candidate.seq
                spent += 1
                fed += candidate.job_id not in deferred
            if refused:
                break
        if fed_seq == plan.fed_seq:
            return 0, plan
        return fed, replace(plan, fed_seq=fed_seq, feed_marks=_with_mark(plan.feed_marks, fed_seq, self._wall_time()))

    def _sweep(self, queue: Queue, sender: Account, plan: PlanState, report: TickReport) -> PlanState:
        """Jobs fed more than `requeue_after_s` ago and still not claimed are fed again (once per range)."""
        cutoff = self._wall_time() - self._config.requeue_after_s
        due = [mark for mark in plan.feed_marks if mark.at <= cutoff]
        if not due:
            return plan
        up_to = max(mark.seq for mark in due)
        if up_to > plan.swept_seq:
            lost = self._jobs.fed_between(queue.id, plan.swept_seq, up_to)
            if lost:
                fed_at = self._wall_time()
                self._feed.send(
                    sender.id,
                    [job_message(job.business_id, job.queue_id, job.id, job.phone_number, fed_at) for job in lost],
                )
                self._metrics.add("JobsRequeued", len(lost), account_id=sender.id)
                report.jobs_requeued += len(lost)
        return replace(
            plan,
            swept_seq=max(plan.swept_seq, up_to),
            feed_marks=tuple(mark for mark in plan.feed_marks if mark.at > cutoff),
        )

    def _defer(self, queue: Queue, candidates: Sequence[FeedCandidate], now: datetime) -> None:
        found = self._jobs.get_jobs((queue.id, candidate.job_id) for candidate in candidates)
        moves: list[JobMove] = [
            job.move(JobStatus.PENDING, now=now, refeed=True)
            for job in found.values()
            if job.status == JobStatus.PENDING and not job.refeed
        ]
        if moves:
            self._jobs.settle(moves)

    # Cancel, expiry and progress -----------------------------------------------------------------------------
    def _skip_pending(self, queue: Queue, account_id: str, remaining_s: Callable[[], float], *, reason: str) -> bool:
        """A cancelled or expired queue's jobs still PENDING become SKIPPED (with `reason`), so its counters add up:
        first those never fed or handed back, then those fed (a sender that gets one of those finds it settled and
        only acknowledges it). True when none is left."""
        plan = self._jobs.read_plan(queue.id)
        fed_seq = plan.fed_seq
        zones: list[str | None] = [None, *sorted(plan.zones)]
        while remaining_s() > SAFETY_MARGIN_S:
            candidates = self._jobs.unfed(queue.id, fed_seq, PAGE_SIZE)
            found = self._jobs.get_jobs((queue.id, c.job_id) for c in candidates)
            # A handed-back job may also be past the cursor (fed out of order): one move per job.
            for zone in zones:
                found.update((job.id, job) for job in self._jobs.handed_back(queue.id, PAGE_SIZE, zone))
            found.update((job.id, job) for job in self._jobs.deferred(queue.id, PAGE_SIZE))
            jobs = list(found.values())
            self._skip(jobs, reason)
            if candidates:
                fed_seq = candidates[-1].seq
                self._jobs.record_feed(queue.id, fed_seq=fed_seq, swept_seq=plan.swept_seq, marks=plan.feed_marks)
            if not candidates and not jobs:
                self._skip(self._jobs.fed_between(queue.id, -1, plan.fed_seq), reason)
                self._registry.unregister(queue.business_id, account_id, queue.id)
                self._lifecycle.record_counters(queue, self._counters.tally(queue.id).counters)
                return True
        return False

    def _skip(self, jobs: Sequence[Job], reason: str) -> None:
        now = self._clock()
        moves = [
            job.move(JobStatus.SKIPPED, now=now, skip_reason=reason, refeed=False)
            for job in jobs
            if job.status == JobStatus.PENDING
        ]
        if moves:
            self._jobs.settle(moves)

    def _sample_rate(self, queue: Queue, plan: PlanState, tally: QueueTally) -> None:
        done = tally.settled
        now = self._wall_time()
        previous_at = plan.rate_sample_at
        if previous_at is None:
            self._jobs.record_rate(queue.id, at=now, done=done, rate=0.0)
        elif now - previous_at >= 5.0:
            rate = max(0.0, (done - plan.rate_sample_done) / (now - previous_at))
            self._jobs.record_rate(queue.id, at=now, done=done, rate=rate)


def _with_mark(marks: tuple[FeedMark, ...], seq: int, at: float) -> tuple[FeedMark, ...]:
    if marks and at - marks[-1].at < MARK_SPACING_S:
        # Merged into the last mark: its jobs count as fed at the earlier time, so the sweep may look at them
        # a little early (at worst a harmless second copy in SQS).
        return (*marks[:-1], FeedMark(seq, marks[-1].at))
    return (*marks, FeedMark(seq, at))
