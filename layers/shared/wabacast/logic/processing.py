"""Starting, pausing, resuming, cancelling a queue, re-queueing its retryable failures, its live progress, and what
its schedules do when they fire (start, a recurring queue's next run, expiry)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from wabacast.clock import Clock, utc_now
from wabacast.domain.delivery import PlanState, QueueTally
from wabacast.domain.jobs import JobStatus
from wabacast.domain.messaging_limit import account_recipient_limit
from wabacast.domain.models import Account, Page, Queue, QueueCounters, QueueRun, QueueStatus, RunStatus, counters_since
from wabacast.domain.recurrence import Recurrence
from wabacast.domain.schedules import ScheduleAction, ScheduledEvent
from wabacast.errors import ConflictError, NotFoundError, TemplateNotApprovedError
from wabacast.logic.accounts import later_than
from wabacast.logic.delivery_ports import CounterStore, JobStore, MessagingLimitReader, QueueLifecycle
from wabacast.logic.ports import QueueStore
from wabacast.logic.queues import TemplateCatalogue, synced_category
from wabacast.logic.scheduling import ScheduleKeeper, expired, next_window_at
from wabacast.pricing import PriceTable, default_price_table, format_micros

LOGGER = logging.getLogger(__name__)
# A fire this far from the time it was made for is another occurrence than the one the queue waits for.
_SAME_OCCURRENCE = timedelta(seconds=1)

RETRY_FAILED_LIMIT = 1000
# A queue's template category may be corrected (from its synced template) only while it has not started.
_NOT_STARTABLE = (
    QueueStatus.PROCESSING,
    QueueStatus.PAUSED,
    QueueStatus.COMPLETED,
    QueueStatus.CANCELLED,
    QueueStatus.FAILED,
)


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
    # Outside the sending window: nothing goes out until next_window_at.
    waiting_for_window: bool = False
    next_window_at: datetime | None = None
    # Runs: `counters` are the current run's; `totals` add up every run (the same for a one-time queue).
    run_number: int = 0
    totals: QueueCounters | None = None
    next_run_at: datetime | None = None
    cost: CostView | None = None
    # The account's messaging limit holds the queue's jobs back: room returns at limit_resets_at (UTC).
    limit_resets_at: datetime | None = None


@dataclass(frozen=True)
class MessagingLimitView:
    """An account's messaging limit now: unique recipients in the rolling 24 h (`used`) of `limit`, and when room
    returns while there is none."""

    limit: int
    used: int
    resets_at: datetime | None


@dataclass(frozen=True)
class CostView:
    """What the queue's messages cost so far, in the price table's currency, as decimal strings (six places: the
    micro-units the counters keep, so the figures add up exactly)."""

    currency: str
    total: str
    # The current run's (a recurring queue); equal to `total` for a one-time queue; None for an account.
    per_run: str | None = None


@dataclass(frozen=True)
class RunView:
    number: int
    status: RunStatus
    scheduled_for: datetime | None
    started_at: datetime
    completed_at: datetime | None
    reason: str | None
    counters: QueueCounters


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
        schedules: ScheduleKeeper | None = None,
        prices: PriceTable | None = None,
        templates: TemplateCatalogue | None = None,
        limits: MessagingLimitReader | None = None,
    ) -> None:
        self._queues = queues
        # The accounts' synced templates (decision 29); None: no template is known, every one may start.
        self._templates = templates
        self._limits = limits
        self._prices = prices
        self._lifecycle = lifecycle
        self._jobs = jobs
        self._counters = counters
        self._trigger = trigger
        self._clock = clock
        self._schedules = schedules or ScheduleKeeper(None)

    # Requests ------------------------------------------------------------------------------------------------
    def process(self, business_id: str, queue_id: str) -> Progress:
        """Start now, or wait for the start (startAt) or the first occurrence (recurrence) as SCHEDULED."""
        queue = self._checked_template(self._queue(business_id, queue_id))
        now = self._clock()
        waiting = (QueueStatus.DRAFT, QueueStatus.SCHEDULED)
        if expired(queue.schedule, now):
            raise ConflictError("schedule.endAt has passed; move or clear it first", field="schedule.endAt")
        start_at = queue.schedule.start_at
        if queue.schedule.recurring or (start_at is not None and start_at > now):
            self._require(queue, waiting)
            # The trigger first: a queue is never SCHEDULED without one. If the move fails, it goes again.
            self._schedules.arrange_waiting(queue, now)
            try:
                self._move(queue, waiting, QueueStatus.SCHEDULED, register=None)
            except ConflictError:
                self._clear_unless_waiting(business_id, queue_id)
                raise
        else:
            self._move(queue, waiting, QueueStatus.PROCESSING, register=True)
            if queue.status == QueueStatus.SCHEDULED:
                self._schedules.started(queue)  # its start trigger, made for a later start, has no more use
            self._wake(business_id, queue_id)
        return self.progress(business_id, queue_id)

    def pause(self, business_id: str, queue_id: str) -> Progress:
        queue = self._queue(business_id, queue_id)
        self._move(
            queue,
            (QueueStatus.PROCESSING, QueueStatus.SCHEDULED),
            QueueStatus.PAUSED,
            register=False,
            reason="paused by request",
            paused_from=queue.status,
        )
        self._schedules.clear(queue.id)
        return self.progress(business_id, queue_id)

    def resume(self, business_id: str, queue_id: str) -> Progress:
        """Back to what the pause interrupted: waiting for the start or the next run, or sending."""
        queue = self._queue(business_id, queue_id)
        now = self._clock()
        schedule = queue.schedule
        waits = (
            queue.paused_from == QueueStatus.SCHEDULED
            and not expired(schedule, now)
            and (schedule.recurring or (schedule.start_at is not None and schedule.start_at > now))
        )
        if waits:
            self._require(queue, (QueueStatus.PAUSED,))
            self._schedules.arrange_waiting(queue, now)
            self._move(queue, (QueueStatus.PAUSED,), QueueStatus.SCHEDULED, register=None)
            self._schedules.resumed(queue.id)
            return self.progress(business_id, queue_id)
        self._move(queue, (QueueStatus.PAUSED,), QueueStatus.PROCESSING, register=True)
        # Resumed before a provider limit's reset: its own resume must not fire later (e.g. after a new pause).
        self._schedules.resumed(queue.id)
        if schedule.recurring and not expired(schedule, now):
            self._schedules.arrange_recurrence(queue, now)
        self._wake(business_id, queue_id)
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
        self._schedules.clear(queue.id)
        return self.progress(business_id, queue_id)

    def rescheduled(self, queue: Queue) -> None:
        """A SCHEDULED queue's schedule was edited: move its triggers, or start it now when nothing is left to wait
        for (startAt cleared)."""
        if queue.status != QueueStatus.SCHEDULED:
            return
        now = self._clock()
        start_at = queue.schedule.start_at
        if queue.schedule.recurring or (start_at is not None and start_at > now):
            self._schedules.arrange_waiting(queue, now)
            return
        if self._lifecycle.transition(
            queue, allowed_from=(QueueStatus.SCHEDULED,), to=QueueStatus.PROCESSING, now=now, register=True
        ):
            self._schedules.started(queue)
            self._wake(queue.business_id, queue.id)

    def removed(self, queue_id: str) -> None:
        """A deleted queue leaves no trigger behind."""
        self._schedules.clear(queue_id)

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
        baseline = None
        if queue.schedule.recurring and queue.run_number:
            run = self._lifecycle.read_run(queue.id, queue.run_number)
            baseline = run.baseline if run else None
        return _progress(
            queue,
            self._counters.tally(queue_id),
            self._jobs.read_plan(queue_id),
            self._clock(),
            baseline=baseline,
            currency=(self._prices or default_price_table()).currency,
        )

    def account_cost(self, account_id: str) -> CostView:
        """What an account's messages cost so far (its cost shards summed, decision 28). The caller has checked that
        the account is the tenant's."""
        currency = (self._prices or default_price_table()).currency
        return CostView(currency=currency, total=format_micros(self._counters.account_cost(account_id)))

    def messaging_limit(self, account: Account) -> MessagingLimitView | None:
        """The account's messaging limit and its use (one read of its rate item); None without a reader."""
        if self._limits is None:
            return None
        now = self._clock()
        usage = self._limits.usage(account.id, account_recipient_limit(account), now.timestamp())
        return MessagingLimitView(
            limit=usage.limit,
            used=usage.used,
            resets_at=datetime.fromtimestamp(usage.resets_at, UTC) if usage.resets_at is not None else None,
        )

    def runs(self, business_id: str, queue_id: str, *, limit: int, next_token: str | None) -> Page[RunView]:
        """A recurring queue's runs (oldest first) with their counters; a one-time queue has its one run."""
        queue = self._queue(business_id, queue_id)
        if not queue.schedule.recurring:
            if queue.started_at is None:
                return Page(items=[])
            only = RunView(
                number=1,
                status=_one_time_run_status(queue.status),
                scheduled_for=queue.schedule.start_at,
                started_at=queue.started_at,
                completed_at=queue.completed_at,
                reason=queue.status_reason,
                counters=self._counters.tally(queue.id).counters,
            )
            return Page(items=[only])
        page = self._lifecycle.list_runs(queue.id, limit, next_token)
        live: QueueCounters | None = None
        views = []
        for run in page.items:
            counters = run.counters
            if counters is None:
                live = live or self._counters.tally(queue.id).counters
                counters = counters_since(run.baseline, live)
            status = run.status
            if status == RunStatus.PROCESSING and queue.status in (QueueStatus.CANCELLED, QueueStatus.COMPLETED):
                # Cancelled (or expired) mid-run: the run item is left as it started; the queue says how it ended.
                status = RunStatus.CANCELLED if queue.status == QueueStatus.CANCELLED else RunStatus.COMPLETED
            views.append(
                RunView(
                    number=run.number,
                    status=status,
                    scheduled_for=run.scheduled_for,
                    started_at=run.started_at,
                    completed_at=run.completed_at,
                    reason=run.reason,
                    counters=counters,
                )
            )
        return Page(items=views, next_token=page.next_token)

    # Schedules firing ----------------------------------------------------------------------------------------
    def on_schedule(self, event: ScheduledEvent) -> str:
        """What a schedule's fire does; idempotent: a repeated, late or stale fire changes nothing. Returns what
        happened, for the log."""
        queue = self._queues.get(event.business_id, event.queue_id)
        if queue is None:
            return "queue gone"
        if event.action == ScheduleAction.START:
            return self._scheduled_start(queue, event.scheduled_time)
        if event.action == ScheduleAction.OCCURRENCE:
            return self._occurrence(queue, event.scheduled_time)
        if event.action == ScheduleAction.RESUME:
            return self._limit_reset(queue, event.scheduled_time)
        return self._expire(queue)

    def _scheduled_start(self, queue: Queue, scheduled_time: datetime) -> str:
        start_at = queue.schedule.start_at
        if queue.status != QueueStatus.SCHEDULED or queue.schedule.recurring:
            return f"ignored: the queue is {queue.status.value}"
        if start_at is None or abs(start_at - scheduled_time) > _SAME_OCCURRENCE:
            return "ignored: the start was moved"
        if not self._lifecycle.transition(
            queue, allowed_from=(QueueStatus.SCHEDULED,), to=QueueStatus.PROCESSING, now=self._clock(), register=True
        ):
            return "ignored: the queue changed meanwhile"
        self._wake(queue.business_id, queue.id)
        return "started"

    def _occurrence(self, queue: Queue, scheduled_time: datetime) -> str:
        now = self._clock()
        last = queue.run_scheduled_for
        if not queue.schedule.recurring or queue.status not in (QueueStatus.SCHEDULED, QueueStatus.PROCESSING):
            return f"ignored: the queue is {queue.status.value}"
        if last is not None and scheduled_time <= last + _SAME_OCCURRENCE:
            return "ignored: this occurrence (or a later one) already ran"
        if expired(queue.schedule, now):
            return "ignored: the queue expired"
        if queue.status == QueueStatus.PROCESSING:
            self._lifecycle.record_run(
                QueueRun(
                    queue_id=queue.id,
                    number=queue.run_number,
                    status=RunStatus.SKIPPED,
                    scheduled_for=scheduled_time,
                    started_at=now,
                    completed_at=now,
                    reason=f"run {queue.run_number} was still in progress",
                )
            )
            return "skipped: the previous run is still in progress"
        run = QueueRun(
            queue_id=queue.id,
            number=queue.run_number + 1,
            status=RunStatus.PROCESSING,
            scheduled_for=scheduled_time,
            started_at=now,
            baseline=self._counters.tally(queue.id).counters,
        )
        if not self._lifecycle.start_run(queue, run, allowed_from=(QueueStatus.SCHEDULED,), now=now):
            return "ignored: the queue changed meanwhile"
        self._wake(queue.business_id, queue.id)
        return f"run {run.number} started"

    def _limit_reset(self, queue: Queue, scheduled_time: datetime) -> str:
        """A provider's limit that paused the queue has reset (wabacast.logic.fates): back to sending. Only the pause
        the schedule was made for: a queue paused by request (it remembers what it was paused from), or paused again
        after the schedule was made, stays as it is."""
        if queue.status != QueueStatus.PAUSED or queue.paused_from is not None:
            return f"ignored: the queue is {queue.status.value}" + (" (paused by request)" if queue.paused_from else "")
        if queue.updated_at > scheduled_time + _SAME_OCCURRENCE:
            return "ignored: the queue was paused again after this resume was arranged"
        if not self._lifecycle.transition(
            queue,
            allowed_from=(QueueStatus.PAUSED,),
            to=QueueStatus.PROCESSING,
            now=self._clock(),
            register=True,
            unchanged_since=queue.updated_at,
        ):
            return "ignored: the queue changed meanwhile"
        self._wake(queue.business_id, queue.id)
        return "resumed: the provider's limit has reset"

    def _expire(self, queue: Queue) -> str:
        if queue.status == QueueStatus.PROCESSING:
            self._wake(queue.business_id, queue.id)  # the planner skips what is left and completes it
            return "planner woken to expire the run"
        if queue.status != QueueStatus.SCHEDULED or not expired(queue.schedule, self._clock()):
            return f"ignored: the queue is {queue.status.value}"
        self._lifecycle.transition(
            queue,
            allowed_from=(QueueStatus.SCHEDULED,),
            to=QueueStatus.COMPLETED,
            now=self._clock(),
            reason="expired: schedule.endAt passed",
            register=None,
        )
        self._schedules.clear(queue.id)
        return "expired"

    # Helpers -------------------------------------------------------------------------------------------------
    def _checked_template(self, queue: Queue) -> Queue:
        """A template the account's sync knows must be APPROVED to start (409 with its status); its synced category
        replaces the queue's stated one (opt-out scopes and pricing follow it). Unknown templates start as before."""
        if self._templates is None or queue.status not in (QueueStatus.DRAFT, QueueStatus.SCHEDULED):
            return queue
        template = queue.template
        known = self._templates.get(queue.business_id, queue.account_id, template.name, template.language)
        if known is None:
            return queue
        if not known.usable:
            raise TemplateNotApprovedError(
                f"template: {template.name} ({template.language}) is {known.status.value} for account "
                f"{queue.account_id}; only APPROVED templates can be sent",
                template_status=known.status.value,
            )
        with_category = synced_category(self._templates, template, queue.business_id, queue.account_id)
        if with_category == template:
            return queue
        after = queue.model_copy(
            update={"template": with_category, "updated_at": later_than(queue.updated_at, self._clock())}
        )
        self._queues.replace(queue, after, forbidden=_NOT_STARTABLE)
        return after

    def _wake(self, business_id: str, queue_id: str) -> None:
        if self._trigger is not None:
            self._trigger.start(business_id, queue_id)

    def _clear_unless_waiting(self, business_id: str, queue_id: str) -> None:
        current = self._queues.get(business_id, queue_id)
        if current is None or current.status not in (QueueStatus.SCHEDULED, QueueStatus.PROCESSING):
            self._schedules.clear(queue_id)

    def _queue(self, business_id: str, queue_id: str) -> Queue:
        queue = self._queues.get(business_id, queue_id)
        if queue is None:
            raise NotFoundError("queue not found")
        return queue

    @staticmethod
    def _require(queue: Queue, allowed: tuple[QueueStatus, ...]) -> None:
        if queue.status not in allowed:
            expected = " or ".join(status.value for status in allowed)
            raise ConflictError(f"the queue is {queue.status.value}; this needs it to be {expected}", field="status")

    def _move(
        self,
        queue: Queue,
        allowed: tuple[QueueStatus, ...],
        to: QueueStatus,
        *,
        register: bool | None,
        reason: str | None = None,
        paused_from: QueueStatus | None = None,
    ) -> None:
        if queue.status not in allowed or not self._lifecycle.transition(
            queue,
            allowed_from=allowed,
            to=to,
            now=self._clock(),
            reason=reason,
            register=register,
            paused_from=paused_from,
        ):
            current = self._queues.get(queue.business_id, queue.id)
            status = current.status.value if current else queue.status.value
            expected = " or ".join(status.value for status in allowed)
            raise ConflictError(f"the queue is {status}; this needs it to be {expected}", field="status")


