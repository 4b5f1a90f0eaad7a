"""The delivery fakes keep the DynamoDB adapters' contract: every test runs on both (the adapters on moto).

If the fakes were looser than the adapters, the planner and sender tests would pass on behaviour production does
not have; if they were stricter, they would fail on behaviour it does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.unit.delivery.builders import NOW, make_job, make_queue, numbers
from tests.unit.delivery_fakes import FakeJobStore, FakePlannerRegistry, FakeQueueLifecycle
from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.adapters.dynamodb.jobs import DynamoJobStore
from wabacast.adapters.dynamodb.lifecycle import QueueLifecycleStore
from wabacast.adapters.dynamodb.queues import queue_to_item, recipient_chunks
from wabacast.adapters.dynamodb.registry import PlannerRegistryStore
from wabacast.domain.delivery import FeedMark, PlanState
from wabacast.domain.jobs import Counter, ErrorClass, Job, JobError, JobMove, JobStatus
from wabacast.domain.models import Queue, QueueCounters, QueueRun, QueueStatus, RunStatus
from wabacast.logic.delivery_ports import CounterStore, JobStore, PlannerRegistry, QueueLifecycle
from wabacast.storage.table import create_table_request

BUSINESS = "biz_1"
ACCOUNT = "acc_1"
LATER = NOW + timedelta(seconds=5)
MUCH_LATER = NOW + timedelta(seconds=10)


class JobsAndCounters(JobStore, CounterStore, Protocol):
    """DynamoJobStore implements both ports, and so does FakeJobStore."""


@dataclass
class Stores:
    """One implementation of the delivery stores, and how a test puts a queue in place (the API's write)."""

    name: str
    lifecycle: QueueLifecycle
    registry: PlannerRegistry
    jobs: JobsAndCounters
    put_queue: Callable[[Queue], object]


def _fake_stores() -> Iterator[Stores]:
    registry = FakePlannerRegistry()
    lifecycle = FakeQueueLifecycle(registry)
    jobs = FakeJobStore()
    lifecycle.jobs = jobs  # one table: a new run resets the plan item
    yield Stores("fake", lifecycle, registry, jobs, lifecycle.add)


def _dynamodb_stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stores]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = _session().client("dynamodb", region_name="us-east-1")
        client.create_table(**create_table_request("contract"))
        table = TableGateway(client, "contract")

        def put_queue(queue: Queue) -> None:
            table.batch_write([queue_to_item(queue), *recipient_chunks(queue)])

        yield Stores(
            "dynamodb",
            QueueLifecycleStore(table),
            PlannerRegistryStore(table),
            DynamoJobStore(table, sleep=lambda _: None),
            put_queue,
        )


_SESSIONS: list[boto3.Session] = []


def _session() -> boto3.Session:
    # One session for every test: botocore parses the DynamoDB service model once.
    if not _SESSIONS:
        _SESSIONS.append(boto3.Session())
    return _SESSIONS[0]


@pytest.fixture(params=["fake", "dynamodb"])
def stores(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stores]:
    if request.param == "fake":
        yield from _fake_stores()
    else:
        yield from _dynamodb_stores(monkeypatch)


# Helpers -----------------------------------------------------------------------------------------------------------
QUEUE = make_queue(BUSINESS, ACCOUNT, recipients=numbers(3))


def _plan(stores: Stores, jobs: list[Job], plan: PlanState | None = None, *, done: bool = True) -> bool:
    return bool(stores.jobs.commit_page(QUEUE.id, plan or PlanState(), jobs=jobs, cursor=None, done=done, now=NOW))


def _planned(stores: Stores, count: int) -> list[Job]:
    jobs = [make_job(QUEUE, seq) for seq in range(count)]
    assert _plan(stores, jobs)
    return jobs


def _stored(stores: Stores, job: Job) -> Job:
    return stores.jobs.get_jobs([(job.queue_id, job.id)])[job.id]


def _claimed(stores: Stores, job: Job) -> Job:
    move = job.claim(account_id=ACCOUNT, now=LATER)
    assert stores.jobs.claim(move)
    return move.job


def _error(code: str, error_class: ErrorClass) -> JobError:
    return JobError(code=code, message=f"provider said {code}", error_class=error_class)


def _adds_up(counters: QueueCounters) -> bool:
    parts = counters.pending + counters.sent + counters.failed + counters.opted_out + counters.skipped
    return counters.total == parts


