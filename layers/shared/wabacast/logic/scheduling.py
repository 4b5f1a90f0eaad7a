"""When a queue may send, and keeping its schedules in EventBridge Scheduler in step with its status.

Windows: `schedule.activeHours` is wall-clock time in the queue's time zone, or, with `recipientLocalTime`, in each
recipient's own zone (the job's `recipient_zone`). The planner feeds only inside the window; the sender checks it
again, so a message already in SQS when the window closes goes back to the planner instead of out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from wabacast.domain.models import Queue, Schedule
from wabacast.domain.recurrence import Recurrence
from wabacast.domain.schedules import ScheduleAction
from wabacast.domain.windows import SendingWindow, next_opening, window_is_open
from wabacast.logic.delivery_ports import QueueSchedules


def sending_window(schedule: Schedule) -> SendingWindow | None:
    return SendingWindow.from_active_hours(schedule.active_hours) if schedule.active_hours else None


def zone_of(schedule: Schedule, recipient_zone: str | None = None) -> ZoneInfo:
    """The zone a job's window is read in: the recipient's when the queue sends in recipients' local time."""
    if schedule.recipient_local_time and recipient_zone:
        return ZoneInfo(recipient_zone)
    return ZoneInfo(schedule.timezone)


def window_open(schedule: Schedule, at: datetime, recipient_zone: str | None = None) -> bool:
    return window_is_open(sending_window(schedule), at, zone_of(schedule, recipient_zone))


def expired(schedule: Schedule, at: datetime) -> bool:
    return schedule.end_at is not None and at >= schedule.end_at


def next_window_at(schedule: Schedule, at: datetime, zones: Iterable[str] = ()) -> datetime | None:
    """When sending may next go on: None while the window is open (for some recipient zone, in local-time mode)."""
    window = sending_window(schedule)
    if window is None:
        return None
    candidates = [ZoneInfo(zone) for zone in zones] if schedule.recipient_local_time else []
    if not candidates:
        candidates = [ZoneInfo(schedule.timezone)]
    openings = [next_opening(window, at, zone) for zone in candidates]
    soonest = min(openings, key=lambda opening: opening.timestamp())
    return None if soonest <= at else soonest


class ScheduleKeeper:
    """Creates, moves and removes a queue's schedules (wabacast.domain.schedules) as its status and schedule change.

    With no Scheduler configured (unit tests, one-process tools) it keeps nothing: a SCHEDULED queue then waits for
    a `process` call after its start."""

    def __init__(self, schedules: QueueSchedules | None) -> None:
        self._schedules = schedules

    def arrange_waiting(self, queue: Queue, now: datetime) -> None:
        """The triggers of a queue waiting to start (SCHEDULED): its start, or its recurrence and its end."""
        if self._schedules is None:
            return
        schedule = queue.schedule
        if schedule.recurrence is not None:
            self.arrange_recurrence(queue, now)
            self._schedules.delete(queue.id, ScheduleAction.START)
        else:
            if schedule.start_at is not None and schedule.start_at > now:
                self._schedules.put_once(queue.business_id, queue.id, ScheduleAction.START, schedule.start_at)
            else:
                self._schedules.delete(queue.id, ScheduleAction.START)
            self._schedules.delete(queue.id, ScheduleAction.OCCURRENCE)
            self._schedules.delete(queue.id, ScheduleAction.EXPIRE)

    def arrange_recurrence(self, queue: Queue, now: datetime) -> None:
        """A recurring queue keeps its recurrence (and its end) while it runs and between runs."""
        schedule = queue.schedule
        if self._schedules is None or schedule.recurrence is None:
            return
        self._schedules.put_recurring(
            queue.business_id,
            queue.id,
            aws_expression=Recurrence.parse(schedule.recurrence).aws_expression(),
            timezone=schedule.timezone,
            # A start already past would only move Scheduler's first occurrence back: leave it out.
            start=schedule.start_at if schedule.start_at and schedule.start_at > now else None,
            end=schedule.end_at,
        )
        if schedule.end_at is not None:
            self._schedules.put_once(queue.business_id, queue.id, ScheduleAction.EXPIRE, schedule.end_at)
        else:
            self._schedules.delete(queue.id, ScheduleAction.EXPIRE)

    def resume_at(self, queue: Queue, at: datetime) -> None:
        """A queue paused by a provider limit that lifts by itself resumes at `at` (once)."""
        if self._schedules is not None:
            self._schedules.put_once(queue.business_id, queue.id, ScheduleAction.RESUME, at)

    def resumed(self, queue_id: str) -> None:
        """The queue left the pause (by request, or cancelled): the limit's resume has no more use."""
        if self._schedules is not None:
            self._schedules.delete(queue_id, ScheduleAction.RESUME)

    def started(self, queue: Queue) -> None:
        """The queue started sending now: its start trigger has no more use."""
        if self._schedules is not None:
            self._schedules.delete(queue.id, ScheduleAction.START)

    def clear(self, queue_id: str) -> None:
        """Paused, cancelled or deleted: no trigger may start it again."""
        if self._schedules is None:
            return
        for action in ScheduleAction:
            self._schedules.delete(queue_id, action)
