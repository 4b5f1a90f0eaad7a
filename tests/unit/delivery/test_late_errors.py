"""Corrections to the send-time error table on the delivery fakes: the per-user marketing limit is tried again hours
later by the planner (a delayed re-feed) except for +1 numbers, 131050 opts a number out of marketing templates only,
and a pause whose limit lifts by itself says when."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.delivery.builders import NOW
from tests.unit.delivery.conftest import DeliveryWorld, counters_add_up
from tests.unit.delivery_fakes import provider_error
from tests.unit.fakes import FakeContactStore, phone
from wabacast.domain.jobs import ErrorClass, JobError, JobStatus
from wabacast.domain.models import OptOut, OptOutScope, OptOutSource, QueueStatus, TemplateCategory
from wabacast.logic.fates import MARKETING_LIMIT_DELAYS, FailureFates

US_NUMBER = "+16505550123"


def _job(world: DeliveryWorld, number: str = phone(1), queue_id: str = "q_main"):  # type: ignore[no-untyped-def]
    return world.jobs.job_of_phone(queue_id, number)


# The per-user marketing limit ---------------------------------------------------------------------------------------
def test_the_marketing_limit_feeds_the_job_again_hours_later_with_growing_delays_then_fails(
    world: DeliveryWorld,
) -> None:
    # GIVEN a fed job whose recipient (not a +1 number) hits Meta's per-user marketing limit on every send
    world.add_queue(recipients=[phone(1)])
    world.plan()
    world.providers.provider(world.account.id).fail_for(phone(1), provider_error("131049", recipient=phone(1)))
    sender = world.sender()
    start = world.clock.now
    waited: list[timedelta] = []

    for delay in MARKETING_LIMIT_DELAYS:
        # WHEN a sender gets it
        result = sender.send_batch(world.account.id, world.records())
        # THEN it is neither retried through SQS nor failed: the job waits for the planner, `delay` from now
        job = _job(world)
        assert (result.retry, result.failed, result.sent) == (set(), 0, 0)
        assert job.status == JobStatus.PENDING
        assert job.not_before == world.clock.now + delay
        assert job.last_error is not None
        assert job.last_error.code == "131049"
        assert job.last_error.error_class == ErrorClass.RETRY_LATER
        waited.append(delay)
        # AND a tick before it is due feeds nothing
        fed = len(world.feed.job_ids(world.account.id))
        world.set_time(job.not_before - timedelta(minutes=1))
        world.plan()
        assert len(world.feed.job_ids(world.account.id)) == fed
        # AND the first tick after it feeds it again, leaving the deferred index
        world.set_time(job.not_before + timedelta(seconds=1))
        world.plan()
        assert world.feed.job_ids(world.account.id)[fed:] == [job.id]
        assert _job(world).not_before is None

    # WHEN the limit still holds after the last delay
    sender.send_batch(world.account.id, world.records())
    # THEN the job fails with the error, after waits that grew each time; the queue's counters add up
    job = _job(world)
    assert job.status == JobStatus.FAILED
    assert job.last_error is not None
    assert job.last_error.code == "131049"
    assert waited == sorted(waited)
    assert len(set(waited)) == len(waited)
    assert world.clock.now - start >= sum(MARKETING_LIMIT_DELAYS, timedelta())
    assert job.attempts == len(MARKETING_LIMIT_DELAYS) + 1
    counters = world.jobs.tally("q_main").counters
    assert (counters.pending, counters.failed) == (0, 1)
    assert counters_add_up(world)
    assert world.metrics.total("MessagesDeferred", account_id=world.account.id) == len(MARKETING_LIMIT_DELAYS)


def test_a_deferred_job_is_sent_once_the_limit_lifted(world: DeliveryWorld) -> None:
    # GIVEN a job deferred once by the marketing limit
    world.add_queue(recipients=[phone(1)])
    world.plan()
    world.providers.provider(world.account.id).fail_next(provider_error("131049", recipient=phone(1)))
    world.sender().send_batch(world.account.id, world.records())
    # WHEN it is due, fed again and the provider takes it
    world.set_time(_job(world).not_before + timedelta(seconds=1))  # type: ignore[operator]
    world.plan()
    result = world.sender().send_batch(world.account.id, world.records())
    # THEN it is sent, and the queue completes on the next tick
    assert result.sent == 1
    assert _job(world).status == JobStatus.SENT
    world.plan()
    assert world.queue().status == QueueStatus.COMPLETED


def test_a_plus_one_number_fails_at_once_on_the_marketing_limit(world: DeliveryWorld) -> None:
    # GIVEN a fed job for a US number (Meta delivers no marketing template there since April 2025)
    world.add_queue(recipients=[US_NUMBER])
    world.plan()
    world.providers.provider(world.account.id).fail_next(provider_error("131049", recipient=US_NUMBER))
    # WHEN a sender gets it
    result = world.sender().send_batch(world.account.id, world.records())
    # THEN the job fails for good: nothing is deferred
    job = _job(world, US_NUMBER)
    assert (result.failed, job.status, job.not_before) == (1, JobStatus.FAILED, None)
    assert job.last_error is not None
    assert job.last_error.error_class == ErrorClass.PERMANENT


def test_an_early_copy_of_a_deferred_job_is_dropped_and_the_sweep_leaves_it_alone(world: DeliveryWorld) -> None:
    # GIVEN a deferred job, and a copy of its earlier message still on its way (a sweep's second copy)
    world.add_queue(recipients=[phone(1)])
    world.plan()
    (record,) = world.records()
    world.providers.provider(world.account.id).fail_next(provider_error("131049", recipient=phone(1)))
    world.sender().send_batch(world.account.id, [record])
    deferred = _job(world)
    # WHEN the copy arrives an hour later, and the sweep runs long after the feeding
    world.set_time(NOW + timedelta(hours=1))
    result = world.sender().send_batch(world.account.id, [record])
    world.plan(requeue_after_s=60)
    # THEN nothing is sent or written, and the sweep feeds nothing: the job waits for its time
    assert (result.sent, result.failed) == (0, 0)
    assert len(world.providers.provider(world.account.id).attempted) == 1
    assert _job(world) == deferred
    assert world.feed.job_ids(world.account.id) == [deferred.id]


def test_cancelling_a_queue_skips_its_deferred_jobs(world: DeliveryWorld) -> None:
    # GIVEN a queue with a job deferred by the marketing limit
    world.add_queue(recipients=[phone(1), phone(2)])
    world.plan()
    world.providers.provider(world.account.id).fail_for(phone(1), provider_error("131049", recipient=phone(1)))
    world.sender().send_batch(world.account.id, world.records())
    # WHEN the queue is cancelled and the planner runs
    world.processing().cancel(world.business.id, "q_main")
    world.plan()
    # THEN the deferred job is skipped and the counters add up with nothing pending
    assert _job(world).status == JobStatus.SKIPPED
    counters = world.jobs.tally("q_main").counters
    assert (counters.pending, counters.sent, counters.skipped) == (0, 1, 1)
    assert counters_add_up(world)
    assert world.jobs.deferred("q_main", 10) == []


# 131050: opted out of marketing only -------------------------------------------------------------------------------
def test_131050_opts_the_number_out_of_marketing_templates_only(world: DeliveryWorld) -> None:
    # GIVEN a marketing queue whose recipient stopped marketing messages at Meta
    world.add_queue(recipients=[phone(1)])
    world.plan()
    world.providers.provider(world.account.id).fail_next(provider_error("131050"))
    # WHEN a sender gets it
    world.sender().send_batch(world.account.id, world.records())
    # THEN the job fails and the number is opted out of marketing, with the provider as source
    assert _job(world).status == JobStatus.FAILED
    opt_out = world.contacts.get_opt_out(world.business.id, phone(1))
    assert opt_out is not None
    assert (opt_out.scope, opt_out.source) == (OptOutScope.MARKETING, OptOutSource.PROVIDER)

    # WHEN a utility queue and another marketing queue then target the same number
    utility = {"name": "order_update", "language": "en", "category": "utility"}
    world.add_queue("q_utility", recipients=[phone(1)], template=utility)
    world.add_queue("q_promo", recipients=[phone(1)])
    world.plan()
    results = world.deliver()
    # THEN the utility template reaches it and the marketing one is opted out at plan time
    assert sum(result.sent for result in results) == 1
    assert _job(world, queue_id="q_utility").status == JobStatus.SENT
    assert _job(world, queue_id="q_promo").status == JobStatus.OPTED_OUT
    assert counters_add_up(world, ("q_main", "q_utility", "q_promo"))


def test_the_sender_checks_the_opt_out_scope_against_the_queues_category(world: DeliveryWorld) -> None:
    # GIVEN a marketing and a utility queue to the same number, both fed, and then a marketing-only opt-out
    world.add_queue("q_promo", recipients=[phone(1)])
    world.add_queue(
        "q_utility", recipients=[phone(1)], template={"name": "otp", "language": "en", "category": "utility"}
    )
    world.plan()
    world.contacts.add_opt_out(
        world.business.id,
        OptOut(phone_number=phone(1), source=OptOutSource.API, created_at=NOW, scope=OptOutScope.MARKETING),
    )
    # WHEN senders get them
    world.deliver()
    # THEN only the marketing job is opted out at send time
    assert _job(world, queue_id="q_promo").status == JobStatus.OPTED_OUT
    assert _job(world, queue_id="q_utility").status == JobStatus.SENT


def test_an_opt_out_of_everything_stops_every_category_and_widens_a_marketing_one(
    contact_store: FakeContactStore,
) -> None:
    # GIVEN a number opted out of marketing only
    marketing = OptOut(phone_number=phone(1), source=OptOutSource.PROVIDER, created_at=NOW, scope=OptOutScope.MARKETING)
    contact_store.add_opt_out("biz", marketing)
    assert contact_store.opted_out_among("biz", [phone(1)], category=TemplateCategory.UTILITY) == set()
    # WHEN it then opts out of everything (a STOP reply)
    everything = OptOut(phone_number=phone(1), source=OptOutSource.STOP_REPLY, created_at=NOW)
    stored, created = contact_store.add_opt_out("biz", everything)
    # THEN the opt-out covers every category; a later marketing-only one does not narrow it
    assert (stored.scope, created) == (OptOutScope.ALL, True)
    for category in TemplateCategory:
        assert contact_store.opted_out_among("biz", [phone(1)], category=category) == {phone(1)}
    _, created_again = contact_store.add_opt_out("biz", marketing)
    assert created_again is False
    assert contact_store.opted_out_among("biz", [phone(1)], category=TemplateCategory.UTILITY) == {phone(1)}


# Pauses that lift by themselves ------------------------------------------------------------------------------------
def test_twilios_daily_limit_pauses_the_queue_saying_when_it_resets(world: DeliveryWorld) -> None:
    # GIVEN a processing queue and its job that met Twilio's daily limit (63038)
    queue = world.add_queue(recipients=[phone(1)])
    world.plan()
    job = _job(world)
    error = JobError(code="63038", message="daily limit", error_class=ErrorClass.PAUSE_QUEUE)
    # WHEN the failure's fate is applied for a Twilio account
    FailureFates(contacts=world.contacts, lifecycle=world.lifecycle, clock=world.clock).apply(
        job, queue, error, provider="twilio"
    )
    # THEN the queue is paused, and the reason says when the rolling 24 hours let it send again
    paused = world.queue()
    assert paused.status == QueueStatus.PAUSED
    resets = (world.clock.now + timedelta(hours=24)).isoformat(timespec="minutes")
    assert paused.status_reason is not None
    assert paused.status_reason.startswith(f"until {resets} (limit resets): provider error 63038")


def test_twilios_spam_limit_pauses_the_queue_like_meta_131048(world: DeliveryWorld) -> None:
    # GIVEN three fed jobs, the first of which meets Twilio's spam rate limit (63018)
    world.add_queue(recipients=[phone(1), phone(2), phone(3)])
    world.plan()
    world.providers.provider(world.account.id).fail_for(phone(1), provider_error("63018", provider="twilio"))
    # WHEN a sender gets them
    world.sender().send_batch(world.account.id, world.records())
    # THEN that job fails and the queue is paused with the code as reason
    assert _job(world).status == JobStatus.FAILED
    queue = world.queue()
    assert queue.status == QueueStatus.PAUSED
    assert queue.status_reason is not None
    assert queue.status_reason.startswith("provider error 63018:")
