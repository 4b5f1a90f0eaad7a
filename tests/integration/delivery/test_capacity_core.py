"""The delivery core's write paths on moto: counters beside the jobs, the fallbacks that keep a sent message sent,
the planner's fan-out, and job expiry."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ApiClient, phone
from tests.integration.delivery.conftest import (
    Pipeline,
    assert_counters_add_up,
    new_queue,
    process,
    sandbox_account,
)
from wabacast.adapters.dynamodb.base import TableGateway, TransactionCancelledError
from wabacast.adapters.dynamodb.counters import DELTA_PREFIX, queue_partition
from wabacast.adapters.dynamodb.jobs import DynamoJobStore, job_partitions
from wabacast.domain.jobs import JobMove, JobStatus
from wabacast.settings import Settings
from wabacast.storage.table import TTL_ATTRIBUTE


def _store(settings: Settings, **kwargs: Any) -> DynamoJobStore:
    table = TableGateway(boto3.client("dynamodb", region_name=settings.region), settings.table_name)
    return DynamoJobStore(table, **kwargs)


def _counters(store: DynamoJobStore, queue_id: str) -> dict[str, int]:
    counters = store.tally(queue_id).counters
    return {
        "total": counters.total,
        "pending": counters.pending,
        "sent": counters.sent,
        "failed": counters.failed,
        "optedOut": counters.opted_out,
        "skipped": counters.skipped,
    }


def _claimed_and_accepted(
    business: ApiClient, pipeline: Pipeline, store: DynamoJobStore, phone_number: str
) -> tuple[dict[str, Any], JobMove]:
    """A one-recipient queue whose job is claimed, and the SENT move its provider's acceptance makes."""
    sandbox_account(business, phone(1))
    queue = new_queue(business, [phone_number])
    process(business, queue["id"])
    pipeline.tick()
    (job,) = pipeline.jobs(queue["id"])
    claim = job.claim(account_id="acc", now=datetime.now(UTC))
    assert store.claim(claim)
    return queue, claim.job.move(JobStatus.SENT, now=datetime.now(UTC), provider_message_id=f"wamid.{phone_number}")