# Jobs: claim and settle --------------------------------------------------------------------------------------------
def test_a_claim_from_one_read_succeeds_once(stores: Stores) -> None:
    # GIVEN a planned job, read once
    (job,) = _planned(stores, 1)
    read = _stored(stores, job)
    # WHEN two senders claim it from that same read
    first = stores.jobs.claim(read.claim(account_id=ACCOUNT, now=LATER))
    second = stores.jobs.claim(read.claim(account_id=ACCOUNT, now=MUCH_LATER))
    # THEN only the first claim is written
    assert (first, second) == (True, False)
    stored = _stored(stores, job)
    assert stored.status == JobStatus.SENDING
    assert stored.attempts == 1
    assert stored.updated_at == LATER


def test_a_claim_of_a_job_that_does_not_exist_fails(stores: Stores) -> None:
    # GIVEN a job that was never planned
    ghost = make_job(QUEUE, 0)
    # WHEN it is claimed
    claimed = stores.jobs.claim(ghost.claim(account_id=ACCOUNT, now=LATER))
    # THEN nothing is written
    assert claimed is False
    assert stores.jobs.get_jobs([(QUEUE.id, ghost.id)]) == {}


def test_a_stale_settle_is_dropped_and_not_counted(stores: Stores) -> None:
    # GIVEN a planned job read before a sender claimed it
    (job,) = _planned(stores, 1)
    stale = _stored(stores, job)
    _claimed(stores, job)
    # WHEN a move based on the stale read is settled
    applied = stores.jobs.settle([stale.move(JobStatus.SKIPPED, now=MUCH_LATER, skip_reason="queue cancelled")])
    # THEN it is dropped: the job stays claimed and no counter moved
    assert applied == []
    assert _stored(stores, job).status == JobStatus.SENDING
    counters = stores.jobs.tally(QUEUE.id).counters
    assert (counters.pending, counters.skipped) == (1, 0)


def test_settle_writes_counter_deltas_and_error_counts(stores: Stores) -> None:
    # GIVEN three claimed jobs
    claimed = [_claimed(stores, job) for job in _planned(stores, 3)]
    # WHEN one is sent, one fails for good and one waits for a retry
    moves = [
        claimed[0].move(JobStatus.SENT, now=MUCH_LATER, provider_message_id="wamid.1", sent_at=MUCH_LATER),
        claimed[1].move(JobStatus.FAILED, now=MUCH_LATER, last_error=_error("131026", ErrorClass.PERMANENT)),
        claimed[2].move(JobStatus.RETRY, now=MUCH_LATER, last_error=_error("131000", ErrorClass.RETRYABLE)),
    ]
    applied = stores.jobs.settle(moves)
    # THEN every move applies, with its counter change and its error counted
    assert {move.job.id for move in applied} == {move.job.id for move in moves}
    tally = stores.jobs.tally(QUEUE.id)
    assert (tally.counters.total, tally.counters.pending, tally.counters.sent, tally.counters.failed) == (3, 1, 1, 1)
    assert tally.error_counts == {"131026": 1, "131000": 1}
    assert tally.error_messages["131026"] == "provider said 131026"
    assert _stored(stores, claimed[0]).provider_message_id == "wamid.1"


def test_a_recorded_cost_adds_to_the_queue_and_account_totals_once(stores: Stores) -> None:
    # GIVEN two sent jobs of one account
    claimed = [_claimed(stores, job) for job in _planned(stores, 2)]
    sent = [move.job for move in stores.jobs.settle([job.move(JobStatus.SENT, now=LATER) for job in claimed])]
    # WHEN their costs are recorded (receipts: SENT -> SENT with the cost and its COST delta), one of them twice
    moves = [
        JobMove(
            job=job.model_copy(update={"cost_micros": cost, "updated_at": MUCH_LATER}),
            before=job,
            counter_deltas={Counter.COST: cost},
        )
        for job, cost in ((sent[0], 25_000), (sent[1], 61_500))
    ]
    assert len(stores.jobs.settle(moves)) == 2
    assert stores.jobs.settle(moves[:1]) == []  # read before the first write: refused, counted nothing
    # THEN the queue's and the account's totals are the exact sums
    assert stores.jobs.tally(QUEUE.id).counters.cost_micros == 86_500
    assert stores.jobs.account_cost(ACCOUNT) == 86_500
    assert stores.jobs.account_cost("acc_other") == 0
    assert _stored(stores, sent[0]).cost_micros == 25_000


