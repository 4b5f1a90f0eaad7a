"""A queue paused by a provider limit that resets by itself (Twilio's daily limit, 63038) resumes by itself when it
resets, through a one-time schedule; a resume or cancel by request before then leaves no schedule behind."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.unit.delivery.conftest import DeliveryWorld
from tests.unit.delivery_fakes import FakeSchedules, provider_error
from tests.unit.fakes import TWILIO_CREDENTIALS, phone
from wabacast.domain.models import AccountLimits, Provider, QueueStatus
from wabacast.domain.schedules import ScheduleAction, ScheduledEvent

DAILY_WINDOW = timedelta(hours=24)


def _fire(world: DeliveryWorld, schedules: FakeSchedules, at: datetime) -> str:
    event = ScheduledEvent.model_validate(
        {"action": "resume", "businessId": world.business.id, "queueId": "q_main", "scheduledTime": at.isoformat()}
    )
    return world.processing(schedules).on_schedule(event)


def _paused_by_the_daily_limit(world: DeliveryWorld, schedules: FakeSchedules) -> datetime:
    """A Twilio account's processing queue of three jobs whose first send meets Twilio's daily limit; returns the
    pause time."""
    world.account = world.new_account(
        Provider.TWILIO,
        credentials=dict(TWILIO_CREDENTIALS),
        limits=AccountLimits(messages_per_second=10, daily_recipient_limit=100_000),
    )
    world.add_queue(recipients=[phone(1), phone(2), phone(3)])
    world.plan()
    world.providers.provider(world.account.id).fail_for(phone(1), provider_error("63038", provider="twilio"))
    paused_at = world.clock.now
    world.sender(schedules=schedules).send_batch(world.account.id, world.records())
    return paused_at


def test_the_daily_limit_pause_arranges_one_resume_when_the_limit_resets(world: DeliveryWorld) -> None:
    # GIVEN Scheduler
    schedules = FakeSchedules()

    # WHEN a send meets Twilio's daily limit (the other jobs of the batch meet the paused queue)
    paused_at = _paused_by_the_daily_limit(world, schedules)

    # THEN the queue is paused and one schedule resumes it when the rolling 24 hours let it send again
    assert world.queue().status == QueueStatus.PAUSED
    assert {name: s.at for name, s in schedules.schedules.items()} == {"q_main-resume": paused_at + DAILY_WINDOW}
    assert schedules.schedules["q_main-resume"].action == ScheduleAction.RESUME


def test_the_resume_fire_sends_again_once(world: DeliveryWorld) -> None:
    # GIVEN a queue paused by the daily limit
    schedules = FakeSchedules()
    paused_at = _paused_by_the_daily_limit(world, schedules)
    resets = paused_at + DAILY_WINDOW

    # WHEN its resume fires at the reset, twice (Scheduler delivers at least once)
    world.set_time(resets + timedelta(seconds=1))
    first = _fire(world, schedules, resets)
    second = _fire(world, schedules, resets)

    # THEN the queue is sending again and the planner has it; the second fire changes nothing
    assert first == "resumed: the provider's limit has reset"
    assert second.startswith("ignored")
    assert world.queue().status == QueueStatus.PROCESSING
    assert world.registered() == {"q_main"}


def test_a_resume_by_request_before_the_reset_removes_the_schedule(world: DeliveryWorld) -> None:
    # GIVEN a queue paused by the daily limit, with its resume arranged
    schedules = FakeSchedules()
    _paused_by_the_daily_limit(world, schedules)
    assert set(schedules.schedules) == {"q_main-resume"}

    # WHEN the business resumes it by request before the reset
    world.processing(schedules).resume(world.business.id, "q_main")

    # THEN no schedule is left to resume it again later
    assert world.queue().status == QueueStatus.PROCESSING
    assert schedules.schedules == {}


def test_a_cancel_before_the_reset_removes_the_schedule(world: DeliveryWorld) -> None:
    # GIVEN a queue paused by the daily limit
    schedules = FakeSchedules()
    _paused_by_the_daily_limit(world, schedules)
    assert set(schedules.schedules) == {"q_main-resume"}

    # WHEN it is cancelled
    world.processing(schedules).cancel(world.business.id, "q_main")

    # THEN nothing is left to resume it
    assert schedules.schedules == {}


def test_a_late_fire_of_an_earlier_pause_leaves_a_later_pause_alone(world: DeliveryWorld) -> None:
    # GIVEN a queue paused by the limit, resumed by request, then paused by request the next day
    schedules = FakeSchedules()
    paused_at = _paused_by_the_daily_limit(world, schedules)
    processing = world.processing(schedules)
    processing.resume(world.business.id, "q_main")
    world.set_time(paused_at + DAILY_WINDOW + timedelta(hours=1))
    processing.pause(world.business.id, "q_main")

    # WHEN the first pause's resume is delivered anyway (Scheduler's at-least-once)
    outcome = _fire(world, schedules, paused_at + DAILY_WINDOW)

    # THEN the queue stays paused by request
    assert outcome.startswith("ignored")
    assert world.queue().status == QueueStatus.PAUSED


def test_senders_that_find_the_queue_paused_already_do_not_move_the_resume(world: DeliveryWorld) -> None:
    # GIVEN a queue paused by the daily limit, with its resume arranged
    schedules = FakeSchedules()
    paused_at = _paused_by_the_daily_limit(world, schedules)

    # WHEN a late failure with the same code arrives for another job an hour later
    world.set_time(paused_at + timedelta(hours=1))
    world.providers.provider(world.account.id).fail_for(phone(2), provider_error("63038", provider="twilio"))
    world.sender(schedules=schedules).send_batch(world.account.id, world.records())

    # THEN the one resume stays at the first pause's reset
    assert {name: s.at for name, s in schedules.schedules.items()} == {"q_main-resume": paused_at + DAILY_WINDOW}
