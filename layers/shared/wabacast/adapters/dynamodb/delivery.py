"""Delivery state in the table: queue lifecycle and planning cursor, jobs, the planner's account registry.

Items (besides the queue item at BIZ#<biz>/QUEUE#<q>):
  job              Q#<q> / JOB#<job>         GSI1: Q#<q>#PENDING | Q#<q>#QUEUED | Q#<q>#FAILED_RETRYABLE / <seq>
  planner registry PLANNER / ACCOUNT#<biz>#<acc>   queue_ids (string set) of queues needing the planner, lease
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from wabacast.adapters.dynamodb.base import (
    Item,
    TableGateway,
    TransactionCancelledError,
    business_pk,
    from_attributes,
    to_attributes,
)
from wabacast.adapters.dynamodb.queues import QUEUE_PREFIX, QueueRepository
from wabacast.domain.delivery import ActiveAccount, JobOutcome, PlanState, QueueProgress
from wabacast.domain.jobs import ErrorClass, Job, JobError, JobStatus
from wabacast.domain.models import Queue, QueueStatus
from wabacast.storage.table import GSI1, GSI2, PARTITION_KEY, SORT_KEY

REGISTRY_PK = "PLANNER"
_JOB_PREFIX = "JOB#"
# Jobs are findable by these states through the sparse GSI1 (the planner feeds PENDING, sweeps QUEUED, and
# retry-failed re-queues FAILED jobs whose cause was retryable).
_INDEXED = {JobStatus.PENDING: "PENDING", JobStatus.QUEUED: "QUEUED"}
_FAILED_RETRYABLE = "FAILED_RETRYABLE"


# Everything on a queue item but its compressed inline recipients.
_QUEUE_WITHOUT_RECIPIENTS = (
    *Queue.model_fields,
    "plan_cursor",
    "plan_version",
    "plan_done",
    "plan_next_seq",
    "error_counts",
    "error_messages",
    "rate_per_second",
    "rate_sample_at",
    "rate_sample_done",
)


def job_pk(queue_id: str) -> str:
    return f"Q#{queue_id}"


def _queue_key(business_id: str, queue_id: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": business_pk(business_id)}, SORT_KEY: {"S": f"{QUEUE_PREFIX}{queue_id}"}}


def _job_key(queue_id: str, job_id: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": job_pk(queue_id)}, SORT_KEY: {"S": f"{_JOB_PREFIX}{job_id}"}}


def _registry_key(business_id: str, account_id: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": REGISTRY_PK}, SORT_KEY: {"S": f"ACCOUNT#{business_id}#{account_id}"}}


def _iso(moment: datetime) -> str:
    return str(to_jsonable_python(moment))


def _index_label(job: Job) -> str | None:
    if job.status in _INDEXED:
        return _INDEXED[job.status]
    if job.status == JobStatus.FAILED and job.last_error and job.last_error.error_class == ErrorClass.RETRYABLE:
        return _FAILED_RETRYABLE
    return None


class DeliveryStore:
    def __init__(self, table: TableGateway) -> None:
        self._table = table
        self._queues = QueueRepository(table)

    # Queue lifecycle -----------------------------------------------------------------------------------------
    def read_queue(
        self, business_id: str, queue_id: str, *, with_recipients: bool = True
    ) -> tuple[Queue, QueueProgress] | None:
        """The queue and its delivery state; without its inline recipients (up to ~300 KB) unless asked for."""
        item = self._table.get(
            business_pk(business_id),
            f"{QUEUE_PREFIX}{queue_id}",
            attributes=None if with_recipients else _QUEUE_WITHOUT_RECIPIENTS,
        )
        if item is None:
            return None
        return QueueRepository._to_queue(item), self._progress(item)

    def transition(
        self,
        queue: Queue,
        *,
        allowed_from: Sequence[QueueStatus],
        to: QueueStatus,
        now: datetime,
        reason: str | None = None,
        register: bool | None = None,
        account_id: str | None = None,
    ) -> bool:
        """Move the queue to `to` if it is in one of `allowed_from`; add it to / remove it from the planner's
        registry in the same transaction. False when the status was not one of `allowed_from`."""
        values: dict[str, Any] = {
            ":to": {"S": to.value},
            ":gsi1": {"S": f"{business_pk(queue.business_id)}#QSTATUS#{to.value}"},
            ":gsi2": {"S": f"{to.value}#{queue.id}"},
            ":now": {"S": _iso(now)},
            ":empty": {"M": {}},
        }
        allowed = []
        for index, status in enumerate(allowed_from):
            values[f":from{index}"] = {"S": status.value}
            allowed.append(f":from{index}")
        sets = [
            "#status = :to",
            f"{GSI1.partition_key} = :gsi1",
            f"{GSI2.sort_key} = :gsi2",
            "updated_at = :now",
            "error_counts = if_not_exists(error_counts, :empty)",
            "error_messages = if_not_exists(error_messages, :empty)",
        ]
        removes = []
        if reason is None:
            removes.append("status_reason")
        else:
            sets.append("status_reason = :reason")
            values[":reason"] = {"S": reason}
        if to == QueueStatus.PROCESSING:
            sets.append("started_at = if_not_exists(started_at, :now)")
            removes.append("completed_at")  # retry-failed reopens a COMPLETED queue
        if to in (QueueStatus.COMPLETED, QueueStatus.CANCELLED, QueueStatus.FAILED):
            sets.append("completed_at = :now")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        operations: list[dict[str, Any]] = [
            {
                "Update": {
                    "Key": _queue_key(queue.business_id, queue.id),
                    "UpdateExpression": expression,
                    "ConditionExpression": f"#status IN ({', '.join(allowed)})",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        registry_account = account_id or queue.account_id
        if register is True:
            operations.append(self._registry_add(queue.business_id, registry_account, queue.id))
        elif register is False:
            operations.append(self._registry_remove(queue.business_id, registry_account, queue.id))
        try:
            self._table.transact(operations)
        except TransactionCancelledError as cancelled:
            if cancelled.failed(0):
                return False
            raise
        return True

    def complete_if_done(self, queue: Queue, now: datetime) -> bool:
        """PROCESSING -> COMPLETED once the audience is fully planned and no job is pending."""
        try:
            self._table.client.update_item(
                TableName=self._table.table_name,
                Key=_queue_key(queue.business_id, queue.id),
                UpdateExpression="SET #status = :done, completed_at = :now, updated_at = :now, "
                f"{GSI1.partition_key} = :gsi1, {GSI2.sort_key} = :gsi2",
                ConditionExpression="#status = :processing AND plan_done = :true AND counters.pending = :zero",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":done": {"S": QueueStatus.COMPLETED.value},
                    ":processing": {"S": QueueStatus.PROCESSING.value},
                    ":true": {"BOOL": True},
                    ":zero": {"N": "0"},
                    ":now": {"S": _iso(now)},
                    ":gsi1": {"S": f"{business_pk(queue.business_id)}#QSTATUS#{QueueStatus.COMPLETED.value}"},
                    ":gsi2": {"S": f"{QueueStatus.COMPLETED.value}#{queue.id}"},
                },
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return False
        self._table.client.update_item(
            TableName=self._table.table_name,
            Key=_registry_key(queue.business_id, queue.account_id),
            UpdateExpression="DELETE queue_ids :q",
            ExpressionAttributeValues={":q": {"SS": [queue.id]}},
        )
        return True

    def record_rate(self, queue: Queue, *, at: float, done: int, rate: float) -> None:
        self._table.client.update_item(
            TableName=self._table.table_name,
            Key=_queue_key(queue.business_id, queue.id),
            UpdateExpression="SET rate_sample_at = :at, rate_sample_done = :done, rate_per_second = :rate",
            ExpressionAttributeValues={
                ":at": {"N": repr(at)},
                ":done": {"N": str(done)},
                ":rate": {"N": f"{rate:.3f}"},
            },
        )

    # Planner registry and lease ------------------------------------------------------------------------------
    def active_accounts(self) -> builtins.list[ActiveAccount]:
        accounts: list[ActiveAccount] = []
        token: str | None = None
        while True:
            items, token = self._table.query_page(
                partition_attribute=PARTITION_KEY,
                partition_value=REGISTRY_PK,
                sort_attribute=SORT_KEY,
                sort_prefix="ACCOUNT#",
                limit=100,
                next_token=token,
            )
            accounts.extend(
                ActiveAccount(item["business_id"], item["account_id"], frozenset(item.get("queue_ids") or []))
                for item in items
            )
            if token is None:
                return accounts

    def acquire_lease(self, business_id: str, account_id: str, *, now: float, seconds: float) -> bool:
        """One planner at a time per account: materializing and feeding are then never interleaved."""
        try:
            self._table.client.update_item(
                TableName=self._table.table_name,
                Key=_registry_key(business_id, account_id),
                UpdateExpression="SET lease_until = :until",
                ConditionExpression=(
                    "attribute_exists(PK) AND (attribute_not_exists(lease_until) OR lease_until < :now)"
                ),
                ExpressionAttributeValues={":until": {"N": repr(now + seconds)}, ":now": {"N": repr(now)}},
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_lease(self, business_id: str, account_id: str) -> None:
        """Release, and drop the registry entry when no queue needs the planner any more."""
        key = _registry_key(business_id, account_id)
        try:
            self._table.client.delete_item(
                TableName=self._table.table_name,
                Key=key,
                ConditionExpression="attribute_not_exists(queue_ids)",
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            self._table.client.update_item(
                TableName=self._table.table_name, Key=key, UpdateExpression="REMOVE lease_until"
            )

    def unregister(self, queue: Queue, account_id: str | None = None) -> None:
        self._table.transact([self._registry_remove(queue.business_id, account_id or queue.account_id, queue.id)])

    def _registry_add(self, business_id: str, account_id: str, queue_id: str) -> dict[str, Any]:
        return {
            "Update": {
                "Key": _registry_key(business_id, account_id),
                "UpdateExpression": "ADD queue_ids :q SET business_id = :b, account_id = :a",
                "ExpressionAttributeValues": {
                    ":q": {"SS": [queue_id]},
                    ":b": {"S": business_id},
                    ":a": {"S": account_id},
                },
            }
        }

    def _registry_remove(self, business_id: str, account_id: str, queue_id: str) -> dict[str, Any]:
        return {
            "Update": {
                "Key": _registry_key(business_id, account_id),
                "UpdateExpression": "DELETE queue_ids :q",
                "ExpressionAttributeValues": {":q": {"SS": [queue_id]}},
            }
        }

    # Planning ------------------------------------------------------------------------------------------------
    def existing_jobs(self, queue_id: str, job_ids: Iterable[str]) -> dict[str, Item]:
        items = self._table.batch_get((job_pk(queue_id), f"{_JOB_PREFIX}{job_id}") for job_id in job_ids)
        return {item["id"]: item for item in items}

    def commit_page(
        self,
        queue: Queue,
        plan: PlanState,
        *,
        jobs: Sequence[Job],
        cursor: dict[str, Any] | None,
        done: bool,
        counter_changes: dict[str, int],
        now: datetime,
    ) -> bool:
        """Write a page of new jobs, then advance the cursor and the counters in one conditional update.

        The jobs carry the plan version they were written under: if this process dies between the two
        writes, the next run redoes the same page and recognises its own jobs (same version) as new.
        False when another planner advanced the cursor first.
        """
        self._table.batch_write([self._job_item(job, plan_version=plan.version) for job in jobs])
        values: dict[str, Any] = {
            ":version": {"N": str(plan.version + 1)},
            ":done": {"BOOL": done},
            ":seq": {"N": str(plan.next_seq + len(jobs))},
            ":now": {"S": _iso(now)},
        }
        sets = ["plan_version = :version", "plan_done = :done", "plan_next_seq = :seq", "updated_at = :now"]
        removes = []
        if cursor is None:
            removes.append("plan_cursor")
        else:
            sets.append("plan_cursor = :cursor")
            values[":cursor"] = {"S": json.dumps(cursor, separators=(",", ":"))}
        adds = []
        names = {}
        for index, (counter, change) in enumerate(counter_changes.items()):
            if change:
                names[f"#c{index}"] = counter
                values[f":c{index}"] = {"N": str(change)}
                adds.append(f"counters.#c{index} :c{index}")
        if plan.version == 0:
            condition = "attribute_not_exists(plan_version) OR plan_version = :previous"
        else:
            condition = "plan_version = :previous"
        values[":previous"] = {"N": str(plan.version)}
        expression = "SET " + ", ".join(sets)
        if adds:
            expression += " ADD " + ", ".join(adds)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        request: dict[str, Any] = {
            "TableName": self._table.table_name,
            "Key": _queue_key(queue.business_id, queue.id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        try:
            self._table.client.update_item(**request)
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # Feeding -------------------------------------------------------------------------------------------------
    def jobs_in_state(
        self, queue_id: str, label: str, limit: int, *, filter_older_than: datetime | None = None
    ) -> builtins.list[Job]:
        request: dict[str, Any] = {
            "TableName": self._table.table_name,
            "IndexName": GSI1.name,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": GSI1.partition_key},
            "ExpressionAttributeValues": {":pk": {"S": f"{job_pk(queue_id)}#{label}"}},
            "Limit": limit,
        }
        if filter_older_than is not None:
            request["FilterExpression"] = "updated_at < :cutoff"
            request["ExpressionAttributeValues"][":cutoff"] = {"S": _iso(filter_older_than)}
        response = self._table.client.query(**request)
        return [self._to_job(from_attributes(item)) for item in response.get("Items", [])]

    def pending_jobs(self, queue_id: str, limit: int) -> builtins.list[Job]:
        return self.jobs_in_state(queue_id, _INDEXED[JobStatus.PENDING], limit)

    def stale_queued_jobs(self, queue_id: str, older_than: datetime, limit: int) -> builtins.list[Job]:
        return self.jobs_in_state(queue_id, _INDEXED[JobStatus.QUEUED], limit, filter_older_than=older_than)

    def retryable_failed_jobs(self, queue_id: str, limit: int) -> builtins.list[Job]:
        return self.jobs_in_state(queue_id, _FAILED_RETRYABLE, limit)

    def mark_queued(self, jobs: Sequence[Job], account_id: str, now: datetime) -> builtins.list[Job]:
        """PENDING -> QUEUED for up to 10 jobs at once; returns the jobs that moved (the index may be stale)."""
        moved = [
            job.model_copy(
                update={"status": JobStatus.QUEUED, "account_id": account_id, "updated_at": now, "queued_at": now}
            )
            for job in jobs
        ]
        operations = [self._conditional_put(job, (JobStatus.PENDING,)) for job in moved]
        try:
            self._table.transact(operations)
            return moved
        except TransactionCancelledError:
            pass
        result = []
        for job, operation in zip(moved, operations, strict=True):
            try:
                self._table.transact([operation])
                result.append(job)
            except TransactionCancelledError:
                continue
        return result

    # Sending -------------------------------------------------------------------------------------------------
    def get_jobs(self, refs: Iterable[tuple[str, str]]) -> dict[str, Job]:
        items = self._table.batch_get((job_pk(queue_id), f"{_JOB_PREFIX}{job_id}") for queue_id, job_id in refs)
        jobs = (self._to_job(item) for item in items)
        return {job.id: job for job in jobs}

    def get_queues(self, refs: Iterable[tuple[str, str]]) -> dict[str, tuple[Queue, QueueProgress]]:
        # Senders need the template and the state, never the inline recipients: leave that big attribute unread.
        items = self._table.batch_get(
            ((business_pk(business_id), f"{QUEUE_PREFIX}{queue_id}") for business_id, queue_id in set(refs)),
            attributes=_QUEUE_WITHOUT_RECIPIENTS,
        )
        result = {}
        for item in items:
            queue = QueueRepository._to_queue(item)
            result[queue.id] = (queue, self._progress(item))
        return result

    def apply(self, outcome: JobOutcome, queue: Queue) -> bool:
        """Move a job and its queue's counters together; False if the job was not in an expected status."""
        operations = [self._conditional_put(outcome.job, outcome.from_statuses)]
        queue_update = self._counter_update(queue, outcome.counter_changes, outcome.error)
        if queue_update is not None:
            operations.append(queue_update)
        try:
            self._table.transact(operations)
        except TransactionCancelledError as cancelled:
            if cancelled.failed(0):
                return False
            raise
        return True

    def _counter_update(self, queue: Queue, changes: dict[str, int], error: JobError | None) -> dict[str, Any] | None:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds = []
        sets = []
        for index, (counter, change) in enumerate(changes.items()):
            if change:
                names[f"#c{index}"] = counter
                values[f":c{index}"] = {"N": str(change)}
                adds.append(f"counters.#c{index} :c{index}")
        if error is not None:
            names["#code"] = error.code
            values[":one"] = {"N": "1"}
            values[":message"] = {"S": error.message}
            adds.append("error_counts.#code :one")
            sets.append("error_messages.#code = :message")
        if not adds:
            return None
        expression = "ADD " + ", ".join(adds)
        if sets:
            expression = "SET " + ", ".join(sets) + " " + expression
        return {
            "Update": {
                "Key": _queue_key(queue.business_id, queue.id),
                "UpdateExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    # Items ---------------------------------------------------------------------------------------------------
    def _conditional_put(self, job: Job, from_statuses: Sequence[JobStatus]) -> dict[str, Any]:
        values = {f":s{index}": {"S": status.value} for index, status in enumerate(from_statuses)}
        return {
            "Put": {
                "Item": self._job_item(job),
                "ConditionExpression": f"#status IN ({', '.join(values)})",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        }

    @staticmethod
    def _job_item(job: Job, plan_version: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            **job.model_dump(mode="json"),
            PARTITION_KEY: job_pk(job.queue_id),
            SORT_KEY: f"{_JOB_PREFIX}{job.id}",
            "type": "Job",
        }
        if plan_version is not None:
            data["plan_version"] = plan_version
        label = _index_label(job)
        if label is not None:
            data[GSI1.partition_key] = f"{job_pk(job.queue_id)}#{label}"
            data[GSI1.sort_key] = f"{job.seq:012d}"
        return to_attributes(data)

    @staticmethod
    def _to_job(item: Item) -> Job:
        return Job.model_validate({key: value for key, value in item.items() if key in Job.model_fields})

    @staticmethod
    def _progress(item: Item) -> QueueProgress:
        cursor = item.get("plan_cursor")
        return QueueProgress(
            plan=PlanState(
                cursor=json.loads(cursor) if cursor else None,
                version=int(item.get("plan_version", 0)),
                done=bool(item.get("plan_done", False)),
                next_seq=int(item.get("plan_next_seq", 0)),
            ),
            error_counts={key: int(value) for key, value in (item.get("error_counts") or {}).items()},
            error_messages=dict(item.get("error_messages") or {}),
            rate_per_second=float(item.get("rate_per_second", 0.0)),
            rate_sample_at=float(item["rate_sample_at"]) if "rate_sample_at" in item else None,
            rate_sample_done=int(item.get("rate_sample_done", 0)),
        )