def test_a_settle_applies_the_moves_whose_job_is_as_read_and_drops_the_others(stores: Stores) -> None:
    # GIVEN two claimed jobs, one of which another sender settled meanwhile
    first, second = (_claimed(stores, job) for job in _planned(stores, 2))
    assert stores.jobs.settle([second.move(JobStatus.SENT, now=MUCH_LATER)])
    # WHEN a batch settles both from the claims it read
    applied = stores.jobs.settle(
        [
            first.move(JobStatus.FAILED, now=MUCH_LATER, last_error=_error("100", ErrorClass.PERMANENT)),
            second.move(JobStatus.FAILED, now=MUCH_LATER, last_error=_error("100", ErrorClass.PERMANENT)),
        ]
    )
    # THEN only the first is written and counted
    assert [move.job.id for move in applied] == [first.id]
    tally = stores.jobs.tally(QUEUE.id)
    assert (tally.counters.sent, tally.counters.failed, tally.error_counts) == (1, 1, {"100": 1})


def test_two_moves_of_one_job_in_one_settle_are_refused_as_a_whole(stores: Stores) -> None:
    # GIVEN two planned jobs
    first, second = _planned(stores, 2)
    # WHEN one settle holds two moves of the first (DynamoDB takes one operation per item in a transaction)
    moves = [
        first.move(JobStatus.SKIPPED, now=LATER, skip_reason="queue cancelled"),
        second.move(JobStatus.SKIPPED, now=LATER, skip_reason="queue cancelled"),
        first.move(JobStatus.SKIPPED, now=LATER, skip_reason="queue cancelled"),
    ]
    # THEN the whole write is refused and nothing changes
    with pytest.raises(ClientError):
        stores.jobs.settle(moves)
    assert {_stored(stores, job).status for job in (first, second)} == {JobStatus.PENDING}
    assert stores.jobs.tally(QUEUE.id).counters.skipped == 0


def test_a_hand_back_is_written_without_counter_change(stores: Stores) -> None:
    # GIVEN a claimed job and a retryable one
    sending = _claimed(stores, _planned(stores, 1)[0])
    retry = sending.move(JobStatus.RETRY, now=MUCH_LATER)
    assert stores.jobs.settle([retry]) == [retry]
    # WHEN it is handed back to the planner
    hand_back = retry.job.move(JobStatus.PENDING, now=MUCH_LATER + timedelta(seconds=1), refeed=True)
    applied = stores.jobs.settle([hand_back])
    # THEN it is PENDING and handed back; it still counts as pending only
    assert applied == [hand_back]
    stored = _stored(stores, sending)
    assert (stored.status, stored.refeed) == (JobStatus.PENDING, True)
    counters = stores.jobs.tally(QUEUE.id).counters
    assert (counters.total, counters.pending) == (1, 1)


def test_the_tally_adds_up_after_planning_and_moves(stores: Stores) -> None:
    # GIVEN a page with pending, opted-out and skipped jobs
    jobs = [
        make_job(QUEUE, 0),
        make_job(QUEUE, 1),
        make_job(QUEUE, 2, status=JobStatus.OPTED_OUT, skip_reason="opted out"),
        make_job(QUEUE, 3, status=JobStatus.SKIPPED, skip_reason="variable 1: missing"),
    ]
    assert _plan(stores, jobs)
    planned = stores.jobs.tally(QUEUE.id).counters
    # WHEN one pending job is sent and the other skipped
    sent = _claimed(stores, jobs[0]).move(JobStatus.SENT, now=MUCH_LATER)
    skipped = jobs[1].move(JobStatus.SKIPPED, now=MUCH_LATER, skip_reason="queue cancelled")
    stores.jobs.settle([sent, skipped])
    moved = stores.jobs.tally(QUEUE.id).counters
    # THEN both tallies add up, with the planned statuses counted at once
    assert (planned.total, planned.pending, planned.opted_out, planned.skipped) == (4, 2, 1, 1)
    assert (moved.total, moved.pending, moved.sent, moved.opted_out, moved.skipped) == (4, 0, 1, 1, 2)
    assert _adds_up(planned)
    assert _adds_up(moved)


# Planning ----------------------------------------------------------------------------------------------------------
def test_a_commit_with_a_stale_plan_version_returns_false_and_counts_nothing(stores: Stores) -> None:
    # GIVEN a first page committed from the initial plan state
    first_page = [make_job(QUEUE, 0), make_job(QUEUE, 1)]
    assert _plan(stores, first_page, PlanState(), done=False)
    # WHEN another planner commits its page from the same (now stale) plan state
    other_page = [make_job(QUEUE, 0, phone_number=numbers(1, start=50)[0])]
    committed = _plan(stores, other_page, PlanState(), done=True)
    # THEN its commit fails and neither the plan nor the counters move
    assert committed is False
    plan = stores.jobs.read_plan(QUEUE.id)
    assert (plan.version, plan.next_seq, plan.done) == (1, 2, False)
    counters = stores.jobs.tally(QUEUE.id).counters
    assert (counters.total, counters.pending) == (2, 2)


