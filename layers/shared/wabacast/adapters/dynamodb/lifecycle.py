"""The queue item's status moves, and the reads the planner and senders make of queues (never the recipients'
chunks unless asked, never a per-message write)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from wabacast.adapters.dynamodb.base import TableGateway, TransactionCancelledError, business_pk, to_attributes
from wabacast.adapters.dynamodb.counters import PLAN_SK, queue_partition
from wabacast.adapters.dynamodb.queues import (
    QUEUE_PREFIX,
    QueueRepository,
    queue_from_item,
    queue_key,
    status_index_pk,
)
from wabacast.adapters.dynamodb.registry import registry_add, registry_remove
from wabacast.domain.models import Page, Queue, QueueCounters, QueueRun, QueueStatus, Recipient, RunStatus
from wabacast.storage.table import GSI1, GSI2, PARTITION_KEY, SORT_KEY

RUN_PREFIX = "RUN#"


def run_key(queue_id: str, number: int, skipped_for: datetime | None = None) -> dict[str, Any]:
    """Q#<q> / RUN#<number>, and RUN#<number>#SKIP#<time> for an occurrence skipped during run <number>: the
    runs listing reads them in order with one Query."""
    sort_key = f"{RUN_PREFIX}{number:06d}"
    if skipped_for is not None:
        sort_key += f"#SKIP#{to_jsonable_python(skipped_for)!s}"
    return {PARTITION_KEY: {"S": queue_partition(queue_id)}, SORT_KEY: {"S": sort_key}}


def run_to_item(run: QueueRun) -> dict[str, Any]:
    skipped_for = run.scheduled_for if run.status == RunStatus.SKIPPED else None
    key = run_key(run.queue_id, run.number, skipped_for)
    return {**to_attributes({**run.model_dump(mode="json"), "type": "QueueRun"}), **key}


def run_from_item(item: dict[str, Any]) -> QueueRun:
    return QueueRun.model_validate({key: value for key, value in item.items() if key in QueueRun.model_fields})


class QueueLifecycleStore:
    def __init__(self, table: TableGateway) -> None:
        self._table = table
        self._queues = QueueRepository(table)

    def read_queue(self, business_id: str, queue_id: str) -> Queue | None:
        item = self._table.get(business_pk(business_id), f"{QUEUE_PREFIX}{queue_id}")
        return queue_from_item(item) if item else None

    def read_queues(self, refs: Iterable[tuple[str, str]]) -> dict[str, Queue]:
        items = self._table.batch_get((business_pk(b), f"{QUEUE_PREFIX}{q}") for b, q in set(refs))
        queues = (queue_from_item(item) for item in items)
        return {queue.id: queue for queue in queues}

    def inline_recipients(self, queue_id: str, offset: int, limit: int) -> list[Recipient]:
        return self._queues.inline_recipients(queue_id, offset, limit)

    def record_counters(self, queue: Queue, counters: QueueCounters) -> None:
        self._queues.record_counters(queue, counters)

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
        unchanged_since: datetime | None = None,
        paused_from: QueueStatus | None = None,
    ) -> bool:
        update = self._status_update(
            queue,
            allowed_from=allowed_from,
            to=to,
            now=now,
            reason=reason,
            unchanged_since=unchanged_since,
            paused_from=paused_from,
        )
        registry_account = account_id or queue.account_id
        if register is None:
            # One item: a conditional write, not a transaction.
            try:
                self._table.client.update_item(**update)
            except self._table.client.exceptions.ConditionalCheckFailedException:
                return False
            return True
        registry = (registry_add if register else registry_remove)(queue.business_id, registry_account, queue.id)
        return self._transact_on_queue([{"Update": update}, registry])

    # Runs ------------------------------------------------------------------------------------------------------
    def start_run(self, queue: Queue, run: QueueRun, *, allowed_from: Sequence[QueueStatus], now: datetime) -> bool:
        update = self._status_update(
            queue,
            allowed_from=allowed_from,
            to=QueueStatus.PROCESSING,
            now=now,
            extra_sets={
                "run_number": {"N": str(run.number)},
                "run_scheduled_for": (
                    {"S": str(to_jsonable_python(run.scheduled_for))} if run.scheduled_for else {"NULL": True}
                ),
                "run_started_at": {"S": str(to_jsonable_python(run.started_at))},
            },
            run_number=run.number - 1,
        )
        plan_reset = {
            "Update": {
                "TableName": self._table.table_name,
                "Key": {PARTITION_KEY: {"S": queue_partition(queue.id)}, SORT_KEY: {"S": PLAN_SK}},
                # The audience is planned again from its start under new job ids; the feed cursor and the counters
                # carry on (a run's counters are the difference from its baseline).
                "UpdateExpression": "SET plan_run = :run, plan_done = :false, "
                "plan_version = if_not_exists(plan_version, :zero) + :one REMOVE plan_cursor, plan_zones",
                "ExpressionAttributeValues": {
                    ":run": {"N": str(run.number)},
                    ":false": {"BOOL": False},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
            }
        }
        run_put = {
            "Put": {
                "TableName": self._table.table_name,
                "Item": run_to_item(run),
                "ConditionExpression": "attribute_not_exists(#sk)",
                "ExpressionAttributeNames": {"#sk": SORT_KEY},
            }
        }
        registry = registry_add(queue.business_id, queue.account_id, queue.id)
        return self._transact_on_queue([{"Update": update}, registry, plan_reset, run_put])

    def end_run(
        self,
        queue: Queue,
        run: QueueRun,
        *,
        to: QueueStatus,
        now: datetime,
        reason: str | None = None,
        unchanged_since: datetime | None = None,
    ) -> bool:
        update = self._status_update(
            queue,
            allowed_from=(QueueStatus.PROCESSING,),
            to=to,
            now=now,
            reason=reason,
            unchanged_since=unchanged_since,
        )
        registry = registry_remove(queue.business_id, queue.account_id, queue.id)
        run_put = {"Put": {"TableName": self._table.table_name, "Item": run_to_item(run)}}
        return self._transact_on_queue([{"Update": update}, registry, run_put])

    def record_run(self, run: QueueRun) -> None:
        self._table.client.put_item(TableName=self._table.table_name, Item=run_to_item(run))

    def read_run(self, queue_id: str, number: int) -> QueueRun | None:
        key = run_key(queue_id, number)
        item = self._table.get(key[PARTITION_KEY]["S"], key[SORT_KEY]["S"])
        return run_from_item(item) if item else None

    def list_runs(self, queue_id: str, limit: int, next_token: str | None) -> Page[QueueRun]:
        items, token = self._table.query_page(
            partition_attribute=PARTITION_KEY,
            partition_value=queue_partition(queue_id),
            sort_attribute=SORT_KEY,
            sort_prefix=RUN_PREFIX,
            limit=limit,
            next_token=next_token,
        )
        return Page(items=[run_from_item(item) for item in items], next_token=token)

    # Writes ----------------------------------------------------------------------------------------------------
    def _transact_on_queue(self, items: list[dict[str, Any]]) -> bool:
        """False when the queue item's condition (the first item) failed; any other cancellation raises."""
        try:
            self._table.transact(items)
        except TransactionCancelledError as cancelled:
            if cancelled.failed(0):
                return False
            raise
        return True

    def _status_update(
        self,
        queue: Queue,
        *,
        allowed_from: Sequence[QueueStatus],
        to: QueueStatus,
        now: datetime,
        reason: str | None = None,
        unchanged_since: datetime | None = None,
        paused_from: QueueStatus | None = None,
        extra_sets: dict[str, Any] | None = None,
        run_number: int | None = None,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":to": {"S": to.value},
            ":gsi1": {"S": status_index_pk(queue.business_id, to)},
            ":gsi2": {"S": f"{to.value}#{queue.id}"},
            ":now": {"S": str(to_jsonable_python(now))},
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
        if paused_from is not None:
            sets.append("paused_from = :paused_from")
            values[":paused_from"] = {"S": paused_from.value}
        elif to != QueueStatus.PAUSED:
            removes.append("paused_from")
        for index, (name, value) in enumerate((extra_sets or {}).items()):
            sets.append(f"{name} = :extra{index}")
            values[f":extra{index}"] = value
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        condition = f"#status IN ({', '.join(allowed)})"
        if unchanged_since is not None:
            condition += " AND updated_at = :seen"
            values[":seen"] = {"S": str(to_jsonable_python(unchanged_since))}
        if run_number is not None:
            condition += " AND (attribute_not_exists(run_number) OR run_number = :previous_run)"
            values[":previous_run"] = {"N": str(run_number)}
        return {
            "TableName": self._table.table_name,
            "Key": queue_key(queue.business_id, queue.id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values,
        }