def _one_time_run_status(status: QueueStatus) -> RunStatus:
    if status == QueueStatus.COMPLETED:
        return RunStatus.COMPLETED
    if status == QueueStatus.CANCELLED:
        return RunStatus.CANCELLED
    return RunStatus.PROCESSING


def _progress(
    queue: Queue,
    tally: QueueTally,
    plan: PlanState,
    now: datetime,
    *,
    baseline: QueueCounters | None = None,
    currency: str | None = None,
) -> Progress:
    totals = tally.counters
    counters = counters_since(baseline, totals) if baseline is not None else totals
    if counters.total:
        percent = round(100.0 * (counters.total - counters.pending) / counters.total, 2)
    else:
        percent = 100.0 if queue.status == QueueStatus.COMPLETED else 0.0
    rate = plan.rate_per_second
    settled = counters.sent + counters.failed + counters.opted_out + counters.skipped
    since = queue.run_started_at or queue.started_at
    if not rate and queue.status == QueueStatus.PROCESSING and since and settled:
        # Before the planner has two samples a few seconds apart, the average since the start is the best guess.
        elapsed = (now - since).total_seconds()
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
    next_window = None
    if queue.status in (QueueStatus.SCHEDULED, QueueStatus.PROCESSING, QueueStatus.PAUSED):
        next_window = next_window_at(queue.schedule, now, plan.zones)
    limit_resets_at = None
    if queue.status == QueueStatus.PROCESSING and plan.limit_resets_at is not None:
        # Recorded by the planner's last tick; once that moment passes, room is back whatever the tick wrote.
        resets_at = datetime.fromtimestamp(plan.limit_resets_at, UTC)
        limit_resets_at = resets_at if resets_at > now else None
    next_run = None
    recurrence = queue.schedule.recurrence
    if recurrence is not None and queue.status in (QueueStatus.SCHEDULED, QueueStatus.PROCESSING):
        after = max(now, queue.schedule.start_at or now)
        candidate = Recurrence.parse(recurrence).next_after(after, ZoneInfo(queue.schedule.timezone))
        end_at = queue.schedule.end_at
        next_run = candidate if end_at is None or candidate < end_at else None
    return Progress(
        queue_id=queue.id,
        status=queue.status,
        status_reason=queue.status_reason,
        counters=counters,
        percent_done=percent,
        rate_per_second=round(rate, 2),
        eta_seconds=None if next_window is not None or limit_resets_at is not None else eta,
        last_errors=errors,
        started_at=queue.started_at,
        completed_at=queue.completed_at,
        waiting_for_window=queue.status == QueueStatus.PROCESSING and next_window is not None,
        next_window_at=next_window,
        run_number=queue.run_number or (1 if queue.started_at else 0),
        totals=totals,
        next_run_at=next_run,
        cost=CostView(
            currency=currency, total=format_micros(totals.cost_micros), per_run=format_micros(counters.cost_micros)
        )
        if currency is not None
        else None,
        limit_resets_at=limit_resets_at,
    )
