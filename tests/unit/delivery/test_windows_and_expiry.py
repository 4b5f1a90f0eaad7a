"""The sending window, end-to-end through planner and sender on fakes, with an injected clock: nothing goes out
outside the window (retries and hand-backs included), and a queue past its endAt skips what is left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.unit.delivery.builders import NOW, numbers
from tests.unit.delivery.conftest import DeliveryWorld, counters_add_up
from wabacast.domain.jobs import ErrorClass, JobStatus
from wabacast.domain.models import ActiveHours, Contact, QueueStatus, Weekday
from wabacast.providers.base import ProviderError

RETRYABLE = ProviderError("131000", "try later", error_class=ErrorClass.RETRYABLE)

GUAYAQUIL = ZoneInfo("America/Guayaquil")
NEW_YORK = ZoneInfo("America/New_York")


def _contact(number: str, timezone: str) -> Contact:
    return Contact(phone_number=number, tags=["vip"], timezone=timezone, created_at=NOW, updated_at=NOW)


def at(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


def inside(moment: datetime, zone: ZoneInfo, start: int, end: int) -> bool:
    local = moment.astimezone(zone)
    return start <= local.hour < end if start < end else (local.hour >= start or local.hour < end)


def test_a_window_that_closes_mid_campaign_waits_for_the_next_allowed_day(world: DeliveryWorld) -> None:
    # GIVEN a Monday-to-Friday 09:00-18:00 Guayaquil window, a queue of 40 started on Friday at 17:59:30
    world.set_time(at(GUAYAQUIL, 2026, 11, 27, 17, 59, 30))  # a Friday
    hours = ActiveHours(start="09:00", end="18:00", days=[Weekday(day) for day in ("MON", "TUE", "WED", "THU", "FRI")])
    world.add_queue(recipients=numbers(40), active_hours=hours, schedule={"timezone": "America/Guayaquil"})
    world.plan()
    # WHEN senders take 15 messages before 18:00, and the rest arrive at 18:00:00
    sender = world.sender()
    sender.send_batch(world.account.id, world.records(limit=10))
    sender.send_batch(world.account.id, world.records(limit=5))
    world.set_time(at(GUAYAQUIL, 2026, 11, 27, 18, 0, 0))
    world.deliver()
    # THEN 15 went out, the others are back with the planner, and the planner feeds nothing all weekend
    assert len(world.providers.sent) == 15
    assert world.statuses()[JobStatus.PENDING] == 25
    for moment in (
        at(GUAYAQUIL, 2026, 11, 27, 23, 0),
        at(GUAYAQUIL, 2026, 11, 28, 12, 0),
        at(GUAYAQUIL, 2026, 11, 30, 8, 59, 59),
    ):
        world.set_time(moment)
        world.plan()
        world.deliver()
    assert len(world.providers.sent) == 15
    progress = world.processing().progress(world.business.id, "q_main")
    assert progress.waiting_for_window
    assert progress.next_window_at == at(GUAYAQUIL, 2026, 11, 30, 9, 0)
    # WHEN Monday 09:00 comes
    world.set_time(at(GUAYAQUIL, 2026, 11, 30, 9, 0, 0))
    world.plan()
    world.deliver()
    world.plan()
    # THEN the rest is sent, every message inside the window, and the queue completes
    assert len(world.providers.sent) == 40
    assert all(inside(moment, GUAYAQUIL, 9, 18) for moment in world.providers.accepted_at)
    assert all(moment.astimezone(GUAYAQUIL).weekday() < 5 for moment in world.providers.accepted_at)
    assert world.queue().status == QueueStatus.COMPLETED
    assert counters_add_up(world)


def test_a_retry_due_after_the_window_closed_waits_for_it_to_open(world: DeliveryWorld) -> None:
    # GIVEN a 09:00-18:00 UTC window and a job whose first attempt fails retryably at 17:59:59
    world.set_time(datetime(2026, 11, 27, 17, 59, 59, tzinfo=UTC))
    world.add_queue(recipients=numbers(1), active_hours=ActiveHours(start="09:00", end="18:00"))
    world.plan()
    world.providers.provider(world.account.id).fail_next(RETRYABLE)
    records = world.records()
    sender = world.sender()
    sender.send_batch(world.account.id, records)
    assert world.statuses() == {JobStatus.RETRY: 1}
    # WHEN SQS hands it out again at 18:00:14
    world.set_time(datetime(2026, 11, 27, 18, 0, 14, tzinfo=UTC))
    sender.send_batch(world.account.id, records)
    # THEN it is handed back, not sent; it goes out at the next opening
    assert world.providers.sent == []
    assert world.statuses() == {JobStatus.PENDING: 1}
    world.set_time(datetime(2026, 11, 28, 9, 0, 0, tzinfo=UTC))
    world.plan()
    world.deliver()
    assert len(world.providers.sent) == 1
    assert all(inside(moment, ZoneInfo("UTC"), 9, 18) for moment in world.providers.accepted_at)


def test_a_window_across_midnight_sends_late_evening_and_early_morning_only(world: DeliveryWorld) -> None:
    # GIVEN a 22:00-06:00 window on Fridays only (Friday night into Saturday morning belongs to Friday)
    hours = ActiveHours(start="22:00", end="06:00", days=[Weekday.FRI])
    world.add_queue(recipients=numbers(30), active_hours=hours)
    sent_at: dict[datetime, int] = {}
    # WHEN the planner and the senders run at these moments (10 messages a run)
    for moment in (
        datetime(2026, 11, 27, 21, 59, tzinfo=UTC),  # Friday, before the window
        datetime(2026, 11, 27, 22, 0, tzinfo=UTC),  # Friday 22:00: open
        datetime(2026, 11, 28, 5, 59, tzinfo=UTC),  # Saturday 05:59: still Friday's window
        datetime(2026, 11, 28, 6, 0, tzinfo=UTC),  # Saturday 06:00: closed
        datetime(2026, 11, 28, 22, 0, tzinfo=UTC),  # Saturday 22:00: not an allowed day
        datetime(2026, 12, 4, 23, 0, tzinfo=UTC),  # next Friday 23:00
    ):
        world.set_time(moment)
        before = len(world.providers.sent)
        world.plan()
        sender = world.sender()
        if batch := world.records(limit=10):
            sender.send_batch(world.account.id, batch)
        sent_at[moment] = len(world.providers.sent) - before
    # THEN messages went out only inside Friday's window
    assert list(sent_at.values()) == [0, 10, 10, 0, 0, 10]


def test_new_york_windows_are_right_on_both_dst_switch_days(world: DeliveryWorld) -> None:
    # GIVEN a 09:00-18:00 New York window
    world.add_queue(
        recipients=numbers(40),
        active_hours=ActiveHours(start="09:00", end="18:00"),
        schedule={"timezone": "America/New_York"},
    )
    sent: list[int] = []
    # WHEN it runs a second before and at 09:00 local on the day clocks go forward (EDT, UTC-4) and back (EST, UTC-5)
    for moment in (
        datetime(2026, 3, 8, 12, 59, 59, tzinfo=UTC),
        datetime(2026, 3, 8, 13, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 13, 59, 59, tzinfo=UTC),
        datetime(2026, 11, 1, 14, 0, 0, tzinfo=UTC),
    ):
        world.set_time(moment)
        before = len(world.providers.sent)
        world.plan()
        sender = world.sender()
        if batch := world.records(limit=10):
            sender.send_batch(world.account.id, batch)
        sent.append(len(world.providers.sent) - before)
    # THEN only the 09:00 local runs sent
    assert sent == [0, 10, 0, 10]
    assert all(inside(moment, NEW_YORK, 9, 18) for moment in world.providers.accepted_at)


def test_recipients_local_time_sends_each_at_their_own_nine_oclock(world: DeliveryWorld) -> None:
    # GIVEN contacts in Madrid and Guayaquil, and a 09:00-12:00 window read in each recipient's zone
    madrid, guayaquil = numbers(2)
    world.contacts.save_many(
        world.business.id,
        [
            (_contact(madrid, "Europe/Madrid"), []),
            (_contact(guayaquil, "America/Guayaquil"), []),
        ],
    )
    world.add_queue(
        tags=["vip"],
        active_hours=ActiveHours(start="09:00", end="12:00"),
        schedule={"timezone": "UTC", "recipient_local_time": True},
    )
    sent_to: list[list[str]] = []
    # WHEN the pipeline runs at 07:59 UTC, 08:00 UTC (09:00 in Madrid), 13:59 UTC and 14:00 UTC (09:00 in Guayaquil)
    for moment in (
        datetime(2026, 11, 30, 7, 59, tzinfo=UTC),
        datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 13, 59, tzinfo=UTC),
        datetime(2026, 11, 30, 14, 0, tzinfo=UTC),
    ):
        world.set_time(moment)
        before = len(world.providers.sent)
        world.plan()
        world.deliver()
        sent_to.append([message.to for message in world.providers.sent[before:]])
    # THEN Madrid got it at its 09:00 and Guayaquil at its 09:00
    assert sent_to == [[], [madrid], [], [guayaquil]]
    world.plan()
    assert world.queue().status == QueueStatus.COMPLETED


def test_a_queue_past_its_end_skips_what_is_left_as_expired_and_completes(world: DeliveryWorld) -> None:
    # GIVEN a queue of 30 ending at 10:30, of which 10 were sent and 10 wait in SQS
    world.set_time(datetime(2026, 11, 30, 10, 0, tzinfo=UTC))
    world.add_queue(recipients=numbers(30), schedule={"end_at": datetime(2026, 11, 30, 10, 30, tzinfo=UTC)})
    world.plan(feed_window_s=2.0)  # 20 fed
    sender = world.sender()
    sender.send_batch(world.account.id, world.records(limit=10))
    # WHEN the end passes: a sender gets the 10 in SQS, and the planner ticks
    world.set_time(datetime(2026, 11, 30, 10, 30, tzinfo=UTC))
    world.deliver()
    world.plan()
    # THEN 10 are sent, 20 skipped as expired, and the queue completed with the reason
    assert world.statuses() == {JobStatus.SENT: 10, JobStatus.SKIPPED: 20}
    assert {job.skip_reason for job in world.jobs.jobs_of("q_main") if job.status == JobStatus.SKIPPED} == {"expired"}
    queue = world.queue()
    assert queue.status == QueueStatus.COMPLETED
    assert queue.status_reason == "expired: schedule.endAt passed"
    assert counters_add_up(world)
    assert world.jobs.tally("q_main").counters.skipped == 20


def test_progress_outside_the_window_shows_when_it_opens_with_the_zone_offset(world: DeliveryWorld) -> None:
    # GIVEN a Guayaquil 09:00-18:00 window and a clock at 20:00 there
    world.set_time(at(GUAYAQUIL, 2026, 11, 30, 20, 0))
    world.add_queue(
        recipients=numbers(3),
        active_hours=ActiveHours(start="09:00", end="18:00"),
        schedule={"timezone": "America/Guayaquil"},
    )
    # WHEN progress is read
    progress = world.processing().progress(world.business.id, "q_main")
    # THEN it waits for tomorrow 09:00, given with the -05:00 offset
    assert progress.waiting_for_window
    assert progress.next_window_at is not None
    assert progress.next_window_at.isoformat() == "2026-12-01T09:00:00-05:00"
    assert progress.next_window_at.utcoffset() == timedelta(hours=-5)
