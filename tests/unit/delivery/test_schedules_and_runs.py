"""A queue's schedules: starting by itself, moving or clearing the start, pausing, cancelling and deleting (no
schedule left behind), expiry, and the runs of a recurring queue. Fakes with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.delivery.builders import numbers
from tests.unit.delivery.conftest import DeliveryWorld, counters_add_up
from tests.unit.delivery_fakes import FakeSchedules
from wabacast.domain.jobs import JobStatus
from wabacast.domain.models import QueueStatus, RunStatus
from wabacast.domain.schedules import ScheduleAction, ScheduledEvent

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
START = NOW + timedelta(hours=1)


@pytest.fixture
def schedules() -> FakeSchedules:
    return FakeSchedules()


def fire(
    world: DeliveryWorld, schedules: FakeSchedules, action: ScheduleAction, at: datetime, queue_id: str = "q_main"
) -> str:
    event = ScheduledEvent.model_validate(
        {"action": action.value, "businessId": world.business.id, "queueId": queue_id, "scheduledTime": at.isoformat()}
    )
    return world.processing(schedules).on_schedule(event)


def test_a_scheduled_queue_starts_by_itself_once_when_its_schedule_fires(
    world: DeliveryWorld, schedules: FakeSchedules
) -> None:
    # GIVEN a draft queue starting in an hour, processed now
    world.set_time(NOW)
    world.add_queue(
        recipients=numbers(3), status=QueueStatus.DRAFT, started_at=None, register=False, schedule={"start_at": START}
    )
    progress = world.processing(schedules).process(world.business.id, "q_main")
    # THEN it is SCHEDULED with one start schedule at its start
    assert progress.status == QueueStatus.SCHEDULED
    assert {name: s.at for name, s in schedules.schedules.items()} == {"q_main-start": START}
    assert world.registered() == set()
    # WHEN the schedule fires (twice: Scheduler delivers at least once)
    world.set_time(START + timedelta(seconds=2))
    first = fire(world, schedules, ScheduleAction.START, START)
    second = fire(world, schedules, ScheduleAction.START, START)
    # THEN it started once and is in the planner's registry; the planner sends it
    assert (first, world.queue().status) == ("started", QueueStatus.PROCESSING)
    assert second.startswith("ignored")
    assert world.registered() == {"q_main"}
    world.plan()
    world.deliver()
    world.plan()
    assert world.queue().status == QueueStatus.COMPLETED
    assert len(world.providers.sent) == 3


def test_a_fire_for_a_start_that_was_moved_changes_nothing(world: DeliveryWorld, schedules: FakeSchedules) -> None:
    # GIVEN a queue SCHEDULED for START whose start moved two hours later
    world.set_time(NOW)
    queue = world.add_queue(status=QueueStatus.SCHEDULED, started_at=None, register=False, schedule={"start_at": START})
    moved = queue.model_copy(
        update={"schedule": queue.schedule.model_copy(update={"start_at": START + timedelta(hours=2)})}
    )
    world.lifecycle.add(moved)
    world.processing(schedules).rescheduled(moved)
    # WHEN the old occurrence fires late
    outcome = fire(world, schedules, ScheduleAction.START, START)
    # THEN nothing starts, and the one start schedule is at the new time
    assert outcome == "ignored: the start was moved"
    assert world.queue().status == QueueStatus.SCHEDULED
    assert schedules.schedules["q_main-start"].at == START + timedelta(hours=2)


def test_clearing_the_start_of_a_scheduled_queue_starts_it_now_and_drops_the_schedule(
    world: DeliveryWorld, schedules: FakeSchedules
) -> None:
    # GIVEN a SCHEDULED queue with its start schedule
    world.set_time(NOW)
    queue = world.add_queue(status=QueueStatus.DRAFT, started_at=None, register=False, schedule={"start_at": START})
    world.processing(schedules).process(world.business.id, "q_main")
    # WHEN its startAt is cleared
    cleared = world.queue().model_copy(update={"schedule": queue.schedule.model_copy(update={"start_at": None})})
    world.lifecycle.add(cleared)
    world.processing(schedules).rescheduled(cleared)
    # THEN it is PROCESSING, registered, and no schedule is left
    assert world.queue().status == QueueStatus.PROCESSING
    assert world.registered() == {"q_main"}
    assert schedules.names() == set()


@pytest.mark.parametrize("action", ["pause", "cancel", "delete"])
def test_pausing_cancelling_or_deleting_a_scheduled_queue_leaves_no_schedule(
    world: DeliveryWorld, schedules: FakeSchedules, action: str
) -> None:
    # GIVEN a SCHEDULED recurring queue with an end (recurrence and end schedules)
    world.set_time(NOW)
    world.add_queue(
        status=QueueStatus.DRAFT,
        started_at=None,
        register=False,
        schedule={"recurrence": "0 9 * * MON", "end_at": NOW + timedelta(days=30), "timezone": "America/Guayaquil"},
    )
    processing = world.processing(schedules)
    processing.process(world.business.id, "q_main")
    assert schedules.names() == {"q_main-recur", "q_main-end"}
    assert schedules.schedules["q_main-recur"].aws_expression == "cron(0 9 ? * MON *)"
    assert schedules.schedules["q_main-recur"].timezone == "America/Guayaquil"
    # WHEN it is paused, cancelled or deleted
    if action == "pause":
        processing.pause(world.business.id, "q_main")
    elif action == "cancel":
        processing.cancel(world.business.id, "q_main")
    else:
        processing.removed("q_main")
    # THEN no schedule is left
    assert schedules.names() == set()


def test_resuming_a_queue_paused_while_scheduled_waits_again_for_its_start(
    world: DeliveryWorld, schedules: FakeSchedules
) -> None:
    # GIVEN a scheduled queue that was paused
    world.set_time(NOW)
    world.add_queue(status=QueueStatus.DRAFT, started_at=None, register=False, schedule={"start_at": START})
    processing = world.processing(schedules)
    processing.process(world.business.id, "q_main")
    processing.pause(world.business.id, "q_main")
    # WHEN it is resumed before its start
    progress = processing.resume(world.business.id, "q_main")
    # THEN it is SCHEDULED again with its start schedule, and not in the planner's registry
    assert progress.status == QueueStatus.SCHEDULED
    assert schedules.names() == {"q_main-start"}
    assert world.registered() == set()


def test_a_recurring_queue_runs_once_per_occurrence_with_counters_per_run_and_totals(
    world: DeliveryWorld, schedules: FakeSchedules
) -> None:
    # GIVEN a weekly recurring queue of 4 recipients, processed (SCHEDULED until its first occurrence)
    world.set_time(NOW)
    world.add_queue(
        recipients=numbers(4),
        status=QueueStatus.DRAFT,
        started_at=None,
        register=False,
        schedule={"recurrence": "0 9 * * MON"},
    )
    processing = world.processing(schedules)
    processing.process(world.business.id, "q_main")
    first, second = datetime(2026, 11, 30, 9, tzinfo=UTC), datetime(2026, 12, 7, 9, tzinfo=UTC)
    for occurrence in (first, second):
        # WHEN an occurrence fires and the pipeline runs the run to its end
        world.set_time(occurrence)
        assert fire(world, schedules, ScheduleAction.OCCURRENCE, occurrence).startswith("run ")
        assert fire(world, schedules, ScheduleAction.OCCURRENCE, occurrence).startswith("ignored")
        world.plan()
        world.deliver()
        world.plan()
        # THEN the run ended and the queue waits for the next occurrence
        assert world.queue().status == QueueStatus.SCHEDULED
        assert world.registered() == set()
    # THEN each run sent to every recipient once (deduplicated per run), with its own counters and the totals of both
    assert len(world.providers.sent) == 8
    assert world.statuses() == {JobStatus.SENT: 8}
    runs = processing.runs(world.business.id, "q_main", limit=10, next_token=None).items
    assert [(run.number, run.status, run.scheduled_for) for run in runs] == [
        (1, RunStatus.COMPLETED, first),
        (2, RunStatus.COMPLETED, second),
    ]
    assert [(run.counters.total, run.counters.sent) for run in runs] == [(4, 4), (4, 4)]
    progress = processing.progress(world.business.id, "q_main")
    assert (progress.run_number, progress.counters.sent, progress.totals and progress.totals.sent) == (2, 4, 8)
    assert progress.next_run_at == datetime(2026, 12, 14, 9, tzinfo=UTC)
    assert counters_add_up(world)
    assert schedules.names() == {"q_main-recur"}


def test_an_occurrence_during_a_run_is_recorded_as_skipped(world: DeliveryWorld, schedules: FakeSchedules) -> None:
    # GIVEN an hourly recurring queue whose first run is still sending
    world.set_time(NOW)
    world.add_queue(
        recipients=numbers(2),
        status=QueueStatus.DRAFT,
        started_at=None,
        register=False,
        schedule={"recurrence": "0 * * * *"},
    )
    world.processing(schedules).process(world.business.id, "q_main")
    fire(world, schedules, ScheduleAction.OCCURRENCE, datetime(2026, 11, 30, 9, tzinfo=UTC))
    # WHEN the next occurrence fires before the run ended
    outcome = fire(world, schedules, ScheduleAction.OCCURRENCE, datetime(2026, 11, 30, 10, tzinfo=UTC))
    # THEN no second run starts; the occurrence is listed as skipped
    assert outcome == "skipped: the previous run is still in progress"
    runs = world.processing(schedules).runs(world.business.id, "q_main", limit=10, next_token=None).items
    assert [(run.number, run.status) for run in runs] == [(1, RunStatus.PROCESSING), (1, RunStatus.SKIPPED)]
    assert world.queue().run_number == 1


def test_a_recurring_queue_waiting_past_its_end_expires(world: DeliveryWorld, schedules: FakeSchedules) -> None:
    # GIVEN a SCHEDULED recurring queue ending at NOW + 1 day
    world.set_time(NOW)
    end = NOW + timedelta(days=1)
    world.add_queue(
        status=QueueStatus.DRAFT, started_at=None, register=False, schedule={"recurrence": "0 9 * * MON", "end_at": end}
    )
    world.processing(schedules).process(world.business.id, "q_main")
    # WHEN its end schedule fires
    world.set_time(end)
    outcome = fire(world, schedules, ScheduleAction.EXPIRE, end)
    # THEN it is COMPLETED as expired and no schedule is left
    assert outcome == "expired"
    assert (world.queue().status, world.queue().status_reason) == (
        QueueStatus.COMPLETED,
        "expired: schedule.endAt passed",
    )
    assert schedules.names() == set()


def test_cancelling_a_recurring_queue_mid_run_ends_the_run_as_cancelled(
    world: DeliveryWorld, schedules: FakeSchedules
) -> None:
    # GIVEN a recurring queue in its first run
    world.set_time(NOW)
    world.add_queue(
        recipients=numbers(3),
        status=QueueStatus.DRAFT,
        started_at=None,
        register=False,
        schedule={"recurrence": "0 9 * * *"},
    )
    processing = world.processing(schedules)
    processing.process(world.business.id, "q_main")
    fire(world, schedules, ScheduleAction.OCCURRENCE, datetime(2026, 11, 30, 9, tzinfo=UTC))
    world.plan()  # planned and fed, not sent yet
    # WHEN it is cancelled and the planner skips what was left
    processing.cancel(world.business.id, "q_main")
    world.plan()
    # THEN the run reads CANCELLED, its jobs were skipped, and the recurrence is gone
    runs = processing.runs(world.business.id, "q_main", limit=10, next_token=None).items
    assert [(run.number, run.status, run.counters.skipped) for run in runs] == [(1, RunStatus.CANCELLED, 3)]
    assert schedules.names() == set()