def test_counters_add_up_while_8_threads_settle_jobs_of_one_queue(
    business: ApiClient, pipeline: Pipeline, settings: Settings
) -> None:
    # GIVEN a planned queue of 400 jobs
    sandbox_account(business, phone(1))
    recipients = [phone(20_000 + n) for n in range(400)]
    queue = new_queue(business, recipients)
    process(business, queue["id"])
    pipeline.tick()
    jobs = pipeline.jobs(queue["id"])
    assert len(jobs) == len(recipients)
    store = _store(settings)

    # WHEN 8 threads claim and settle them in batches of 10 (as 8 senders would) while another thread reads the
    # counters over and over
    batches = [jobs[start : start + 10] for start in range(0, len(jobs), 10)]
    errors: list[BaseException] = []
    seen: list[dict[str, int]] = []
    done = threading.Event()

    def sender(worker: int) -> None:
        try:
            for batch in batches[worker::8]:
                now = datetime.now(UTC)
                claims = [job.claim(account_id="acc", now=now) for job in batch]
                assert all(store.claim(claim) for claim in claims)
                outcome = [
                    claim.job.move(JobStatus.SENT if index % 4 else JobStatus.FAILED, now=datetime.now(UTC))
                    for index, claim in enumerate(claims)
                ]
                assert len(store.settle(outcome)) == len(outcome)
        except BaseException as error:
            errors.append(error)

    def reader() -> None:
        while not done.is_set():
            seen.append(_counters(store, queue["id"]))

    watcher = threading.Thread(target=reader)
    watcher.start()
    workers = [threading.Thread(target=sender, args=(worker,)) for worker in range(8)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    watcher.join()

    # THEN every read in between added up, and the end state matches the jobs one for one
    assert errors == []
    assert len(seen) > 3
    for counters in seen:
        assert_counters_add_up(counters)
    final = _counters(store, queue["id"])
    statuses = pipeline.job_statuses(queue["id"])
    # (in each batch of 10, jobs 0, 4 and 8 failed)
    assert final["sent"] == statuses["SENT"] == 280
    assert final["failed"] == statuses["FAILED"] == 120
    assert final["pending"] == 0
    assert_counters_add_up(final)


def test_a_counter_write_that_keeps_conflicting_leaves_the_provider_accepted_job_sent(
    business: ApiClient, pipeline: Pipeline, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a claimed job the provider accepted
    store = _store(settings, sleep=lambda _: None)
    queue, sent = _claimed_and_accepted(business, pipeline, store, phone(21_000))
    # AND a counter shard that every transaction conflicts on (another sender's transaction holds it each time)
    attempts: list[int] = []
    original = TableGateway.transact

    def conflicting(self: TableGateway, operations: list[dict[str, Any]]) -> None:
        attempts.append(len(operations))
        if len(attempts) <= 7:
            raise TransactionCancelledError(["None", "TransactionConflict"])
        original(self, operations)

    monkeypatch.setattr(TableGateway, "transact", conflicting)

    # WHEN the outcome is settled
    applied = store.settle([sent])

    # THEN after the bounded retries it was written with a delta item of its own: the job is SENT and the
    # counters already count it
    assert applied == [sent]
    assert len(attempts) == 8
    (stored,) = pipeline.jobs(queue["id"])
    assert stored.status == JobStatus.SENT
    counters = _counters(store, queue["id"])
    assert counters["sent"] == 1
    assert counters["pending"] == 0
    assert_counters_add_up(counters)
    deltas = store._table.query_page(
        partition_attribute="PK",
        partition_value=queue_partition(queue["id"]),
        sort_attribute="SK",
        sort_prefix=DELTA_PREFIX,
        limit=10,
        next_token=None,
    )[0]
    assert len(deltas) == 1


def test_a_counter_write_that_cannot_be_made_at_all_still_leaves_the_job_sent(
    business: ApiClient, pipeline: Pipeline, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a claimed job the provider accepted, and DynamoDB throttling every transaction
    store = _store(settings, sleep=lambda _: None)
    queue, sent = _claimed_and_accepted(business, pipeline, store, phone(21_100))

    def throttled(self: TableGateway, operations: list[dict[str, Any]]) -> None:
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        raise ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]

    monkeypatch.setattr(TableGateway, "transact", throttled)

    # WHEN the outcome is settled
    applied = store.settle([sent])

    # THEN the job is SENT all the same (a counter write never fails a sent message)
    assert applied == [sent]
    (stored,) = pipeline.jobs(queue["id"])
    assert stored.status == JobStatus.SENT
    assert stored.provider_message_id == sent.job.provider_message_id


def test_the_planner_tick_fans_out_and_plans_50_accounts(
    business: ApiClient, make_pipeline: Callable[..., Pipeline]
) -> None:
    # GIVEN 50 accounts, each with a started queue
    pipeline = make_pipeline()
    queues = []
    for index in range(50):
        account = sandbox_account(business, phone(22_000 + index))
        queue = new_queue(business, [phone(23_000 + index)], accountId=account["id"])
        process(business, queue["id"])
        queues.append(queue)

    # WHEN the schedule ticks once
    report = pipeline.tick()

    # THEN the tick handed out one message per account, and the plan workers planned and fed every queue
    assert report["dispatched"] == 50
    assert report["accounts"] == 50
    assert report["jobs_planned"] == 50
    assert report["jobs_fed"] == 50
    for queue in queues:
        progress = pipeline.progress(queue["id"])
        assert progress["counters"]["total"] == 1


def test_jobs_expire_after_the_retention_days(business: ApiClient, pipeline: Pipeline, settings: Settings) -> None:
    # GIVEN a queue planned now (JOB_RETENTION_DAYS is 90 by default)
    sandbox_account(business, phone(1))
    queue = new_queue(business, [phone(24_000), phone(24_001)])
    process(business, queue["id"])
    before = time.time()
    pipeline.tick()

    # WHEN its job items are read raw
    table = TableGateway(boto3.client("dynamodb", region_name=settings.region), settings.table_name)
    items = [
        item
        for partition in job_partitions(queue["id"])
        for item in table.query_page(
            partition_attribute="PK",
            partition_value=partition,
            sort_attribute="SK",
            sort_prefix="JOB#",
            limit=10,
            next_token=None,
        )[0]
    ]

    # THEN each carries the table's TTL attribute, 90 days out, and the queue's totals live elsewhere
    assert len(items) == 2
    for item in items:
        assert before + 90 * 86_400 - 5 <= int(item[TTL_ATTRIBUTE]) <= time.time() + 90 * 86_400 + 5
    assert pipeline.progress(queue["id"])["counters"]["total"] == 2
