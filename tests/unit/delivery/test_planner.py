"""wabacast.logic.planner on the delivery fakes: materializing audiences, feeding accounts, sweeping, completing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.delivery.builders import NOW, numbers
from tests.unit.delivery.conftest import PLENTY, DeliveryWorld, counters_add_up
from tests.unit.delivery_fakes import FakePlanDispatch, provider_error
from tests.unit.fakes import phone
from wabacast.domain.jobs import JobStatus, job_id_for
from wabacast.domain.models import (
    AccountLimits,
    AccountStatus,
    ActiveHours,
    Contact,
    MessagingTier,
    OptOut,
    OptOutSource,
    QualityRating,
    QueueStatus,
)
from wabacast.logic.planner import PAGE_SIZE


def _contact(number: str, *, name: str | None = None, tags: tuple[str, ...] = ()) -> Contact:
    return Contact(phone_number=number, name=name, tags=list(tags), created_at=NOW, updated_at=NOW)


def _fed_phones(world: DeliveryWorld, account_id: str | None = None) -> list[str]:
    return [message.group_id for message in world.feed.sent.get(account_id or world.account.id, [])]


# Materializing -----------------------------------------------------------------------------------------------------
def test_inline_recipients_are_planned_page_by_page_with_one_job_per_number(world: DeliveryWorld) -> None:
    # GIVEN 240 numbers, two of them listed twice (one repeat on the same page, one on a later page)
    recipients = numbers(240)
    recipients.insert(150, phone(1))
    recipients.insert(10, phone(2))
    world.add_queue(recipients=recipients)
    # WHEN the account is planned
    report = world.plan()
    # THEN each number has one job, in order, with contiguous seqs, written in pages of PAGE_SIZE
    jobs = world.jobs.jobs_of("q_main")
    assert [job.phone_number for job in jobs] == numbers(240)
    assert [job.seq for job in jobs] == list(range(240))
    assert world.jobs.calls["commit_page"] == -(-len(recipients) // PAGE_SIZE)
    assert report.jobs_planned == 240
    plan = world.jobs.read_plan("q_main")
    assert (plan.done, plan.next_seq, plan.cursor) == (True, 240, None)
    counters = world.jobs.tally("q_main").counters
    assert (counters.total, counters.pending) == (240, 240)


def test_opted_out_numbers_and_missing_contact_values_are_settled_when_planned(world: DeliveryWorld) -> None:
    # GIVEN a queue whose variable needs the contact's name: one contact has it, one number has no contact, one
    # number opted out, and one recipient brings its own value
    world.contacts.save_many(world.business.id, [(_contact(phone(1), name="Ana"), [])])
    world.contacts.add_opt_out(
        world.business.id, OptOut(phone_number=phone(3), source=OptOutSource.API, created_at=NOW)
    )
    world.add_queue(
        recipients=[phone(1), phone(2), phone(3), (phone(4), {"1": "Bo"})], variables={"1": "Hi {{contact.name}}"}
    )
    # WHEN the account is planned
    report = world.plan()
    # THEN only the sendable jobs stay pending, with their variables rendered, and only they are fed
    jobs = {job.phone_number: job for job in world.jobs.jobs_of("q_main")}
    assert (jobs[phone(1)].status, jobs[phone(1)].variables) == (JobStatus.PENDING, {"1": "Hi Ana"})
    skipped = jobs[phone(2)]
    assert skipped.status == JobStatus.SKIPPED
    assert skipped.skip_reason is not None
    assert "{{contact.name}}" in skipped.skip_reason
    assert (jobs[phone(3)].status, jobs[phone(3)].skip_reason) == (JobStatus.OPTED_OUT, "opted out")
    assert (jobs[phone(4)].status, jobs[phone(4)].variables) == (JobStatus.PENDING, {"1": "Bo"})
    counters = world.jobs.tally("q_main").counters
    assert (counters.total, counters.pending, counters.skipped, counters.opted_out) == (4, 2, 1, 1)
    assert _fed_phones(world) == [phone(1), phone(4)]
    assert report.jobs_fed == 2


def test_contacts_of_the_queue_tags_follow_the_inline_recipients(world: DeliveryWorld) -> None:
    # GIVEN an inline recipient who is also tagged, and two more tagged contacts
    world.contacts.save_many(
        world.business.id,
        [(_contact(number, tags=("vip",)), []) for number in (phone(1), phone(2), phone(3))],
    )
    world.add_queue(recipients=[phone(1)], tags=["vip"])
    # WHEN the account is planned
    world.plan()
    # THEN the inline recipient comes first and nobody gets two jobs
    assert [job.phone_number for job in world.jobs.jobs_of("q_main")] == [phone(1), phone(2), phone(3)]
    assert world.jobs.read_plan("q_main").done


def test_a_page_written_before_a_crash_is_written_again_and_counted_once(world: DeliveryWorld) -> None:
    # GIVEN a planner that wrote its first page of jobs and died before committing the cursor
    world.add_queue(recipients=numbers(3))
    world.jobs.fail_next("commit_page", RuntimeError("lambda timed out"))
    crashed = world.plan()
    # WHEN the next run plans the queue again
    world.plan()
    # THEN its jobs are planned (and counted) once
    assert crashed.errors
    assert [job.phone_number for job in world.jobs.jobs_of("q_main")] == numbers(3)
    counters = world.jobs.tally("q_main").counters
    assert (counters.total, counters.pending) == (3, 3)


# Feeding -----------------------------------------------------------------------------------------------------------
def test_feeding_takes_priority_10_first_within_rate_times_window_minus_backlog(world: DeliveryWorld) -> None:
    # GIVEN a priority-1 queue started first and a priority-10 queue started later; 10 msg/s, a 10 s window and
    # 20 messages already waiting: room for 80
    world.add_queue("q_low", recipients=numbers(60), priority=1, created_at=NOW, started_at=NOW)
    later = NOW + timedelta(minutes=1)
    world.add_queue("q_high", recipients=numbers(50, start=101), priority=10, created_at=later, started_at=later)
    world.feed.set_backlog(world.account.id, 20)
    # WHEN the account is planned
    report = world.plan(feed_window_s=10)
    # THEN the priority-10 queue is fed whole, then the first 30 of the other
    assert report.jobs_fed == 80
    assert _fed_phones(world) == numbers(50, start=101) + numbers(30)
    assert world.jobs.read_plan("q_high").fed_seq == 49
    assert world.jobs.read_plan("q_low").fed_seq == 29
    assert world.metrics.total("JobsFed", account_id=world.account.id) == 80


def test_the_next_run_feeds_on_from_the_cursor_once_the_backlog_drained(world: DeliveryWorld) -> None:
    # GIVEN a queue of 80 fed up to the window (10 msg/s x 5 s = 50), and senders that then drained the backlog
    world.add_queue(recipients=numbers(80))
    first = world.plan(feed_window_s=5)
    world.feed.take(world.account.id)
    # WHEN the account is planned again a minute later
    world.wall.advance(60)
    second = world.plan(feed_window_s=5)
    # THEN the remaining 30 are fed, none twice
    assert (first.jobs_fed, second.jobs_fed) == (50, 30)
    assert _fed_phones(world) == numbers(80)
    assert world.jobs.read_plan("q_main").fed_seq == 79


def test_a_full_backlog_feeds_nothing(world: DeliveryWorld) -> None:
    # GIVEN a window's worth of messages still waiting (10 msg/s x 60 s)
    world.add_queue(recipients=numbers(5))
    world.feed.set_backlog(world.account.id, 600)
    # WHEN the account is planned
    report = world.plan()
    # THEN its jobs are planned, not fed
    assert (report.jobs_planned, report.jobs_fed) == (5, 0)
    assert world.jobs.read_plan("q_main").fed_seq == -1


def test_the_room_left_in_the_messaging_limit_caps_the_feed(world: DeliveryWorld) -> None:
    # GIVEN an account capped at 100 recipients per 24 h that messaged 95 in the last hours
    world.set_account(world.account, limits=AccountLimits(messages_per_second=10, daily_recipient_limit=100))
    world.rates.use(world.account.id, 95, world.wall() - 3 * 3600)
    world.add_queue(recipients=numbers(20))
    # WHEN the account is planned
    report = world.plan()
    # THEN only the 5 it may still reach are fed
    assert report.jobs_fed == 5
    assert _fed_phones(world) == numbers(5)


def test_messages_already_in_sqs_take_their_share_of_the_room_left(world: DeliveryWorld) -> None:
    # GIVEN an account with room for 5 more recipients and 3 messages still waiting in its SQS queue
    world.set_account(world.account, limits=AccountLimits(messages_per_second=10, daily_recipient_limit=100))
    world.rates.use(world.account.id, 95, world.wall() - 3 * 3600)
    world.feed.set_backlog(world.account.id, 3)
    world.add_queue(recipients=numbers(20))
    # WHEN the account is planned
    report = world.plan()
    # THEN only 2 more are fed
    assert report.jobs_fed == 2


def test_a_queue_outside_its_active_hours_is_planned_but_not_fed(world: DeliveryWorld) -> None:
    # GIVEN a queue that may send 18:00-22:00 UTC, planned at 10:00 UTC
    world.add_queue(recipients=numbers(3), active_hours=ActiveHours(start="18:00", end="22:00"))
    # WHEN the account is planned
    report = world.plan()
    # THEN its jobs wait unfed
    assert (report.jobs_planned, report.jobs_fed) == (3, 0)


def test_a_message_sqs_refuses_is_fed_again_by_the_next_run(world: DeliveryWorld) -> None:
    # GIVEN SQS refuses the second of three jobs (and takes the third)
    world.add_queue(recipients=numbers(3))
    second = job_id_for("q_main", phone(2))
    world.feed.refuse.add(second)
    # WHEN the account is planned, then planned again once SQS takes it
    first_run = world.plan()
    cursor_after_refusal = world.jobs.read_plan("q_main").fed_seq
    world.feed.refuse.clear()
    world.feed.take(world.account.id)
    world.wall.advance(60)
    second_run = world.plan()
    # THEN the cursor stops before the refused job, and the next run feeds from there
    assert (first_run.jobs_fed, cursor_after_refusal) == (1, 0)
    assert second_run.jobs_fed == 2
    assert world.jobs.read_plan("q_main").fed_seq == 2
    assert world.feed.job_ids(world.account.id).count(second) == 1


def test_handed_back_jobs_are_fed_before_new_ones(world: DeliveryWorld) -> None:
    # GIVEN a queue fed 10 at a time (10 msg/s x 1 s), whose first 5 fed jobs a sender handed back
    world.add_queue(recipients=numbers(30))
    world.plan(feed_window_s=1)
    world.feed.take(world.account.id)
    handed_back = world.jobs.jobs_of("q_main")[:5]
    world.jobs.settle([job.move(JobStatus.PENDING, now=world.clock.now, refeed=True) for job in handed_back])
    # WHEN the account is planned again a minute later
    world.wall.advance(60)
    report = world.plan(feed_window_s=1)
    # THEN the handed-back jobs go first, then new ones up to the window, and they are no longer handed back
    assert report.jobs_fed == 10
    assert _fed_phones(world)[10:] == numbers(5) + numbers(5, start=11)
    assert world.jobs.handed_back("q_main", 100) == []
    assert world.jobs.read_plan("q_main").fed_seq == 14


def test_a_paused_queue_is_not_fed(world: DeliveryWorld) -> None:
    # GIVEN a queue fed once and then paused
    queue = world.add_queue(recipients=numbers(30))
    world.plan(feed_window_s=1)
    world.feed.take(world.account.id)
    assert world.lifecycle.transition(
        queue, allowed_from=[QueueStatus.PROCESSING], to=QueueStatus.PAUSED, now=world.clock.now, register=False
    )
    # WHEN the account is planned again
    report = world.plan(feed_window_s=1)
    # THEN nothing more is fed and its jobs wait
    assert report.jobs_fed == 0
    assert len(world.feed.job_ids(world.account.id)) == 10
    assert world.statuses() == {JobStatus.PENDING: 30}


@pytest.mark.parametrize("status", [QueueStatus.PAUSED, QueueStatus.COMPLETED, QueueStatus.DRAFT])
def test_a_queue_left_in_the_registry_but_not_processing_is_unregistered_unfed(
    world: DeliveryWorld, status: QueueStatus
) -> None:
    # GIVEN a queue in the registry although it is not processing
    world.add_queue(recipients=numbers(3), status=status)
    # WHEN the account is planned
    report = world.plan()
    # THEN it is neither planned nor fed, and leaves the registry (whose empty entry goes with the lease)
    assert (report.jobs_planned, report.jobs_fed) == (0, 0)
    assert world.jobs.jobs_of("q_main") == []
    assert world.registry.account(world.business.id, world.account.id) is None


def test_a_queue_that_no_longer_exists_is_unregistered(world: DeliveryWorld) -> None:
    # GIVEN a registry entry naming a queue that was deleted
    world.registry.add(world.business.id, world.account.id, "q_deleted")
    # WHEN the account is planned
    report = world.plan()
    # THEN the entry is cleaned up without error
    assert report.errors == []
    assert world.registry.account(world.business.id, world.account.id) is None


# Cancel ------------------------------------------------------------------------------------------------------------
def test_cancel_turns_pending_jobs_into_skipped_and_the_counters_add_up(world: DeliveryWorld) -> None:
    # GIVEN a queue of 30 with 10 fed (5 of them sent) when it is cancelled
    queue = world.add_queue(recipients=numbers(30))
    world.plan(feed_window_s=1)
    sender = world.sender()
    sender.send_batch(world.account.id, world.records(limit=5))
    assert world.lifecycle.transition(
        queue,
        allowed_from=[QueueStatus.PROCESSING],
        to=QueueStatus.CANCELLED,
        now=world.clock.now,
        register=True,
        reason="cancelled by request",
    )
    # WHEN the account is planned, and a sender then gets the 5 fed jobs still in SQS
    report = world.plan(feed_window_s=1)
    late = sender.send_batch(world.account.id, world.records())
    # THEN every job still pending is skipped, the sent ones stay sent, and nothing else goes out
    assert report.errors == []
    assert report.jobs_fed == 0
    assert world.statuses() == {JobStatus.SENT: 5, JobStatus.SKIPPED: 25}
    assert (late.sent, late.retry) == (0, set())
    assert len(world.providers.sent) == 5
    counters = world.jobs.tally("q_main").counters
    assert (counters.total, counters.pending, counters.sent, counters.skipped) == (30, 0, 5, 25)
    assert counters_add_up(world)
    assert world.queue().counters == counters
    assert world.registered() == set()


def test_cancel_skips_a_handed_back_job_the_feed_cursor_had_not_passed(world: DeliveryWorld) -> None:
    # GIVEN SQS refused the second of three jobs but took the third (the feed cursor stays at the first), the
    # queue was paused and a sender handed the first and third back, and then the queue was cancelled
    queue = world.add_queue(recipients=numbers(3))
    world.feed.refuse.add(job_id_for("q_main", phone(2)))
    world.plan()
    world.feed.refuse.clear()
    assert world.lifecycle.transition(
        queue, allowed_from=[QueueStatus.PROCESSING], to=QueueStatus.PAUSED, now=world.clock.now, register=False
    )
    world.sender().send_batch(world.account.id, world.records())
    assert world.lifecycle.transition(
        queue, allowed_from=[QueueStatus.PAUSED], to=QueueStatus.CANCELLED, now=world.clock.now, register=True
    )
    # WHEN the account is planned
    report = world.plan()
    # THEN all three jobs are skipped and nothing is pending any more
    assert report.errors == []
    assert world.statuses() == {JobStatus.SKIPPED: 3}
    assert world.jobs.tally("q_main").counters.pending == 0


# Accounts that cannot send -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "trouble", [{"status": AccountStatus.SUSPENDED}, {"quality_rating": QualityRating.RED}], ids=["suspended", "red"]
)
def test_jobs_go_through_the_default_account_when_the_queue_account_cannot_send(
    world: DeliveryWorld, trouble: dict[str, object]
) -> None:
    # GIVEN a queue on an account that cannot send, and a healthy default account
    fallback = world.new_account(
        is_default=True, limits=AccountLimits(messages_per_second=10, daily_recipient_limit=1000)
    )
    world.set_account(world.account, **trouble)
    world.add_queue(recipients=numbers(3))
    # WHEN the queue's account is planned, and the default account's senders run
    report = world.plan()
    results = world.deliver(fallback)
    # THEN the jobs are fed to and sent through the default account, and the queue stays with its own account
    assert report.jobs_fed == 3
    assert _fed_phones(world, fallback.id) == numbers(3)
    assert world.account.id not in world.feed.sent
    assert sum(result.sent for result in results) == 3
    assert {job.account_id for job in world.jobs.jobs_of("q_main")} == {fallback.id}
    assert world.registered() == {"q_main"}


def test_a_queue_pauses_with_the_reason_when_no_account_can_send(world: DeliveryWorld) -> None:
    # GIVEN a queue on a suspended account, and a default account rated RED
    fallback = world.new_account(is_default=True)
    world.set_account(fallback, quality_rating=QualityRating.RED)
    world.set_account(world.account, status=AccountStatus.SUSPENDED)
    world.add_queue(recipients=numbers(3))
    # WHEN the account is planned
    report = world.plan()
    # THEN the queue is paused saying why, nothing is planned or fed, and it leaves the registry
    queue = world.queue()
    assert queue.status == QueueStatus.PAUSED
    assert queue.status_reason is not None
    assert f"account {world.account.id} cannot send (SUSPENDED/" in queue.status_reason
    assert "no healthy default account" in queue.status_reason
    assert (report.jobs_planned, report.jobs_fed) == (0, 0)
    assert world.feed.sent == {}
    assert world.registry.account(world.business.id, world.account.id) is None


# Completing --------------------------------------------------------------------------------------------------------
def test_a_queue_completes_once_planned_and_nothing_is_pending(world: DeliveryWorld) -> None:
    # GIVEN a queue whose jobs were all sent
    world.add_queue(recipients=numbers(5))
    first = world.plan()
    world.deliver()
    world.clock.advance(minutes=1)
    # WHEN the account is planned again
    second = world.plan()
    # THEN it completes, leaves the registry, and its counters snapshot shows the sends
    queue = world.queue()
    assert (first.queues_completed, second.queues_completed) == (0, 1)
    assert (queue.status, queue.completed_at) == (QueueStatus.COMPLETED, world.clock.now)
    assert (queue.counters.total, queue.counters.sent, queue.counters.pending) == (5, 5, 0)
    assert world.registry.account(world.business.id, world.account.id) is None


def test_a_queue_whose_every_number_opted_out_completes_in_its_first_run(world: DeliveryWorld) -> None:
    # GIVEN a queue whose only recipients opted out
    for number in numbers(2):
        world.contacts.add_opt_out(
            world.business.id, OptOut(phone_number=number, source=OptOutSource.STOP_REPLY, created_at=NOW)
        )
    world.add_queue(recipients=numbers(2))
    # WHEN the account is planned
    report = world.plan()
    # THEN it completes at once with its opt-outs counted
    assert report.queues_completed == 1
    assert world.queue().status == QueueStatus.COMPLETED
    assert world.queue().counters.opted_out == 2


def test_a_queue_reopened_by_retry_failed_after_the_planner_read_it_is_not_completed(world: DeliveryWorld) -> None:
    # GIVEN a processing queue whose only job failed with a retryable cause (max 1 attempt): nothing is pending
    world.add_queue(recipients=numbers(1), max_attempts=1)
    world.plan()
    world.providers.provider(world.account.id).fail_next(provider_error("131000", http_status=500))
    world.deliver()
    processing = world.processing()

    def retry_failed_meanwhile() -> None:
        world.clock.advance(seconds=1)
        assert processing.retry_failed(world.business.id, "q_main").requeued == 1

    # WHEN a retry-failed runs after the planner read the queue, just before it would complete it
    world.lifecycle.before_next("transition", retry_failed_meanwhile)
    report = world.plan()
    # THEN the queue stays processing and registered, and the next run feeds the job again
    assert report.queues_completed == 0
    assert world.queue().status == QueueStatus.PROCESSING
    assert world.registered() == {"q_main"}
    world.providers.provider(world.account.id).heal()
    world.wall.advance(60)
    world.plan()
    assert sum(result.sent for result in world.deliver()) == 1


# Sweep -------------------------------------------------------------------------------------------------------------
def test_the_sweep_feeds_again_jobs_fed_long_ago_that_no_sender_claimed(world: DeliveryWorld) -> None:
    # GIVEN six jobs fed at once: senders sent two, and the other four messages were lost before any sender
    world.add_queue(recipients=numbers(6))
    world.plan()
    world.sender().send_batch(world.account.id, world.records(limit=2))
    world.feed.take(world.account.id)
    # WHEN the account is planned just before and just after requeue_after_s, and again much later
    world.wall.advance(899)
    early = world.plan(requeue_after_s=900)
    world.wall.advance(2)
    due = world.plan(requeue_after_s=900)
    world.wall.advance(1000)
    later = world.plan(requeue_after_s=900)
    # THEN the four unclaimed jobs are fed again once, with a new deduplication id
    assert (early.jobs_requeued, due.jobs_requeued, later.jobs_requeued) == (0, 4, 0)
    requeued = world.feed.sent[world.account.id][6:]
    assert [message.group_id for message in requeued] == numbers(4, start=3)
    first_feeding = {message.job_id: message.deduplication_id for message in world.feed.sent[world.account.id][:6]}
    assert all(message.deduplication_id != first_feeding[message.job_id] for message in requeued)
    assert world.metrics.total("JobsRequeued") == 4
    assert world.jobs.read_plan("q_main").swept_seq == 5


# Tick --------------------------------------------------------------------------------------------------------------
def test_the_tick_dispatches_one_message_per_active_account_and_plans_nothing_itself(world: DeliveryWorld) -> None:
    # GIVEN two accounts with a queue each, and a plan queue that refuses nothing
    other = world.new_account()
    world.add_queue("q_one", recipients=numbers(2))
    world.add_queue("q_two", recipients=numbers(2), account=other)
    dispatch = FakePlanDispatch()
    # WHEN the schedule ticks
    report = world.planner(dispatch=dispatch).tick(PLENTY)
    # THEN each account gets one "plan account" message and nothing is planned, fed or leased here
    assert sorted(message.account_id for message in dispatch.dispatched) == sorted([world.account.id, other.id])
    assert {message.business_id for message in dispatch.dispatched} == {world.business.id}
    assert (report.dispatched, report.accounts, report.jobs_planned) == (2, 0, 0)
    assert world.jobs.jobs_of("q_one") == []
    assert world.feed.sent == {}
    assert world.registry.leases == {}


def test_the_tick_reports_an_account_the_plan_queue_refused(world: DeliveryWorld) -> None:
    # GIVEN an account with a queue, and a plan queue that refuses its message
    world.add_queue(recipients=numbers(1))
    dispatch = FakePlanDispatch()
    dispatch.refuse.add(world.account.id)
    # WHEN the schedule ticks
    report = world.planner(dispatch=dispatch).tick(PLENTY)
    # THEN the refusal is reported
    assert report.dispatched == 0
    assert report.errors == [f"{world.account.id}: not dispatched"]


@pytest.mark.parametrize("with_dispatch", [True, False], ids=["dispatch", "in-process"])
def test_the_tick_emits_its_heartbeat_even_with_nothing_to_plan(world: DeliveryWorld, with_dispatch: bool) -> None:
    # GIVEN an empty registry
    dispatch = FakePlanDispatch() if with_dispatch else None
    # WHEN the schedule ticks
    report = world.planner(dispatch=dispatch).tick(PLENTY)
    # THEN the heartbeat is counted, without an account dimension
    assert world.metrics.total("PlannerTick", account_id=None) == 1
    assert (report.accounts, report.dispatched, report.errors) == (0, 0, [])


def test_the_tick_without_dispatch_plans_every_active_account(world: DeliveryWorld) -> None:
    # GIVEN two accounts with a queue each
    other = world.new_account()
    world.add_queue("q_one", recipients=numbers(2))
    world.add_queue("q_two", recipients=numbers(3), account=other)
    # WHEN the schedule ticks with no plan queue (one-process tools)
    report = world.planner().tick(PLENTY)
    # THEN both accounts are planned and fed
    assert (report.accounts, report.jobs_planned, report.jobs_fed) == (2, 5, 5)
    assert len(world.feed.sent[other.id]) == 3


def test_an_account_another_planner_holds_is_skipped(world: DeliveryWorld) -> None:
    # GIVEN an account whose lease another planner holds
    world.add_queue(recipients=numbers(2))
    assert world.registry.acquire_lease(world.business.id, world.account.id, now=world.wall(), seconds=300)
    # WHEN the account is planned
    report = world.plan()
    # THEN it is left alone
    assert (report.skipped_busy, report.accounts, report.jobs_planned) == (1, 0, 0)


def test_an_account_that_left_the_registry_has_no_work(world: DeliveryWorld) -> None:
    # GIVEN / WHEN a plan message arrives for an account that is not registered
    report = world.plan()
    # THEN nothing happens
    assert (report.accounts, report.skipped_busy, report.errors) == (0, 0, [])


# Scale -------------------------------------------------------------------------------------------------------------
def test_one_account_at_1000_per_second_gets_a_minute_of_jobs_in_one_run(world: DeliveryWorld) -> None:
    # GIVEN an account at 1,000 msg/s with 61 queues of 1,000 inline recipients each (61,000 jobs to plan)
    world.set_account(
        world.account,
        limits=AccountLimits(messages_per_second=1000, daily_recipient_limit=1_000_000),
        messaging_tier=MessagingTier.TIER_UNLIMITED,
    )
    recipients = numbers(1000)
    for index in range(61):
        started = NOW + timedelta(seconds=index)
        world.add_queue(f"q_{index:02d}", recipients=recipients, created_at=started, started_at=started)
    # WHEN the account is planned once, with a 60 s feed window
    report = world.plan(feed_window_s=60)
    # THEN every job is planned and a minute of them (60,000) is fed, the queue started last waiting
    assert report.errors == []
    assert report.jobs_planned == 61_000
    assert report.jobs_fed == 60_000
    assert len(world.feed.sent[world.account.id]) == 60_000
    assert world.jobs.read_plan("q_59").fed_seq == 999
    assert world.jobs.read_plan("q_60").fed_seq == -1
