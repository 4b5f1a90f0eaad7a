"""The queue item's status moves, and the reads the planner and senders make of queues (never the recipients'
chunks unless asked, never a per-message write)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python

from wabacast.adapters.dynamodb.base import TableGateway, TransactionCancelledError, business_pk
from wabacast.adapters.dynamodb.queues import (
    QUEUE_PREFIX,
    QueueRepository,
    queue_from_item,
    queue_key,
    status_index_pk,
)
from wabacast.adapters.dynamodb.registry import registry_add, registry_remove
from wabacast.domain.models import Queue, QueueCounters, QueueStatus, Recipient
from wabacast.storage.table import GSI1, GSI2


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
    ) -> bool:
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
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        condition = f"#status IN ({', '.join(allowed)})"
        if unchanged_since is not None:
            condition += " AND updated_at = :seen"
            values[":seen"] = {"S": str(to_jsonable_python(unchanged_since))}
        update = {
            "Key": queue_key(queue.business_id, queue.id),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values,
        }
        registry_account = account_id or queue.account_id
        if register is None:
            # One item: a conditional write, not a transaction.
            try:
                self._table.client.update_item(TableName=self._table.table_name, **update)  # type: ignore[arg-type]
            except self._table.client.exceptions.ConditionalCheckFailedException:
                return False
            return True
        registry = (registry_add if register else registry_remove)(queue.business_id, registry_account, queue.id)
        try:
            self._table.transact([{"Update": update}, registry])
        except TransactionCancelledError as cancelled:
            if cancelled.failed(0):
                return False
            raise
        return True
