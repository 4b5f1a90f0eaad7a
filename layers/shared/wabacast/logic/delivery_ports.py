"""Interfaces the planner, sender and processing need, one per aggregate (implemented in
wabacast.adapters.dynamodb (lifecycle, registry, jobs) and wabacast.adapters.sqs; faked in unit tests)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from wabacast.domain.delivery import (
    ActiveAccount,
    FeedCandidate,
    FeedMark,
    OutgoingMessage,
    PlanAccountMessage,
    PlanState,
    QueueTally,
    Reservation,
)
from wabacast.domain.jobs import Job, JobMove
from wabacast.domain.messaging_limit import LimitUsage
from wabacast.domain.models import Account, Page, Queue, QueueCounters, QueueRun, QueueStatus, Recipient
from wabacast.domain.schedules import ScheduleAction
from wabacast.providers.base import Provider


class QueueLifecycle(Protocol):
    """The queue item: its status moves, and what the planner reads of it."""

    def read_queue(self, business_id: str, queue_id: str) -> Queue | None:
        """The queue without its inline recipients (see inline_recipients) and without live counters."""
        ...

    def read_queues(self, refs: Iterable[tuple[str, str]]) -> dict[str, Queue]: ...
    def inline_recipients(self, queue_id: str, offset: int, limit: int) -> list[Recipient]: ...
    def transition(
        self,
        queue: Queue,
        *,
        allowed_from: Sequence[QueueStatus],
        to: QueueStatus,
        now: datetime,
        reason: str | None = None,
        register: bool | None = None,
        account_id: str | None = None,
        unchanged_since: datetime | None = None,
        paused_from: QueueStatus | None = None,
    ) -> bool:
        """Move the queue to `to` if it is in one of `allowed_from` (and, with `unchanged_since`, was not written
        since that `updated_at`), adding it to (register=True) or removing it from (False) the planner registry of
        `account_id` (default: the queue's account) in the same write; `paused_from`: the status a pause leaves,
        kept for resume. False when a condition did not hold."""
        ...

    def record_counters(self, queue: Queue, counters: QueueCounters) -> None: ...

    # Runs of a recurring queue
    def start_run(self, queue: Queue, run: QueueRun, *, allowed_from: Sequence[QueueStatus], now: datetime) -> bool:
        """In one write: the queue moves to PROCESSING as run `run.number` (registered with its account), the run is
        recorded, and the plan starts over for the new run. False unless the queue is in `allowed_from` and still at
        run `run.number - 1` (so a repeated or late occurrence never starts a run twice)."""
        ...

    def end_run(
        self,
        queue: Queue,
        run: QueueRun,
        *,
        to: QueueStatus,
        now: datetime,
        reason: str | None = None,
        unchanged_since: datetime | None = None,
    ) -> bool:
        """In one write: the queue moves from PROCESSING to `to` (unregistered) and the run item becomes `run`."""
        ...

    def record_run(self, run: QueueRun) -> None:
        """An occurrence that started no run (SKIPPED), kept for the runs listing; writing it twice is harmless."""
        ...

    def read_run(self, queue_id: str, number: int) -> QueueRun | None: ...
    def list_runs(self, queue_id: str, limit: int, next_token: str | None) -> Page[QueueRun]: ...


class QueueSchedules(Protocol):
    """The queue's schedules in EventBridge Scheduler (wabacast.domain.schedules), one name per action."""

    def put_once(self, business_id: str, queue_id: str, action: ScheduleAction, at: datetime) -> None: ...
    def put_recurring(
        self,
        business_id: str,
        queue_id: str,
        *,
        aws_expression: str,
        timezone: str,
        start: datetime | None,
        end: datetime | None,
    ) -> None: ...
    def delete(self, queue_id: str, action: ScheduleAction) -> None: ...


class PlannerRegistry(Protocol):
    """Which accounts have queues for the planner, and one planner at a time per account."""

    def active_accounts(self) -> list[ActiveAccount]: ...
    def account(self, business_id: str, account_id: str) -> ActiveAccount | None: ...
    def acquire_lease(self, business_id: str, account_id: str, *, now: float, seconds: float) -> bool: ...
    def release_lease(self, business_id: str, account_id: str) -> None: ...
    def unregister(self, business_id: str, account_id: str, queue_id: str) -> None: ...


class JobStore(Protocol):
    """A queue's jobs and its planning state. Every job move goes through `claim` or `settle`."""

    # Planning
    def read_plan(self, queue_id: str) -> PlanState: ...
    def existing_plan_versions(self, queue_id: str, job_ids: Sequence[str]) -> dict[str, int | None]:
        """job id -> the plan version it was written under, for the jobs that exist."""
        ...

    def commit_page(
        self,
        queue_id: str,
        plan: PlanState,
        *,
        jobs: Sequence[Job],
        cursor: dict[str, Any] | None,
        done: bool,
        now: datetime,
        zones: frozenset[str] = frozenset(),
    ) -> bool:
        """Write a page of new jobs, then advance the cursor, count them (planned totals) and add the recipients'
        time zones met (`zones`) in one conditional write. False when another planner advanced the cursor first."""
        ...

    def record_feed(
        self,
        queue_id: str,
        *,
        fed_seq: int,
        swept_seq: int,
        marks: Sequence[FeedMark],
        limit_resets_at: float | None = None,
    ) -> None:
        """The feed cursors, and when the messaging limit has room again while it holds the queue back (None: not
        held)."""
        ...

    def record_rate(self, queue_id: str, *, at: float, done: int, rate: float) -> None: ...

    # Feeding
    def unfed(self, queue_id: str, after_seq: int, limit: int) -> list[FeedCandidate]:
        """Planned PENDING jobs with seq > after_seq, in seq order (read from the index: no job item read)."""
        ...

    def fed_between(self, queue_id: str, after_seq: int, up_to_seq: int) -> list[Job]:
        """Jobs with after_seq < seq <= up_to_seq that are still PENDING and not handed back."""
        ...

    def handed_back(self, queue_id: str, limit: int, recipient_zone: str | None = None) -> list[Job]:
        """Jobs handed back to the planner; for a queue sending in recipients' local time, those of one zone."""
        ...

    def clear_hand_back(self, job: Job) -> bool: ...
    def deferred(self, queue_id: str, limit: int, due_by: datetime | None = None) -> list[Job]:
        """Jobs waiting for a delayed re-feed (PENDING with `not_before`), earliest first; with `due_by`, only those
        due by then (a keyed range read: the index is sorted by `not_before`)."""
        ...

    def clear_deferral(self, job: Job) -> bool:
        """A deferred job was fed again: it leaves the deferred index (unless it changed meanwhile)."""
        ...

    def retryable_failed(self, queue_id: str, limit: int) -> list[Job]: ...

    # Sending
    def get_jobs(self, refs: Iterable[tuple[str, str]]) -> dict[str, Job]: ...
    def claim(self, move: JobMove) -> bool:
        """One conditional single-item write; False when the job was not as read."""
        ...

    def settle(self, moves: Sequence[JobMove]) -> list[JobMove]:
        """Write the moves with their counter deltas, job change and counter change together; returns the moves
        that applied (the others found their job changed meanwhile)."""
        ...


class CounterStore(Protocol):
    def tally(self, queue_id: str) -> QueueTally: ...
    def account_cost(self, account_id: str) -> int:
        """What the account's messages cost so far, in micro-units of the price table's currency."""
        ...


class FeedPort(Protocol):
    def backlog(self, account_id: str) -> int: ...
    def send(self, account_id: str, messages: Sequence[OutgoingMessage]) -> list[str]: ...
    def delay_redelivery(self, queue_url: str, receipt_handle: str, seconds: int) -> None: ...


class PlanDispatch(Protocol):
    """Hands "plan account X" to a worker of its own (the plan queue in AWS)."""

    def dispatch(self, accounts: Sequence[PlanAccountMessage]) -> list[PlanAccountMessage]:
        """Returns the messages that could not be handed over."""
        ...


class MessagingLimitReader(Protocol):
    def usage(self, account_id: str, recipient_limit: int, now: float) -> LimitUsage:
        """Unique recipients counted in the rolling 24 h before `now`, and when room returns."""
        ...


class RatePort(MessagingLimitReader, Protocol):
    def reserve(
        self,
        account_id: str,
        recipients: Sequence[str],
        *,
        messages_per_second: int,
        recipient_limit: int,
        now: float,
        max_wait_s: float,
    ) -> Reservation:
        """Slots for messages to `recipients` (one per message, in order) within the rate and the messaging limit."""
        ...

    def record_windows(self, account_id: str, recipients: Sequence[str], *, opened_at: float) -> None:
        """These recipients' 24 h windows opened at `opened_at`: within 24 h they do not count again."""
        ...


class ProviderPort(Protocol):
    def for_account(self, account: Account, secret_name: str) -> Provider: ...