def test_commit_advances_the_plan_and_a_later_commit_needs_the_new_version(stores: Stores) -> None:
    # GIVEN a first page committed with a cursor
    first = make_job(QUEUE, 0)
    assert stores.jobs.commit_page(
        QUEUE.id, PlanState(), jobs=[first], cursor={"phase": "inline", "offset": 100}, done=False, now=NOW
    )
    plan = stores.jobs.read_plan(QUEUE.id)
    # WHEN the next page is committed from the plan as read
    second = make_job(QUEUE, 1)
    committed = stores.jobs.commit_page(QUEUE.id, plan, jobs=[second], cursor=None, done=True, now=NOW)
    # THEN the cursor, version, seq and done flag advance
    assert plan.cursor == {"phase": "inline", "offset": 100}
    assert (plan.version, plan.next_seq, plan.done) == (1, 1, False)
    assert committed is True
    after = stores.jobs.read_plan(QUEUE.id)
    assert (after.cursor, after.version, after.next_seq, after.done) == (None, 2, 2, True)


def test_existing_plan_versions_name_the_version_each_job_was_written_under(stores: Stores) -> None:
    # GIVEN one job written under version 0 and one under version 1
    first, second = make_job(QUEUE, 0), make_job(QUEUE, 1)
    assert _plan(stores, [first], PlanState(), done=False)
    assert _plan(stores, [second], stores.jobs.read_plan(QUEUE.id))
    # WHEN their versions are asked, with a job that does not exist
    versions = stores.jobs.existing_plan_versions(QUEUE.id, [first.id, second.id, "job_missing"])
    # THEN the existing ones answer with their versions
    assert versions == {first.id: 0, second.id: 1}


def test_feed_and_rate_records_are_read_back_with_the_plan(stores: Stores) -> None:
    # GIVEN a planned queue
    _planned(stores, 3)
    # WHEN the feed cursor, marks and a rate sample are recorded
    stores.jobs.record_feed(QUEUE.id, fed_seq=2, swept_seq=0, marks=[FeedMark(0, 1000.0), FeedMark(2, 1030.1234)])
    stores.jobs.record_rate(QUEUE.id, at=1031.5, done=7, rate=1.23456)
    # THEN the plan holds them (marks to the millisecond, the rate to three decimals) beside its cursor
    plan = stores.jobs.read_plan(QUEUE.id)
    assert (plan.fed_seq, plan.swept_seq) == (2, 0)
    assert plan.feed_marks == (FeedMark(0, 1000.0), FeedMark(2, 1030.123))
    assert (plan.rate_sample_at, plan.rate_sample_done, plan.rate_per_second) == (1031.5, 7, 1.235)
    assert (plan.version, plan.done, plan.next_seq) == (1, True, 3)


def test_a_plan_never_written_is_the_initial_state(stores: Stores) -> None:
    # GIVEN / WHEN a queue the planner never touched is read
    plan = stores.jobs.read_plan("q_untouched")
    # THEN it is the initial state
    assert plan == PlanState()


# Feeding -----------------------------------------------------------------------------------------------------------
def test_unfed_lists_planned_pending_jobs_after_the_cursor_in_seq_order(stores: Stores) -> None:
    # GIVEN five pending jobs and one planned opted out, written out of order; one pending job was skipped since
    jobs = [make_job(QUEUE, seq) for seq in (4, 0, 3, 1, 2)]
    opted_out = make_job(QUEUE, 5, status=JobStatus.OPTED_OUT, skip_reason="opted out")
    assert _plan(stores, [*jobs, opted_out])
    stores.jobs.settle([jobs[2].move(JobStatus.SKIPPED, now=LATER, skip_reason="queue cancelled")])
    # WHEN feeding asks for the jobs after seq 1
    everything = stores.jobs.unfed(QUEUE.id, 1, 10)
    first_two = stores.jobs.unfed(QUEUE.id, 1, 2)
    from_start = stores.jobs.unfed(QUEUE.id, -1, 1)
    # THEN it gets the jobs planned PENDING after it, in order, with their numbers (a later move does not matter)
    assert [(candidate.seq, candidate.phone_number) for candidate in everything] == [
        (2, numbers(1, start=3)[0]),
        (3, numbers(1, start=4)[0]),
        (4, numbers(1, start=5)[0]),
    ]
    assert [candidate.seq for candidate in first_two] == [2, 3]
    assert [candidate.seq for candidate in from_start] == [0]
    assert everything[0].job_id == jobs[4].id


