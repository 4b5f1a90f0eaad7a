"""wabacast.logic.processing on the delivery fakes: the queue lifecycle, retry-failed and live progress."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.delivery.builders import NOW, make_job, numbers
from tests.unit.delivery.conftest import DeliveryWorld, counters_add_up
from tests.unit.delivery_fakes import provider_error
from tests.unit.fakes import phone
from wabacast.domain.delivery import PlanState
from wabacast.domain.jobs import ErrorClass, JobError, JobStatus
from wabacast.domain.models import QueueStatus
from wabacast.errors import ConflictError
from wabacast.logic.processing import RETRY_FAILED_LIMIT, ErrorSummary

RETRYABLE = provider_error("131000", http_status=500)
PERMANENT = provider_error("131026")


def _failed_and_completed(world: DeliveryWorld) -> None:
    """A queue of three (1 attempt each): one failed with a retryable cause, one for good, one sent; completed."""
    world.add_queue(recipients=numbers(3), max_attempts=1)
    provider = world.providers.provider(world.account.id)
    provider.fail_for(phone(1), RETRYABLE)
    provider.fail_for(phone(2), PERMANENT)
    world.plan()
    world.deliver()
    world.clock.advance(minutes=1)
    world.wall.advance(60)
    world.plan()
    assert world.queue().status == QueueStatus.COMPLETED
    provider.heal()


# Retry failed ------------------------------------------------------------------------------------------------------
def test_retry_failed_requeues_retryable_failures_and_reopens_a_completed_queue(world: DeliveryWorld) -> None:
    # GIVEN a completed queue with a retryable failure, a permanent one and a sent job
    _failed_and_completed(world)
    world.clock.advance(minutes=1)
    # WHEN its failures are retried
    report = world.processing().retry_failed(world.business.id, "q_main")
    # THEN only the retryable one is pending again (handed back, attempts reset), and the queue is open again
    assert (report.requeued, report.more) == (1, False)
    retried = world.jobs.job_of_phone("q_main", phone(1))
    assert (retried.status, retried.refeed, retried.attempts) == (JobStatus.PENDING, True, 0)
    assert world.jobs.job_of_phone("q_main", phone(2)).status == JobStatus.FAILED
    queue = world.queue()
    assert (queue.status, queue.completed_at) == (QueueStatus.PROCESSING, None)
    assert world.registered() == {"q_main"}
    counters = world.jobs.tally("q_main").counters
    assert (counters.pending, counters.failed, counters.sent) == (1, 1, 1)
    assert counters_add_up(world)


def test_a_retried_failure_is_fed_again_sent_and_the_queue_completes_again(world: DeliveryWorld) -> None:
    # GIVEN a completed queue whose retryable failure was retried
    _failed_and_completed(world)
    world.processing().retry_failed(world.business.id, "q_main")
    # WHEN the planner and the senders run, and the planner once more
    world.wall.advance(60)
    fed = world.plan()
    results = world.deliver()
    world.clock.advance(minutes=1)
    done = world.plan()
    # THEN the job is sent and the queue completes again
    assert fed.jobs_fed == 1
    assert sum(result.sent for result in results) == 1
    assert done.queues_completed == 1
    assert world.queue().status == QueueStatus.COMPLETED
    assert world.statuses() == {JobStatus.SENT: 2, JobStatus.FAILED: 1}


def test_retry_failed_on_a_processing_queue_keeps_it_registered(world: DeliveryWorld) -> None:
    # GIVEN a processing queue with a retryable failure and a job still to send
    world.add_queue(recipients=numbers(2), max_attempts=1)
    world.plan()
    world.providers.provider(world.account.id).fail_next(RETRYABLE)
    world.sender().send_batch(world.account.id, world.records(limit=1))
    # WHEN its failures are retried
    report = world.processing().retry_failed(world.business.id, "q_main")
    # THEN the failure is pending again and the queue stays processing and registered
    assert report.requeued == 1
    assert world.queue().status == QueueStatus.PROCESSING
    assert world.registered() == {"q_main"}


def test_retry_failed_that_races_the_planner_completing_the_queue_keeps_it_open(world: DeliveryWorld) -> None:
    # GIVEN a processing queue whose only job failed with a retryable cause (nothing pending: the planner may
    # complete it), and a planner run that happens after retry-failed read the queue, before it requeued the job
    world.add_queue(recipients=numbers(1), max_attempts=1)
    world.plan()
    world.providers.provider(world.account.id).fail_next(RETRYABLE)
    world.deliver()
    world.clock.advance(minutes=1)
    world.wall.advance(60)

    def planner_runs_meanwhile() -> None:
        assert world.plan().queues_completed == 1

    world.jobs.before_next("settle", planner_runs_meanwhile)
    # WHEN its failures are retried
    report = world.processing().retry_failed(world.business.id, "q_main")
    # THEN the requeued job is not left in a completed queue that no planner looks at any more
    assert report.requeued == 1
    assert world.jobs.tally("q_main").counters.pending == 1
    assert world.queue().status == QueueStatus.PROCESSING
    assert world.registered() == {"q_main"}


@pytest.mark.parametrize("status", [QueueStatus.DRAFT, QueueStatus.SCHEDULED, QueueStatus.CANCELLED])
def test_retry_failed_needs_a_queue_that_ran(world: DeliveryWorld, status: QueueStatus) -> None:
    # GIVEN a queue that never ran, or was cancelled
    world.add_queue(recipients=numbers(1), status=status, register=False)
    # WHEN its failures are retried
    # THEN it is a conflict on its status
    with pytest.raises(ConflictError) as conflict:
        world.processing().retry_failed(world.business.id, "q_main")
    assert conflict.value.field == "status"


def test_retry_failed_takes_at_most_a_thousand_jobs_a_call(world: DeliveryWorld) -> None:
    # GIVEN a paused queue with 1,001 jobs failed with a retryable cause
    queue = world.add_queue(recipients=numbers(1), status=QueueStatus.PAUSED, register=False)
    error = JobError(code="131000", message="Something went wrong", error_class=ErrorClass.RETRYABLE)
    failed = [
        make_job(queue, seq, phone_number=phone(seq + 1), status=JobStatus.FAILED, last_error=error)
        for seq in range(RETRY_FAILED_LIMIT + 1)
    ]
    assert world.jobs.commit_page(queue.id, PlanState(), jobs=failed, cursor=None, done=True, now=NOW)
    # WHEN its failures are retried twice
    first = world.processing().retry_failed(world.business.id, queue.id)
    second = world.processing().retry_failed(world.business.id, queue.id)
    # THEN the first call takes 1,000 and says there are more, the second takes the last one
    assert (first.requeued, first.more) == (1000, True)
    assert (second.requeued, second.more) == (1, False)
    assert world.queue().status == QueueStatus.PAUSED
    assert world.jobs.tally(queue.id).counters.pending == RETRY_FAILED_LIMIT + 1


# Lifecycle ---------------------------------------------------------------------------------------------------------
def test_start_pause_resume_and_cancel_move_the_queue_in_and_out_of_the_registry(world: DeliveryWorld) -> None:
    # GIVEN a draft queue
    world.add_queue(recipients=numbers(1), status=QueueStatus.DRAFT, register=False)
    processing = world.processing()
    # WHEN it is started, paused, resumed, paused and cancelled
    steps = []
    for action in (processing.process, processing.pause, processing.resume, processing.pause, processing.cancel):
        world.clock.advance(seconds=1)
        progress = action(world.business.id, "q_main")
        steps.append((progress.status, world.registered() == {"q_main"}))
    # THEN the planner sees it while it runs, and once more when cancelled (to skip its waiting jobs)
    assert steps == [
        (QueueStatus.PROCESSING, True),
        (QueueStatus.PAUSED, False),
        (QueueStatus.PROCESSING, True),
        (QueueStatus.PAUSED, False),
        (QueueStatus.CANCELLED, True),
    ]


def test_a_queue_that_is_not_paused_cannot_be_resumed(world: DeliveryWorld) -> None:
    # GIVEN a processing queue
    world.add_queue(recipients=numbers(1))
    # WHEN it is resumed
    # THEN it is a conflict naming its status
    with pytest.raises(ConflictError, match="PROCESSING"):
        world.processing().resume(world.business.id, "q_main")


# Progress ----------------------------------------------------------------------------------------------------------
def _ten_jobs_six_settled(world: DeliveryWorld) -> None:
    """A queue started 100 s ago with ten jobs: three sent, two failed with 131026, one with 100, four pending."""
    queue = world.add_queue(recipients=numbers(10), started_at=NOW - timedelta(seconds=100))
    jobs = [make_job(queue, seq) for seq in range(10)]
    assert world.jobs.commit_page(queue.id, PlanState(), jobs=jobs, cursor=None, done=True, now=NOW)
    claimed = [job.claim(account_id=world.account.id, now=NOW) for job in jobs[:6]]
    assert all(world.jobs.claim(move) for move in claimed)
    undeliverable = JobError(code="131026", message="Message undeliverable", error_class=ErrorClass.PERMANENT)
    invalid = JobError(code="100", message="Invalid parameter", error_class=ErrorClass.PERMANENT)
    world.jobs.settle(
        [move.job.move(JobStatus.SENT, now=NOW) for move in claimed[:3]]
        + [move.job.move(JobStatus.FAILED, now=NOW, last_error=undeliverable) for move in claimed[3:5]]
        + [claimed[5].job.move(JobStatus.FAILED, now=NOW, last_error=invalid)]
    )


def test_progress_without_a_rate_sample_estimates_from_the_start(world: DeliveryWorld) -> None:
    # GIVEN ten jobs, six settled in the 100 s since the queue started, no rate sample yet
    _ten_jobs_six_settled(world)
    # WHEN its progress is read
    progress = world.processing().progress(world.business.id, "q_main")
    # THEN it is 60 % done at 0.06 msg/s, about 67 s from the end, with its errors most frequent first
    assert (progress.counters.total, progress.counters.pending) == (10, 4)
    assert progress.percent_done == 60.0
    assert progress.rate_per_second == 0.06
    assert progress.eta_seconds == pytest.approx(66.7)
    assert progress.last_errors == [
        ErrorSummary(code="131026", message="Message undeliverable", count=2),
        ErrorSummary(code="100", message="Invalid parameter", count=1),
    ]


def test_progress_uses_the_planner_rate_sample(world: DeliveryWorld) -> None:
    # GIVEN the same queue, with a rate of 2 msg/s sampled by the planner
    _ten_jobs_six_settled(world)
    world.jobs.record_rate("q_main", at=world.wall(), done=6, rate=2.0)
    # WHEN its progress is read
    progress = world.processing().progress(world.business.id, "q_main")
    # THEN the estimate follows the sample
    assert (progress.rate_per_second, progress.eta_seconds) == (2.0, 2.0)


def test_progress_of_a_completed_queue_without_jobs_is_done(world: DeliveryWorld) -> None:
    # GIVEN a completed queue that had nobody to send to
    world.add_queue(recipients=[], tags=["nobody"], status=QueueStatus.COMPLETED, register=False)
    # WHEN its progress is read
    progress = world.processing().progress(world.business.id, "q_main")
    # THEN it is 100 % done, with no estimate
    assert (progress.percent_done, progress.eta_seconds, progress.last_errors) == (100.0, None, [])
