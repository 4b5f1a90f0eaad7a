"""The messaging limit in the planner, the sender and the queue's progress: what does not fit in the account's
unique recipients per rolling 24 h is held (not fed, not failed) and the progress says when room returns."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.unit.delivery.builders import numbers
from tests.unit.delivery.conftest import DeliveryWorld
from tests.unit.fakes import phone
from wabacast.domain.jobs import JobStatus
from wabacast.domain.messaging_limit import SEND_MARGIN_S, WINDOW_S, bucket_expiry, bucket_of
from wabacast.domain.models import AccountLimits, MessagingTier

HOUR = 3600.0


def _tier_250(world: DeliveryWorld) -> None:
    world.set_account(
        world.account,
        limits=AccountLimits(messages_per_second=10, daily_recipient_limit=100_000),
        messaging_tier=MessagingTier.TIER_250,
    )


def test_a_sender_sends_what_fits_and_hands_the_rest_back_to_the_planner(world: DeliveryWorld) -> None:
    # GIVEN a 250-tier account that reached 248 recipients an hour ago, and 3 jobs to new recipients fed before
    _tier_250(world)
    world.add_queue(recipients=numbers(3))
    world.plan()
    records = world.records()
    world.rates.use(world.account.id, 248, world.wall() - HOUR)
    # WHEN a sender gets them
    result = world.sender().send_batch(world.account.id, records)
    # THEN two are sent, the third goes back to the planner: PENDING and handed back, neither failed nor retried
    assert result.sent == 2
    assert result.retry == set()
    assert world.statuses() == {JobStatus.SENT: 2, JobStatus.PENDING: 1}
    (held,) = [job for job in world.jobs.jobs_of("q_main") if job.status == JobStatus.PENDING]
    assert (held.refeed, held.attempts, held.phone_number) == (True, 0, phone(3))
    # AND the two recipients' 24 h windows are recorded, opened when the batch was reserved
    reserved_at = world.wall()
    assert world.rates.windows == {(world.account.id, phone(1)): reserved_at, (world.account.id, phone(2)): reserved_at}
    assert world.rates.usage(world.account.id, 250, world.wall()).used == 250


def test_a_recipient_messaged_in_the_last_24_h_goes_out_while_the_limit_is_full(world: DeliveryWorld) -> None:
    # GIVEN a 250-tier account at its limit, whose window with phone 1 opened 23 h ago
    _tier_250(world)
    world.add_queue(recipients=numbers(2))
    world.plan()
    records = world.records()
    world.rates.use(world.account.id, 250, world.wall() - 23 * HOUR)
    world.rates.record_windows(world.account.id, [phone(1)], opened_at=world.wall() - 23 * HOUR)
    # WHEN a sender gets a job for phone 1 and one for phone 2
    result = world.sender().send_batch(world.account.id, records)
    # THEN phone 1's goes out without counting again; phone 2's is held
    assert result.sent == 1
    assert [message.to for message in world.providers.sent] == [phone(1)]
    assert world.rates.usage(world.account.id, 250, world.wall()).used == 250


def test_the_planner_holds_jobs_beyond_the_limit_and_the_progress_says_when_room_returns(world: DeliveryWorld) -> None:
    # GIVEN a 250-tier account that reached 250 recipients, 10 of them 20 h ago and 240 of them 2 h ago
    _tier_250(world)
    first_at = world.wall() - 20 * HOUR
    world.rates.use(world.account.id, 10, first_at)
    world.rates.use(world.account.id, 240, world.wall() - 2 * HOUR)
    world.add_queue(recipients=numbers(30))
    # WHEN the account is planned
    report = world.plan()
    # THEN its jobs are planned but not fed, and none failed
    assert (report.jobs_planned, report.jobs_fed) == (30, 0)
    assert world.statuses() == {JobStatus.PENDING: 30}
    # AND the progress shows when the oldest 10 stop counting, 24 h (at most a bucket more) after they were taken
    resets_at = bucket_expiry(bucket_of(first_at))
    progress = world.processing().progress(world.business.id, "q_main")
    assert progress.limit_resets_at == datetime.fromtimestamp(resets_at, UTC)
    assert first_at + WINDOW_S <= resets_at <= first_at + WINDOW_S + 900
    assert progress.eta_seconds is None
    assert world.metrics.total("MessagingLimitReached", account_id=world.account.id) == 1


def test_when_room_returns_the_planner_feeds_what_fits_and_the_progress_clears(world: DeliveryWorld) -> None:
    # GIVEN the account above, held by its limit
    _tier_250(world)
    first_at = world.wall() - 20 * HOUR
    world.rates.use(world.account.id, 10, first_at)
    world.rates.use(world.account.id, 240, world.wall() - 2 * HOUR)
    world.add_queue(recipients=numbers(30))
    world.plan()
    # WHEN the time the oldest 10 stop counting comes, and the planner runs again
    world.set_time(datetime.fromtimestamp(bucket_expiry(bucket_of(first_at)), UTC))
    report = world.plan()
    # THEN the 10 that fit are fed, and the queue is no longer shown as held
    assert report.jobs_fed == 10
    assert world.jobs.read_plan("q_main").limit_resets_at is None
    assert world.processing().progress(world.business.id, "q_main").limit_resets_at is None


def test_a_lower_tier_takes_effect_at_the_next_reservation(world: DeliveryWorld) -> None:
    # GIVEN a 1K-tier account that reached 300 recipients, and three jobs fed to new recipients
    world.add_queue(recipients=numbers(3))
    world.plan()
    records = world.records()
    world.rates.use(world.account.id, 300, world.wall() - HOUR)
    # WHEN its tier is synced down to 250 and a sender gets the jobs
    _tier_250(world)
    result = world.sender().send_batch(world.account.id, records)
    # THEN none goes out: all are handed back
    assert result.sent == 0
    assert world.statuses() == {JobStatus.PENDING: 3}
    assert world.rates.calls_made[-1].recipient_limit == 250


def test_an_unlimited_tier_is_held_by_the_user_s_own_cap_alone(world: DeliveryWorld) -> None:
    # GIVEN an unlimited-tier account capped by its user at 2 recipients per 24 h, and three fed jobs
    world.set_account(
        world.account,
        limits=AccountLimits(messages_per_second=10, daily_recipient_limit=2),
        messaging_tier=MessagingTier.TIER_UNLIMITED,
    )
    world.add_queue(recipients=numbers(3))
    # WHEN the account is planned and a sender gets what was fed
    report = world.plan()
    result = world.sender().send_batch(world.account.id, world.records())
    # THEN two are fed and sent
    assert (report.jobs_fed, result.sent) == (2, 2)
    # AND counted in the bucket of the batch's last slot (plus the send margin)
    usage = world.rates.usage(world.account.id, 2, world.wall())
    assert usage.used == 2
    assert usage.resets_at == bucket_expiry(bucket_of(world.wall() + 0.1 + SEND_MARGIN_S))