def test_fed_between_lists_only_pending_jobs_not_handed_back(stores: Stores) -> None:
    # GIVEN five jobs: one claimed, one handed back
    jobs = _planned(stores, 5)
    _claimed(stores, jobs[1])
    stores.jobs.settle([jobs[2].move(JobStatus.PENDING, now=LATER, refeed=True)])
    # WHEN the sweep asks for the jobs after seq -1 up to seq 3, and for an empty range
    lost = stores.jobs.fed_between(QUEUE.id, -1, 3)
    empty = stores.jobs.fed_between(QUEUE.id, 3, 3)
    # THEN it gets the untouched pending ones in range
    assert [job.seq for job in lost] == [0, 3]
    assert empty == []


def test_hand_backs_and_retryable_failures_are_listed_by_label(stores: Stores) -> None:
    # GIVEN a handed-back job, a job failed with a retryable cause and one failed for good
    jobs = _planned(stores, 4)
    stores.jobs.settle([jobs[0].move(JobStatus.PENDING, now=LATER, refeed=True)])
    retryable = _claimed(stores, jobs[1]).move(
        JobStatus.FAILED, now=MUCH_LATER, last_error=_error("131000", ErrorClass.RETRYABLE)
    )
    permanent = _claimed(stores, jobs[2]).move(
        JobStatus.FAILED, now=MUCH_LATER, last_error=_error("131026", ErrorClass.PERMANENT)
    )
    stores.jobs.settle([retryable, permanent])
    # WHEN the labelled lists are read
    handed_back = stores.jobs.handed_back(QUEUE.id, 10)
    failed = stores.jobs.retryable_failed(QUEUE.id, 10)
    # THEN each holds its job as stored now
    assert [(job.id, job.status, job.refeed) for job in handed_back] == [(jobs[0].id, JobStatus.PENDING, True)]
    assert [(job.id, job.attempts) for job in failed] == [(jobs[1].id, 1)]


def test_clearing_a_hand_back_needs_the_job_as_read(stores: Stores) -> None:
    # GIVEN a handed-back job
    job = _planned(stores, 1)[0]
    stores.jobs.settle([job.move(JobStatus.PENDING, now=LATER, refeed=True)])
    (handed_back,) = stores.jobs.handed_back(QUEUE.id, 10)
    # WHEN it is fed again, twice from the same read
    first = stores.jobs.clear_hand_back(handed_back)
    second = stores.jobs.clear_hand_back(handed_back)
    # THEN the first clears it (without touching updated_at) and the second finds nothing to clear
    assert (first, second) == (True, False)
    stored = _stored(stores, job)
    assert (stored.refeed, stored.updated_at) == (False, LATER)
    assert stores.jobs.handed_back(QUEUE.id, 10) == []


def test_a_move_read_before_clearing_a_hand_back_still_applies(stores: Stores) -> None:
    # GIVEN a handed-back job, read, then fed again (refeed cleared, updated_at unchanged)
    job = _planned(stores, 1)[0]
    stores.jobs.settle([job.move(JobStatus.PENDING, now=LATER, refeed=True)])
    (read,) = stores.jobs.handed_back(QUEUE.id, 10)
    assert stores.jobs.clear_hand_back(read)
    # WHEN a sender claims it from the earlier read
    claimed = stores.jobs.claim(read.claim(account_id=ACCOUNT, now=MUCH_LATER))
    # THEN the claim applies: clearing the hand-back is not a move
    assert claimed is True
    assert _stored(stores, job).status == JobStatus.SENDING


# Queue lifecycle ---------------------------------------------------------------------------------------------------
def _queue(stores: Stores, status: QueueStatus = QueueStatus.PROCESSING, **fields: Any) -> Queue:
    queue = make_queue(BUSINESS, ACCOUNT, recipients=numbers(150), status=status, **fields)
    stores.put_queue(queue)
    return queue


def _read(stores: Stores, queue: Queue) -> Queue:
    found = stores.lifecycle.read_queue(queue.business_id, queue.id)
    assert found is not None
    return found


def _registered(stores: Stores, account_id: str = ACCOUNT) -> set[str]:
    entry = stores.registry.account(BUSINESS, account_id)
    return set(entry.queue_ids) if entry else set()


