"""In-memory implementations of the delivery ports (wabacast.logic.delivery_ports), faithful to the adapters.

Each fake keeps what its adapter stores and checks the same conditions as its conditional writes:

* FakeQueueLifecycle: the queue items (shared with tests.unit.fakes.FakeQueueStore when given its `items`), read
  without inline recipients as QueueLifecycleStore reads them; `transition` changes the planner registry in the same
  step, as the adapter's transaction does;
* FakePlannerRegistry: which queues each account's planner looks at, and the per-account lease;
* FakeJobStore: jobs, plan state and counters (JobStore and CounterStore), with the open-jobs index written at plan
  time and never removed, moves written only while the job is as read, and settle's per-queue chunks of 25 (two
  moves of one job in a chunk are refused as a whole, as DynamoDB refuses such a transaction);
* FakeFeed, FakePlanDispatch, FakeRates, FakeProviders and FakeMetrics record what they are given.

All of them take `fail_next` / `before_next` scripting (tests.unit.fakes._Scripted), and can write every call into a
shared `journal` (a list of "store.method" names) so a test can check the order of calls across fakes. They are
thread-safe: the sender calls them from its thread pool.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic_core import to_jsonable_python

from tests.unit.fakes import _Scripted
from wabacast.adapters.dynamodb.jobs import SETTLE_CHUNK
from wabacast.domain.delivery import (
    ActiveAccount,
    FeedCandidate,
    FeedMark,
    OutgoingMessage,
    PlanAccountMessage,
    PlanState,
    QueueTally,
    Reservation,
    tally_from_parts,
)
from wabacast.domain.jobs import Counter, ErrorClass, Job, JobMove, JobStatus, planned_deltas
from wabacast.domain.messaging_limit import SEND_MARGIN_S, WINDOW_S, LimitUsage, RollingCount, usage_of
from wabacast.domain.models import Account, Page, Queue, QueueCounters, QueueRun, QueueStatus, Recipient, RunStatus
from wabacast.domain.schedules import ScheduleAction, schedule_name
from wabacast.phone import FROM_STORAGE
from wabacast.providers.base import OutboundMessage, Provider, ProviderError, SendReceipt
from wabacast.providers.errors import classify, lookup

_STORAGE = {FROM_STORAGE: True}


class _Recorded(_Scripted):
    """_Scripted with a lock, and every call written to a journal (shared between fakes when a test passes one)."""

    def __init__(self, name: str, journal: list[str] | None = None) -> None:
        super().__init__()
        self._name = name
        self.journal: list[str] = journal if journal is not None else []
        self._lock = threading.RLock()

    def _enter(self, method: str) -> None:
        with self._lock:
            self.journal.append(f"{self._name}.{method}")
            super()._enter(method)


def _stamp(moment: datetime) -> Any:
    """A timestamp as the adapters store and compare it (pydantic's JSON form)."""
    return to_jsonable_python(moment)


# Planner registry -------------------------------------------------------------------------------------------------
class FakePlannerRegistry(_Recorded):
    """PLANNER / ACCOUNT#<biz>#<acc>: the queues each account's planner looks at, and its lease."""

    def __init__(self, journal: list[str] | None = None) -> None:
        super().__init__("registry", journal)
        # (business id, account id) -> queue ids; an entry may stay with no queue until its lease is released
        self.entries: dict[tuple[str, str], set[str]] = {}
        # (business id, account id) -> lease_until (epoch seconds)
        self.leases: dict[tuple[str, str], float] = {}

    # What QueueLifecycle.transition writes in its transaction (registry_add / registry_remove).
    def add(self, business_id: str, account_id: str, queue_id: str) -> None:
        with self._lock:
            self.entries.setdefault((business_id, account_id), set()).add(queue_id)

    def remove(self, business_id: str, account_id: str, queue_id: str) -> None:
        with self._lock:
            entry = self.entries.get((business_id, account_id))
            if entry is not None:
                entry.discard(queue_id)

    # PlannerRegistry --------------------------------------------------------------------------------------------
    def active_accounts(self) -> list[ActiveAccount]:
        self._enter("active_accounts")
        with self._lock:
            return [
                ActiveAccount(business_id, account_id, frozenset(queue_ids))
                for (business_id, account_id), queue_ids in sorted(
                    self.entries.items(), key=lambda entry: f"{entry[0][0]}#{entry[0][1]}"
                )
            ]

    def account(self, business_id: str, account_id: str) -> ActiveAccount | None:
        self._enter("account")
        with self._lock:
            queue_ids = self.entries.get((business_id, account_id))
            return None if queue_ids is None else ActiveAccount(business_id, account_id, frozenset(queue_ids))

    def acquire_lease(self, business_id: str, account_id: str, *, now: float, seconds: float) -> bool:
        self._enter("acquire_lease")
        with self._lock:
            key = (business_id, account_id)
            if key not in self.entries:
                return False
            held_until = self.leases.get(key)
            if held_until is not None and not held_until < now:
                return False
            self.leases[key] = now + seconds
            return True

    def release_lease(self, business_id: str, account_id: str) -> None:
        """Release, and drop the entry when no queue needs the planner any more."""
        self._enter("release_lease")
        with self._lock:
            key = (business_id, account_id)
            self.leases.pop(key, None)
            if key in self.entries and not self.entries[key]:
                del self.entries[key]

    def unregister(self, business_id: str, account_id: str, queue_id: str) -> None:
        self._enter("unregister")
        self.remove(business_id, account_id, queue_id)

    # For tests ----------------------------------------------------------------------------------------------------
    def queue_ids(self, business_id: str, account_id: str) -> set[str]:
        with self._lock:
            return set(self.entries.get((business_id, account_id), set()))


# Queue lifecycle --------------------------------------------------------------------------------------------------
class FakeQueueLifecycle(_Recorded):
    """The queue items as QueueLifecycleStore sees them. Pass `items` of a FakeQueueStore to share its queues (the
    same table in DynamoDB): there each item is a queue's JSON dump, inline recipients included."""

    def __init__(
        self,
        registry: FakePlannerRegistry,
        items: dict[tuple[str, str], dict[str, Any]] | None = None,
        journal: list[str] | None = None,
    ) -> None:
        super().__init__("lifecycle", journal)
        self._registry = registry
        self.items: dict[tuple[str, str], dict[str, Any]] = items if items is not None else {}
        # Run items per queue, by sort key (RUN#<number>[#SKIP#<time>]).
        self.runs: dict[str, dict[str, QueueRun]] = {}
        # The job store whose plan item a new run resets (the same table in DynamoDB).
        self.jobs: FakeJobStore | None = None

    # For tests ----------------------------------------------------------------------------------------------------
    def add(self, queue: Queue, *, register: bool = False) -> Queue:
        """Store a queue as the API would have (with its inline recipients); `register`: in its account's registry."""
        with self._lock:
            self.items[(queue.business_id, queue.id)] = queue.model_dump(mode="json")
            if register:
                self._registry.add(queue.business_id, queue.account_id, queue.id)
        return queue

    def get(self, business_id: str, queue_id: str) -> Queue | None:
        """The queue with its inline recipients, as stored."""
        with self._lock:
            item = self.items.get((business_id, queue_id))
            return Queue.model_validate(item, context=_STORAGE) if item else None

    def status(self, business_id: str, queue_id: str) -> QueueStatus:
        with self._lock:
            return QueueStatus(self.items[(business_id, queue_id)]["status"])

    # QueueLifecycle -----------------------------------------------------------------------------------------------
    def read_queue(self, business_id: str, queue_id: str) -> Queue | None:
        self._enter("read_queue")
        with self._lock:
            item = self.items.get((business_id, queue_id))
            return self._without_recipients(item) if item else None

    def read_queues(self, refs: Iterable[tuple[str, str]]) -> dict[str, Queue]:
        self._enter("read_queues")
        with self._lock:
            found = (self.items.get(ref) for ref in set(refs))
            queues = (self._without_recipients(item) for item in found if item)
            return {queue.id: queue for queue in queues}

    def inline_recipients(self, queue_id: str, offset: int, limit: int) -> list[Recipient]:
        self._enter("inline_recipients")
        with self._lock:
            for (_, stored_id), item in self.items.items():
                if stored_id == queue_id:
                    rows = item["audience"]["recipients"][offset : offset + limit]
                    return [Recipient.model_validate(row, context=_STORAGE) for row in rows]
            return []

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
        self._enter("transition")
        with self._lock:
            return self._transition(
                queue,
                allowed_from=allowed_from,
                to=to,
                now=now,
                reason=reason,
                register=register,
                account_id=account_id,
                unchanged_since=unchanged_since,
                paused_from=paused_from,
            )

    def start_run(self, queue: Queue, run: QueueRun, *, allowed_from: Sequence[QueueStatus], now: datetime) -> bool:
        self._enter("start_run")
        with self._lock:
            item = self.items.get((queue.business_id, queue.id))
            if item is None or int(item.get("run_number") or 0) != run.number - 1:
                return False
            if not self._transition(
                queue, allowed_from=allowed_from, to=QueueStatus.PROCESSING, now=now, register=True
            ):
                return False
            item["run_number"] = run.number
            item["run_scheduled_for"] = _stamp(run.scheduled_for) if run.scheduled_for else None
            item["run_started_at"] = _stamp(run.started_at)
            self.runs.setdefault(queue.id, {})[_run_key(run)] = run
            if self.jobs is not None:
                self.jobs.start_plan_run(queue.id, run.number)
            return True

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
        self._enter("end_run")
        with self._lock:
            if not self._transition(
                queue,
                allowed_from=(QueueStatus.PROCESSING,),
                to=to,
                now=now,
                reason=reason,
                register=False,
                unchanged_since=unchanged_since,
            ):
                return False
            self.runs.setdefault(queue.id, {})[_run_key(run)] = run
            return True

    def record_run(self, run: QueueRun) -> None:
        self._enter("record_run")
        with self._lock:
            self.runs.setdefault(run.queue_id, {})[_run_key(run)] = run

    def read_run(self, queue_id: str, number: int) -> QueueRun | None:
        self._enter("read_run")
        with self._lock:
            return self.runs.get(queue_id, {}).get(f"RUN#{number:06d}")

    def list_runs(self, queue_id: str, limit: int, next_token: str | None) -> Page[QueueRun]:
        self._enter("list_runs")
        with self._lock:
            keys = sorted(self.runs.get(queue_id, {}))
            start = keys.index(next_token) + 1 if next_token in keys else 0
            chosen = keys[start : start + limit]
            more = start + limit < len(keys)
            return Page(items=[self.runs[queue_id][key] for key in chosen], next_token=chosen[-1] if more else None)

    def _transition(
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
        item = self.items.get((queue.business_id, queue.id))
        if item is None or QueueStatus(item["status"]) not in allowed_from:
            return False
        if unchanged_since is not None and item["updated_at"] != _stamp(unchanged_since):
            return False
        item["paused_from"] = paused_from.value if paused_from is not None else None
        item["status"] = to.value
        item["updated_at"] = _stamp(now)
        item["status_reason"] = reason
        if to == QueueStatus.PROCESSING:
            item["started_at"] = item.get("started_at") or _stamp(now)
            item["completed_at"] = None  # retry-failed reopens a COMPLETED queue
        if to in (QueueStatus.COMPLETED, QueueStatus.CANCELLED, QueueStatus.FAILED):
            item["completed_at"] = _stamp(now)
        registry_account = account_id or queue.account_id
        if register is True:
            self._registry.add(queue.business_id, registry_account, queue.id)
        elif register is False:
            self._registry.remove(queue.business_id, registry_account, queue.id)
        return True

    def record_counters(self, queue: Queue, counters: QueueCounters) -> None:
        self._enter("record_counters")
        with self._lock:
            item = self.items.get((queue.business_id, queue.id))
            if item is not None:  # deleted meanwhile: nothing to show
                item["counters"] = counters.model_dump(mode="json")

    @staticmethod
    def _without_recipients(item: dict[str, Any]) -> Queue:
        count = len(item["audience"]["recipients"])
        queue = Queue.model_validate({**item, "audience": {**item["audience"], "recipients": []}}, context=_STORAGE)
        queue.audience.stored_recipient_count = count
        return queue


# Jobs, plan state and counters ------------------------------------------------------------------------------------
def _run_key(run: QueueRun) -> str:
    key = f"RUN#{run.number:06d}"
    if run.status == RunStatus.SKIPPED and run.scheduled_for is not None:
        key += f"#SKIP#{_stamp(run.scheduled_for)}"
    return key


@dataclass
class _Plan:
    """The plan item (Q#<q> / #PLAN): cursor, version, feed cursor and marks, rate samples, planned counters."""

    version: int | None = None  # None: no page committed yet (attribute absent)
    cursor: dict[str, Any] | None = None
    done: bool = False
    next_seq: int = 0
    fed_seq: int = -1
    swept_seq: int = -1
    marks: tuple[FeedMark, ...] = ()
    rate: float = 0.0
    rate_at: float | None = None
    rate_done: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    zones: frozenset[str] = frozenset()
    run: int = 1
    limit_resets_at: float | None = None


@dataclass
class _Counts:
    """Every counter shard of a queue, summed: settled moves' counter deltas, error counts and last messages."""

    counters: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)


def _same_item_error() -> ClientError:
    return ClientError(
        {
            "Error": {
                "Code": "ValidationException",
                "Message": "Transaction request cannot include multiple operations on one item",
            }
        },
        "TransactWriteItems",
    )


class FakeJobStore(_Recorded):
    """DynamoJobStore in memory: JobStore and CounterStore."""

    def __init__(self, journal: list[str] | None = None) -> None:
        super().__init__("jobs", journal)
        # queue id -> job id -> job (as stored)
        self.jobs: dict[str, dict[str, Job]] = {}
        # queue id -> job id -> the plan version the job was written under
        self.plan_versions: dict[str, dict[str, int | None]] = {}
        # queue id -> job id -> its open-index entry (GSI1: written when planned PENDING, never removed)
        self.open_index: dict[str, dict[str, FeedCandidate]] = {}
        self._open_sorted: dict[str, tuple[list[int], list[FeedCandidate]]] = {}
        self.plans: dict[str, _Plan] = {}
        self.counts: dict[str, _Counts] = {}
        # account id -> what its jobs cost (micro-units): the account's cost shards, summed
        self.account_costs: dict[str, int] = {}

    # For tests ----------------------------------------------------------------------------------------------------
    def job(self, queue_id: str, job_id: str) -> Job:
        with self._lock:
            return self.jobs[queue_id][job_id]

    def jobs_of(self, queue_id: str) -> list[Job]:
        """A queue's jobs in seq order."""
        with self._lock:
            return sorted(self.jobs.get(queue_id, {}).values(), key=lambda job: job.seq)

    def job_of_phone(self, queue_id: str, phone_number: str) -> Job:
        with self._lock:
            return next(job for job in self.jobs.get(queue_id, {}).values() if job.phone_number == phone_number)

    # Counters -----------------------------------------------------------------------------------------------------
    def tally(self, queue_id: str) -> QueueTally:
        self._enter("tally")
        with self._lock:
            plan = self.plans.get(queue_id, _Plan())
            counts = self.counts.get(queue_id, _Counts())
            return tally_from_parts(
                [(dict(plan.counters), {}, {}), (dict(counts.counters), dict(counts.errors), dict(counts.messages))]
            )

    def account_cost(self, account_id: str) -> int:
        self._enter("account_cost")
        with self._lock:
            return self.account_costs.get(account_id, 0)

    # Planning -----------------------------------------------------------------------------------------------------
    def read_plan(self, queue_id: str) -> PlanState:
        self._enter("read_plan")
        with self._lock:
            plan = self.plans.get(queue_id)
            if plan is None:
                return PlanState()
            return PlanState(
                cursor=dict(plan.cursor) if plan.cursor is not None else None,
                version=plan.version or 0,
                done=plan.done,
                next_seq=plan.next_seq,
                fed_seq=plan.fed_seq,
                swept_seq=plan.swept_seq,
                feed_marks=plan.marks,
                rate_per_second=plan.rate,
                rate_sample_at=plan.rate_at,
                rate_sample_done=plan.rate_done,
                zones=plan.zones,
                run=plan.run,
                limit_resets_at=plan.limit_resets_at,
            )

    def existing_plan_versions(self, queue_id: str, job_ids: Sequence[str]) -> dict[str, int | None]:
        self._enter("existing_plan_versions")
        with self._lock:
            versions = self.plan_versions.get(queue_id, {})
            return {job_id: versions[job_id] for job_id in job_ids if job_id in versions}

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
        """The jobs first (whole items, replacing any earlier write), then the conditional plan update."""
        self._enter("commit_page")
        with self._lock:
            for job in jobs:
                self._put(job, plan.version)
            stored = self.plans.setdefault(queue_id, _Plan())
            if not (stored.version == plan.version or (plan.version == 0 and stored.version is None)):
                return False
            stored.version = plan.version + 1
            stored.done = done
            stored.next_seq = plan.next_seq + len(jobs)
            stored.cursor = dict(cursor) if cursor is not None else None
            stored.zones = stored.zones | zones
            for job in jobs:
                for counter, change in planned_deltas(job.status).items():
                    stored.counters[counter.value] = stored.counters.get(counter.value, 0) + change
            return True

    def record_feed(
        self,
        queue_id: str,
        *,
        fed_seq: int,
        swept_seq: int,
        marks: Sequence[FeedMark],
        limit_resets_at: float | None = None,
    ) -> None:
        self._enter("record_feed")
        with self._lock:
            plan = self.plans.setdefault(queue_id, _Plan())
            plan.limit_resets_at = limit_resets_at
            plan.fed_seq = fed_seq
            plan.swept_seq = swept_seq
            # The adapter keeps marks as JSON with times rounded to the millisecond.
            plan.marks = tuple(FeedMark(mark.seq, round(mark.at, 3)) for mark in marks)

    def record_rate(self, queue_id: str, *, at: float, done: int, rate: float) -> None:
        self._enter("record_rate")
        with self._lock:
            plan = self.plans.setdefault(queue_id, _Plan())
            plan.rate_at = at
            plan.rate_done = done
            plan.rate = round(rate, 3)

    # Feeding ------------------------------------------------------------------------------------------------------
    def unfed(self, queue_id: str, after_seq: int, limit: int) -> list[FeedCandidate]:
        self._enter("unfed")
        with self._lock:
            seqs, ordered = self._ordered_open(queue_id)
            start = bisect.bisect_right(seqs, after_seq)
            return ordered[start : start + limit]

    def fed_between(self, queue_id: str, after_seq: int, up_to_seq: int) -> list[Job]:
        self._enter("fed_between")
        with self._lock:
            if up_to_seq <= after_seq:
                return []
            stored = self.jobs.get(queue_id, {})
            seqs, ordered = self._ordered_open(queue_id)
            chosen = ordered[bisect.bisect_right(seqs, after_seq) : bisect.bisect_right(seqs, up_to_seq)]
            found = (stored.get(candidate.job_id) for candidate in chosen)
            return [
                job
                for job in found
                if job and job.status == JobStatus.PENDING and not job.refeed and job.not_before is None
            ]

    def handed_back(self, queue_id: str, limit: int, recipient_zone: str | None = None) -> list[Job]:
        self._enter("handed_back")
        with self._lock:
            return self._labelled(
                queue_id,
                lambda job: job.status == JobStatus.PENDING and job.refeed and job.recipient_zone == recipient_zone,
                limit,
            )

    def start_plan_run(self, queue_id: str, run: int) -> None:
        """A new run plans the audience again (QueueLifecycle.start_run's plan reset)."""
        with self._lock:
            plan = self.plans.setdefault(queue_id, _Plan())
            plan.run = run
            plan.done = False
            plan.cursor = None
            plan.zones = frozenset()
            plan.version = (plan.version or 0) + 1

    def retryable_failed(self, queue_id: str, limit: int) -> list[Job]:
        self._enter("retryable_failed")
        with self._lock:
            return self._labelled(
                queue_id,
                lambda job: (
                    job.status == JobStatus.FAILED
                    and job.last_error is not None
                    and job.last_error.error_class == ErrorClass.RETRYABLE
                ),
                limit,
            )

    def clear_hand_back(self, job: Job) -> bool:
        """refeed -> False (updated_at unchanged), while the job is PENDING, as read, and handed back."""
        self._enter("clear_hand_back")
        with self._lock:
            stored = self.jobs.get(job.queue_id, {}).get(job.id)
            if (
                stored is None
                or stored.status != JobStatus.PENDING
                or _stamp(stored.updated_at) != _stamp(job.updated_at)
                or not stored.refeed
            ):
                return False
            self.jobs[job.queue_id][job.id] = stored.model_copy(update={"refeed": False})
            return True

    def deferred(self, queue_id: str, limit: int, due_by: datetime | None = None) -> list[Job]:
        self._enter("deferred")
        with self._lock:
            waiting = [
                job
                for job in self.jobs.get(queue_id, {}).values()
                if job.status == JobStatus.PENDING
                and job.not_before is not None
                and (due_by is None or job.not_before <= due_by)
            ]
            return sorted(waiting, key=lambda job: (job.not_before or job.created_at, job.seq))[:limit]

    def clear_deferral(self, job: Job) -> bool:
        """not_before -> None (updated_at unchanged), while the job is PENDING, as read, and deferred."""
        self._enter("clear_deferral")
        with self._lock:
            stored = self.jobs.get(job.queue_id, {}).get(job.id)
            if (
                stored is None
                or stored.status != JobStatus.PENDING
                or _stamp(stored.updated_at) != _stamp(job.updated_at)
                or stored.not_before is None
            ):
                return False
            self.jobs[job.queue_id][job.id] = stored.model_copy(update={"not_before": None})
            return True

    # Sending ------------------------------------------------------------------------------------------------------
    def get_jobs(self, refs: Iterable[tuple[str, str]]) -> dict[str, Job]:
        self._enter("get_jobs")
        with self._lock:
            found = (self.jobs.get(queue_id, {}).get(job_id) for queue_id, job_id in refs)
            return {job.id: job for job in found if job is not None}

    def claim(self, move: JobMove) -> bool:
        self._enter("claim")
        with self._lock:
            return self._write_if_as_read(move)

    def settle(self, moves: Sequence[JobMove]) -> list[JobMove]:
        """Moves without counter change or error are single conditional writes; the others go per queue, in chunks
        of SETTLE_CHUNK, each written with its counter change (a move whose job changed is dropped from its chunk)."""
        self._enter("settle")
        with self._lock:
            applied: list[JobMove] = []
            by_queue: dict[str, list[JobMove]] = {}
            for move in moves:
                if move.counter_deltas or move.error is not None:
                    by_queue.setdefault(move.job.queue_id, []).append(move)
                elif self._write_if_as_read(move):
                    applied.append(move)
            for queue_id, group in by_queue.items():
                for start in range(0, len(group), SETTLE_CHUNK):
                    chunk = group[start : start + SETTLE_CHUNK]
                    if len({move.job.id for move in chunk}) != len(chunk):
                        raise _same_item_error()
                    written = [move for move in chunk if self._as_read(move)]
                    for move in written:
                        self.jobs[queue_id][move.job.id] = move.job
                    self._count(queue_id, written)
                    applied.extend(written)
            return applied

    # Helpers ------------------------------------------------------------------------------------------------------
    def _put(self, job: Job, plan_version: int | None) -> None:
        self.jobs.setdefault(job.queue_id, {})[job.id] = job
        self.plan_versions.setdefault(job.queue_id, {})[job.id] = plan_version
        index = self.open_index.setdefault(job.queue_id, {})
        if job.status == JobStatus.PENDING:
            index[job.id] = FeedCandidate(
                job_id=job.id, phone_number=job.phone_number, seq=job.seq, recipient_zone=job.recipient_zone
            )
        else:
            index.pop(job.id, None)  # a whole new item without the index keys
        self._open_sorted.pop(job.queue_id, None)

    def _ordered_open(self, queue_id: str) -> tuple[list[int], list[FeedCandidate]]:
        """The open index of a queue in seq order, with the seqs alone (for bisecting)."""
        cached = self._open_sorted.get(queue_id)
        if cached is None:
            ordered = sorted(self.open_index.get(queue_id, {}).values(), key=lambda candidate: candidate.seq)
            cached = ([candidate.seq for candidate in ordered], ordered)
            self._open_sorted[queue_id] = cached
        return cached

    def _labelled(self, queue_id: str, label: Callable[[Job], bool], limit: int) -> list[Job]:
        matching = sorted((job for job in self.jobs.get(queue_id, {}).values() if label(job)), key=lambda j: j.seq)
        return matching[:limit]

    def _as_read(self, move: JobMove) -> bool:
        stored = self.jobs.get(move.job.queue_id, {}).get(move.job.id)
        return (
            stored is not None
            and stored.status == move.before.status
            and _stamp(stored.updated_at) == _stamp(move.before.updated_at)
        )

    def _write_if_as_read(self, move: JobMove) -> bool:
        if not self._as_read(move):
            return False
        self.jobs[move.job.queue_id][move.job.id] = move.job
        return True

    def _count(self, queue_id: str, moves: Sequence[JobMove]) -> None:
        counts = self.counts.setdefault(queue_id, _Counts())
        for move in moves:
            for counter, change in move.counter_deltas.items():
                counts.counters[counter.value] = counts.counters.get(counter.value, 0) + change
            cost = move.counter_deltas.get(Counter.COST, 0)
            if cost and move.job.account_id is not None:
                self.account_costs[move.job.account_id] = self.account_costs.get(move.job.account_id, 0) + cost
            if move.error is not None:
                counts.errors[move.error.code] = counts.errors.get(move.error.code, 0) + 1
                counts.messages[move.error.code] = move.error.message


# SQS: account queues and the plan queue ---------------------------------------------------------------------------
class FakeFeed(_Recorded):
    """The accounts' SQS FIFO queues as the planner feeds them.

    `sent[account]` holds every message SQS took, in order; `waiting[account]` those no sender has taken yet
    (`take`). The backlog is what waits plus `extra_backlog[account]` (messages a test says are in flight).
    A message whose deduplication id was seen before is accepted and dropped, as SQS does within its 5-minute
    window (here for the whole test: the planner's ids carry the feeding time, so a test that feeds a job again
    moves the wall clock on, as time passes between ticks). `refuse` holds job ids SQS refuses (`send` returns
    them as failed).
    """

    def __init__(self, journal: list[str] | None = None) -> None:
        super().__init__("feed", journal)
        self.sent: dict[str, list[OutgoingMessage]] = {}
        self.waiting: dict[str, deque[OutgoingMessage]] = {}
        self.extra_backlog: dict[str, int] = {}
        self.refuse: set[str] = set()
        self.deduplicated: list[OutgoingMessage] = []
        self.redeliveries: list[tuple[str, str, int]] = []
        self._seen_deduplication_ids: set[str] = set()

    def backlog(self, account_id: str) -> int:
        self._enter("backlog")
        with self._lock:
            return len(self.waiting.get(account_id, ())) + self.extra_backlog.get(account_id, 0)

    def send(self, account_id: str, messages: Sequence[OutgoingMessage]) -> list[str]:
        self._enter("send")
        with self._lock:
            refused: list[str] = []
            for message in messages:
                if message.job_id in self.refuse:
                    refused.append(message.job_id)
                elif message.deduplication_id in self._seen_deduplication_ids:
                    self.deduplicated.append(message)
                else:
                    self._seen_deduplication_ids.add(message.deduplication_id)
                    self.sent.setdefault(account_id, []).append(message)
                    self.waiting.setdefault(account_id, deque()).append(message)
            return refused

    def delay_redelivery(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        self._enter("delay_redelivery")
        with self._lock:
            self.redeliveries.append((queue_url, receipt_handle, seconds))

    # For tests ----------------------------------------------------------------------------------------------------
    def set_backlog(self, account_id: str, count: int) -> None:
        """Messages in flight beyond those waiting (a sender holds them)."""
        with self._lock:
            self.extra_backlog[account_id] = count

    def take(self, account_id: str, limit: int | None = None) -> list[OutgoingMessage]:
        """What senders receive next: up to `limit` waiting messages, which leave the backlog."""
        with self._lock:
            waiting = self.waiting.setdefault(account_id, deque())
            count = len(waiting) if limit is None else min(limit, len(waiting))
            return [waiting.popleft() for _ in range(count)]

    def job_ids(self, account_id: str) -> list[str]:
        """The job ids of every message SQS took for the account, in order."""
        with self._lock:
            return [message.job_id for message in self.sent.get(account_id, [])]


class FakePlanDispatch(_Recorded):
    """The plan queue: records each "plan account X" message; accounts in `refuse` are not handed over."""

    def __init__(self, journal: list[str] | None = None) -> None:
        super().__init__("dispatch", journal)
        self.dispatched: list[PlanAccountMessage] = []
        self.refuse: set[str] = set()

    def dispatch(self, accounts: Sequence[PlanAccountMessage]) -> list[PlanAccountMessage]:
        self._enter("dispatch")
        with self._lock:
            refused = [message for message in accounts if message.account_id in self.refuse]
            self.dispatched += [message for message in accounts if message.account_id not in self.refuse]
            return refused


# Rate limits ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReserveCall:
    account_id: str
    recipients: tuple[str, ...]
    messages_per_second: int
    recipient_limit: int
    now: float
    max_wait_s: float


class FakeRates(_Recorded):
    """RateLimiter in memory: a GCRA per account (slots 1/rate apart from its next free slot) and the messaging
    limit's rolling count per account, with each recipient's window, as the adapter keeps them.

    Tests may move an account's next free slot (`tat`), count recipients as already messaged (`use`), or force
    every reservation to be refused: `deny(retry_after_s=...)` (rate) or `deny(limit_reached=True)`.
    """

    def __init__(self, journal: list[str] | None = None) -> None:
        super().__init__("rates", journal)
        self.tat: dict[str, float] = {}
        self.counts: dict[str, RollingCount] = {}
        # (account, recipient) -> when its 24 h window opened
        self.windows: dict[tuple[str, str], float] = {}
        self.calls_made: list[ReserveCall] = []
        self._denial: Reservation | None = None

    def deny(self, *, retry_after_s: float = 0.0, limit_reached: bool = False) -> None:
        self._denial = Reservation(retry_after_s=retry_after_s, limit_reached=limit_reached)

    def allow(self) -> None:
        self._denial = None

    def use(self, account_id: str, count: int, at: float) -> None:
        """`count` recipients (not named) messaged at `at`."""
        with self._lock:
            self.counts[account_id] = self.counts.get(account_id, RollingCount()).add(at, count, at)

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
        self._enter("reserve")
        with self._lock:
            self.calls_made.append(
                ReserveCall(account_id, tuple(recipients), messages_per_second, recipient_limit, now, max_wait_s)
            )
            if self._denial is not None:
                return self._denial
            if not recipients:
                return Reservation()
            count = self.counts.get(account_id, RollingCount()).live(now)
            room = max(0, recipient_limit - sum(count.counts))
            granted: list[int] = []
            opened: list[str] = []
            for index, phone in enumerate(recipients):
                window = self.windows.get((account_id, phone))
                if (window is not None and window + WINDOW_S > now) or phone in opened:
                    granted.append(index)
                elif len(opened) < room:
                    opened.append(phone)
                    granted.append(index)
            if not granted:
                return Reservation(limit_reached=True)
            start = max(self.tat.get(account_id, now), now)
            if start - now > max_wait_s:
                return Reservation(retry_after_s=start - now)
            interval = 1.0 / messages_per_second
            self.tat[account_id] = start + len(granted) * interval
            last_slot = start + (len(granted) - 1) * interval
            self.counts[account_id] = count.add(last_slot + SEND_MARGIN_S, len(opened), now)
            return Reservation(
                granted=tuple(granted),
                slots=[start + index * interval for index in range(len(granted))],
                limit_reached=len(granted) < len(recipients),
                opened=frozenset(opened),
            )

    def record_windows(self, account_id: str, recipients: Sequence[str], *, opened_at: float) -> None:
        self._enter("record_windows")
        with self._lock:
            for phone in recipients:
                self.windows[(account_id, phone)] = opened_at

    def usage(self, account_id: str, recipient_limit: int, now: float) -> LimitUsage:
        self._enter("usage")
        with self._lock:
            return usage_of(self.counts.get(account_id, RollingCount()), recipient_limit, now)


# Providers --------------------------------------------------------------------------------------------------------
def provider_error(
    code: str, *, provider: str = "meta", http_status: int | None = 400, recipient: str | None = None
) -> ProviderError:
    """A ProviderError as an adapter raises it: classified by wabacast.providers.errors (for `recipient`)."""
    rule = lookup(provider, code)
    message = rule.meaning if rule is not None else f"provider error {code}"
    error_class = classify(provider, code, http_status, recipient=recipient)
    return ProviderError(code, message, error_class, http_status=http_status)


class FakeProvider:
    """One account's provider: records every message, answers a receipt unless scripted to raise.

    `fail_next(error, times)` raises for the next sends (any exception: a ProviderError or a bug of the
    provider's own code); `fail_for(phone, error)` raises for every send to that number.
    """

    def __init__(self, account_id: str, clock: Callable[[], datetime] | None = None) -> None:
        self.account_id = account_id
        self._clock = clock
        self.sent: list[OutboundMessage] = []
        # When each accepted message was accepted (by the test's clock, when one was given).
        self.accepted_at: list[datetime] = []
        self.attempted: list[OutboundMessage] = []
        self._script: list[BaseException] = []
        self._by_phone: dict[str, BaseException] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def fail_next(self, error: BaseException, times: int = 1) -> None:
        with self._lock:
            self._script.extend([error] * times)

    def fail_for(self, phone_number: str, error: BaseException) -> None:
        with self._lock:
            self._by_phone[phone_number] = error

    def heal(self) -> None:
        """No more scripted failures."""
        with self._lock:
            self._script.clear()
            self._by_phone.clear()

    def send(self, message: OutboundMessage) -> SendReceipt:
        with self._lock:
            self.attempted.append(message)
            error = self._by_phone.get(message.to) or (self._script.pop(0) if self._script else None)
            if error is not None:
                raise error
            self.sent.append(message)
            if self._clock is not None:
                self.accepted_at.append(self._clock())
            return SendReceipt(provider_message_id=f"wamid.{self.account_id}.{next(self._ids)}")


class FakeProviders(_Recorded):
    """ProviderPort: one FakeProvider per account, created on first use; `lookups` records (account, secret)."""

    def __init__(self, journal: list[str] | None = None, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__("providers", journal)
        self._clock = clock
        self.providers: dict[str, FakeProvider] = {}
        self.lookups: list[tuple[str, str]] = []

    def provider(self, account_id: str) -> FakeProvider:
        with self._lock:
            return self.providers.setdefault(account_id, FakeProvider(account_id, self._clock))

    def for_account(self, account: Account, secret_name: str) -> Provider:
        self._enter("for_account")
        with self._lock:
            self.lookups.append((account.id, secret_name))
        return self.provider(account.id)

    @property
    def accepted_at(self) -> list[datetime]:
        """When each message any provider accepted was accepted."""
        with self._lock:
            return [moment for provider in self.providers.values() for moment in provider.accepted_at]

    @property
    def sent(self) -> list[OutboundMessage]:
        """Every message any provider accepted."""
        with self._lock:
            return [message for provider in self.providers.values() for message in provider.sent]


# Metrics ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    account_id: str | None
    unit: str
    dimensions: dict[str, str]


class FakeMetrics:
    """MetricsSink that keeps every data point."""

    def __init__(self) -> None:
        self.points: list[MetricPoint] = []
        self._lock = threading.Lock()

    def add(self, name: str, value: float, *, account_id: str | None, unit: str = "Count", **dimensions: str) -> None:
        with self._lock:
            self.points.append(MetricPoint(name, value, account_id, unit, dict(dimensions)))

    def total(self, name: str, **match: Any) -> float:
        """The sum of a metric's values; `match` filters on account_id or dimensions."""
        with self._lock:
            points = list(self.points)
        return sum(
            point.value
            for point in points
            if point.name == name
            and all(
                (point.account_id if key == "account_id" else point.dimensions.get(key)) == value
                for key, value in match.items()
            )
        )

    def names(self) -> set[str]:
        with self._lock:
            return {point.name for point in self.points}


# EventBridge Scheduler ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FakeSchedule:
    business_id: str
    queue_id: str
    action: ScheduleAction
    at: datetime | None = None
    aws_expression: str | None = None
    timezone: str | None = None
    start: datetime | None = None
    end: datetime | None = None


class FakeSchedules(_Recorded):
    """QueueSchedules: the schedules that exist, by name (create and update alike replace the whole definition)."""

    def __init__(self, journal: list[str] | None = None) -> None:
        super().__init__("schedules", journal)
        self.schedules: dict[str, FakeSchedule] = {}

    def put_once(self, business_id: str, queue_id: str, action: ScheduleAction, at: datetime) -> None:
        self._enter("put_once")
        with self._lock:
            self.schedules[schedule_name(queue_id, action)] = FakeSchedule(business_id, queue_id, action, at=at)

    def put_recurring(
        self,
        business_id: str,
        queue_id: str,
        *,
        aws_expression: str,
        timezone: str,
        start: datetime | None,
        end: datetime | None,
    ) -> None:
        self._enter("put_recurring")
        with self._lock:
            self.schedules[schedule_name(queue_id, ScheduleAction.OCCURRENCE)] = FakeSchedule(
                business_id,
                queue_id,
                ScheduleAction.OCCURRENCE,
                aws_expression=aws_expression,
                timezone=timezone,
                start=start,
                end=end,
            )

    def delete(self, queue_id: str, action: ScheduleAction) -> None:
        self._enter("delete")
        with self._lock:
            self.schedules.pop(schedule_name(queue_id, action), None)

    def names(self) -> set[str]:
        with self._lock:
            return set(self.schedules)