def test_read_queue_leaves_the_recipients_out_but_counts_them(stores: Stores) -> None:
    # GIVEN a queue with 150 inline recipients
    queue = _queue(stores)
    # WHEN the planner reads it, and then a page of its recipients
    read = _read(stores, queue)
    page = stores.lifecycle.inline_recipients(queue.id, 100, 100)
    many = stores.lifecycle.read_queues([(BUSINESS, queue.id), (BUSINESS, "q_missing")])
    # THEN the queue carries no recipients but their count, and the pages hold them in order
    assert read.audience.recipients == []
    assert read.audience.recipient_count == 150
    assert [recipient.phone_number for recipient in page] == numbers(50, start=101)
    assert [r.phone_number for r in stores.lifecycle.inline_recipients(queue.id, 98, 3)] == numbers(3, start=99)
    assert list(many) == [queue.id]
    assert many[queue.id].audience.recipient_count == 150


def test_record_counters_refreshes_the_snapshot(stores: Stores) -> None:
    # GIVEN a queue
    queue = _queue(stores)
    # WHEN the planner records its counters
    stores.lifecycle.record_counters(queue, QueueCounters(total=3, pending=1, sent=2))
    # THEN reads show them
    assert _read(stores, queue).counters == QueueCounters(total=3, pending=1, sent=2)


def test_transition_needs_an_allowed_status(stores: Stores) -> None:
    # GIVEN a processing queue
    queue = _queue(stores)
    # WHEN it is moved from a status it is not in, then from the one it is in
    refused = stores.lifecycle.transition(queue, allowed_from=[QueueStatus.PAUSED], to=QueueStatus.CANCELLED, now=LATER)
    paused = stores.lifecycle.transition(
        queue, allowed_from=[QueueStatus.PROCESSING], to=QueueStatus.PAUSED, now=LATER, reason="paused by request"
    )
    # THEN only the second applies, with its reason and time
    assert (refused, paused) == (False, True)
    read = _read(stores, queue)
    assert (read.status, read.status_reason, read.updated_at) == (QueueStatus.PAUSED, "paused by request", LATER)


def test_transition_of_a_missing_queue_fails(stores: Stores) -> None:
    # GIVEN a queue that was never stored
    ghost = make_queue(BUSINESS, ACCOUNT, queue_id="q_ghost", recipients=numbers(1))
    # WHEN it is moved, with and without the registry
    plain = stores.lifecycle.transition(ghost, allowed_from=[QueueStatus.PROCESSING], to=QueueStatus.PAUSED, now=LATER)
    registered = stores.lifecycle.transition(
        ghost, allowed_from=[QueueStatus.PROCESSING], to=QueueStatus.CANCELLED, now=LATER, register=True
    )
    # THEN neither applies, and the registry is untouched
    assert (plain, registered) == (False, False)
    assert _registered(stores) == set()


def test_transition_with_unchanged_since_fails_after_another_write(stores: Stores) -> None:
    # GIVEN a processing queue read by the planner, then written by a retry-failed (PROCESSING -> PROCESSING)
    queue = _queue(stores)
    planner_read = _read(stores, queue)
    assert stores.lifecycle.transition(
        queue, allowed_from=[QueueStatus.PROCESSING], to=QueueStatus.PROCESSING, now=LATER, register=True
    )
    # WHEN the planner completes it from its read, then from a fresh read
    stale = stores.lifecycle.transition(
        queue,
        allowed_from=[QueueStatus.PROCESSING],
        to=QueueStatus.COMPLETED,
        now=MUCH_LATER,
        register=False,
        unchanged_since=planner_read.updated_at,
    )
    fresh = stores.lifecycle.transition(
        queue,
        allowed_from=[QueueStatus.PROCESSING],
        to=QueueStatus.COMPLETED,
        now=MUCH_LATER,
        register=False,
        unchanged_since=_read(stores, queue).updated_at,
    )
    # THEN only the fresh one completes it (with completed_at), and it leaves the registry
    assert (stale, fresh) == (False, True)
    read = _read(stores, queue)
    assert (read.status, read.completed_at) == (QueueStatus.COMPLETED, MUCH_LATER)
    assert _registered(stores) == set()


def test_transition_adds_to_and_removes_from_the_registry(stores: Stores) -> None:
    # GIVEN a draft queue
    queue = _queue(stores, QueueStatus.DRAFT)
    # WHEN it starts, then is paused, then resumes under another account's registry entry
    started = stores.lifecycle.transition(
        queue, allowed_from=[QueueStatus.DRAFT], to=QueueStatus.PROCESSING, now=LATER, register=True
    )
    after_start = _registered(stores)
    started_at = _read(stores, queue).started_at
    paused = stores.lifecycle.transition(
        queue, allowed_from=[QueueStatus.PROCESSING], to=QueueStatus.PAUSED, now=MUCH_LATER, register=False
    )
    after_pause = _registered(stores)
    resumed = stores.lifecycle.transition(
        queue,
        allowed_from=[QueueStatus.PAUSED],
        to=QueueStatus.PROCESSING,
        now=MUCH_LATER + timedelta(seconds=1),
        register=True,
        account_id="acc_fallback",
    )
    # THEN the registry follows each move, and started_at keeps the first start
    assert (started, paused, resumed) == (True, True, True)
    assert after_start == {queue.id}
    assert started_at == LATER
    assert after_pause == set()
    assert _registered(stores, "acc_fallback") == {queue.id}
    assert _read(stores, queue).started_at == LATER


def test_a_refused_transition_leaves_the_registry_alone(stores: Stores) -> None:
    # GIVEN a registered processing queue
    queue = _queue(stores)
    assert stores.lifecycle.transition(
        queue, allowed_from=[QueueStatus.PROCESSING], to=QueueStatus.PROCESSING, now=LATER, register=True
    )
    # WHEN a move from another status that would unregister it is refused
    moved = stores.lifecycle.transition(
        queue, allowed_from=[QueueStatus.PAUSED], to=QueueStatus.CANCELLED, now=MUCH_LATER, register=False
    )
    # THEN the queue stays registered
    assert moved is False
    assert _registered(stores) == {queue.id}


def test_unregistering_from_an_account_without_registry_entry_keeps_the_registry_readable(stores: Stores) -> None:
    # GIVEN a scheduled queue (never registered: its account has no registry entry) and another active account
    queue = _queue(stores, QueueStatus.SCHEDULED)
    other = make_queue(BUSINESS, "acc_2", queue_id="q_other", recipients=numbers(1))
    stores.put_queue(other)
    assert stores.lifecycle.transition(
        other, allowed_from=[QueueStatus.PROCESSING], to=QueueStatus.PROCESSING, now=LATER, register=True
    )
    # WHEN it is paused (ProcessingService.pause: register=False)
    paused = stores.lifecycle.transition(
        queue, allowed_from=[QueueStatus.SCHEDULED], to=QueueStatus.PAUSED, now=LATER, register=False
    )
    # THEN the planner can still list the active accounts, and the paused queue's account has nothing to plan
    assert paused is True
    active = {entry.account_id: entry.queue_ids for entry in stores.registry.active_accounts()}
    assert active.get("acc_2") == frozenset({other.id})
    assert not active.get(ACCOUNT)


# Planner registry --------------------------------------------------------------------------------------------------
def _register(stores: Stores, queue_id: str = "q_main", account_id: str = ACCOUNT) -> Queue:
    queue = make_queue(BUSINESS, account_id, queue_id=queue_id, recipients=numbers(1))
    stores.put_queue(queue)
    assert stores.lifecycle.transition(
        queue, allowed_from=[QueueStatus.PROCESSING], to=QueueStatus.PROCESSING, now=LATER, register=True
    )
    return queue


def test_a_lease_is_held_until_released_or_expired(stores: Stores) -> None:
    # GIVEN an account with a registered queue
    _register(stores)
    # WHEN planners try to take its lease over time
    first = stores.registry.acquire_lease(BUSINESS, ACCOUNT, now=1000.0, seconds=300.0)
    while_held = stores.registry.acquire_lease(BUSINESS, ACCOUNT, now=1299.0, seconds=300.0)
    after_expiry = stores.registry.acquire_lease(BUSINESS, ACCOUNT, now=1300.5, seconds=300.0)
    stores.registry.release_lease(BUSINESS, ACCOUNT)
    after_release = stores.registry.acquire_lease(BUSINESS, ACCOUNT, now=1301.0, seconds=300.0)
    # THEN one planner at a time holds it
    assert (first, while_held, after_expiry, after_release) == (True, False, True, True)


def test_no_lease_for_an_account_without_registry_entry(stores: Stores) -> None:
    # GIVEN / WHEN a planner asks for the lease of an account that is not registered
    acquired = stores.registry.acquire_lease(BUSINESS, "acc_unknown", now=1000.0, seconds=300.0)
    # THEN it gets none
    assert acquired is False
    assert stores.registry.account(BUSINESS, "acc_unknown") is None


def test_releasing_the_lease_drops_an_entry_without_queues(stores: Stores) -> None:
    # GIVEN an account whose only queue left the registry, and another with a queue
    _register(stores, "q_done")
    stores.registry.unregister(BUSINESS, ACCOUNT, "q_done")
    _register(stores, "q_busy", "acc_busy")
    listed = {entry.account_id: entry.queue_ids for entry in stores.registry.active_accounts()}
    # WHEN each account's lease is taken and released
    for account_id in (ACCOUNT, "acc_busy"):
        assert stores.registry.acquire_lease(BUSINESS, account_id, now=1000.0, seconds=300.0)
        stores.registry.release_lease(BUSINESS, account_id)
    # THEN the empty entry was listed until then and is gone now; the other stays (and is free)
    assert listed == {ACCOUNT: frozenset(), "acc_busy": frozenset({"q_busy"})}
    assert stores.registry.account(BUSINESS, ACCOUNT) is None
    assert [entry.account_id for entry in stores.registry.active_accounts()] == ["acc_busy"]
    assert stores.registry.acquire_lease(BUSINESS, "acc_busy", now=1001.0, seconds=300.0)


# Runs and recipient zones --------------------------------------------------------------------------------------------
def test_a_run_starts_once_resets_the_plan_and_ends_with_its_counters(stores: Stores) -> None:
    # GIVEN a SCHEDULED recurring queue whose earlier planning left a finished plan
    queue = make_queue(BUSINESS, ACCOUNT, status=QueueStatus.SCHEDULED, schedule={"recurrence": "0 9 * * MON"})
    stores.put_queue(queue)
    assert stores.jobs.commit_page(
        queue.id,
        PlanState(),
        jobs=[],
        cursor={"phase": "inline", "offset": 100},
        done=True,
        now=NOW,
        zones=frozenset({"Europe/Madrid"}),
    )
    run = QueueRun(queue_id=queue.id, number=1, status=RunStatus.PROCESSING, scheduled_for=NOW, started_at=NOW)
    # WHEN run 1 starts, twice
    first = stores.lifecycle.start_run(queue, run, allowed_from=(QueueStatus.SCHEDULED,), now=LATER)
    second = stores.lifecycle.start_run(
        queue, run, allowed_from=(QueueStatus.SCHEDULED, QueueStatus.PROCESSING), now=LATER
    )
    # THEN it started once: PROCESSING, registered, the run recorded, the plan from the start for run 1
    assert (first, second) == (True, False)
    started = stores.lifecycle.read_queue(BUSINESS, queue.id)
    assert started is not None
    assert (started.status, started.run_number, started.run_scheduled_for) == (QueueStatus.PROCESSING, 1, NOW)
    assert queue.id in {q for entry in stores.registry.active_accounts() for q in entry.queue_ids}
    assert stores.lifecycle.read_run(queue.id, 1) == run
    plan = stores.jobs.read_plan(queue.id)
    assert (plan.cursor, plan.done, plan.run, plan.zones) == (None, False, 1, frozenset())
    # WHEN the run ends
    ended = run.model_copy(
        update={"status": RunStatus.COMPLETED, "completed_at": MUCH_LATER, "counters": QueueCounters(total=3, sent=3)}
    )
    assert stores.lifecycle.end_run(started, ended, to=QueueStatus.SCHEDULED, now=MUCH_LATER)
    # THEN the queue waits again, unregistered, and the run keeps its counters
    waiting = stores.lifecycle.read_queue(BUSINESS, queue.id)
    assert waiting is not None
    assert waiting.status == QueueStatus.SCHEDULED
    assert not any(entry.queue_ids for entry in stores.registry.active_accounts())
    assert stores.lifecycle.read_run(queue.id, 1) == ended
    assert [r.number for r in stores.lifecycle.list_runs(queue.id, 10, None).items] == [1]


def test_handed_back_jobs_are_found_per_recipient_zone(stores: Stores) -> None:
    # GIVEN planned jobs in two zones, each handed back
    madrid = make_job(QUEUE, 0).model_copy(update={"recipient_zone": "Europe/Madrid"})
    quito = make_job(QUEUE, 1).model_copy(update={"recipient_zone": "America/Guayaquil"})
    plain = make_job(QUEUE, 2)
    assert _plan(stores, [madrid, quito, plain])
    stores.jobs.settle([job.move(JobStatus.PENDING, now=LATER, refeed=True) for job in (madrid, quito, plain)])
    # WHEN each zone's hand-backs are read
    found = {
        zone: [job.id for job in stores.jobs.handed_back(QUEUE.id, 10, zone)]
        for zone in ("Europe/Madrid", "America/Guayaquil", None)
    }
    # THEN each holds its own
    assert found == {"Europe/Madrid": [madrid.id], "America/Guayaquil": [quito.id], None: [plain.id]}
    candidates = stores.jobs.unfed(QUEUE.id, -1, 10)
    assert [c.recipient_zone for c in candidates] == ["Europe/Madrid", "America/Guayaquil", None]
