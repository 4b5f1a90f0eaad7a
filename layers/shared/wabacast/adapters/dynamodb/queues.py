"""Queues (campaigns). Inline recipients are stored compressed on the queue item, so a queue is one atomic write."""

from __future__ import annotations

import json
import zlib
from typing import Any

from pydantic_core import to_jsonable_python

from wabacast.adapters.dynamodb.accounts import ACCOUNT_PREFIX
from wabacast.adapters.dynamodb.base import (
    Item,
    TableGateway,
    TransactionCancelledError,
    business_pk,
    to_attributes,
)
from wabacast.domain.models import QUEUE_STATUSES_HOLDING_ACCOUNT, Page, Queue, QueueStatus
from wabacast.errors import ConcurrentModificationError, ConflictError, InvalidInputError, NotFoundError
from wabacast.phone import FROM_STORAGE
from wabacast.storage.table import GSI1, GSI2, PARTITION_KEY, SORT_KEY

QUEUE_PREFIX = "QUEUE#"
# DynamoDB items stop at 400 KB; keep room for the rest of the queue and for counters added later.
MAX_COMPRESSED_RECIPIENTS_BYTES = 300_000
_RECIPIENTS_ATTRIBUTE = "recipients_zlib"
# What an edit (PUT) may write; everything else on the item belongs to the lifecycle, the planner and the senders.
_EDITABLE = (
    "name",
    "account_id",
    "template",
    "variables",
    "audience",
    _RECIPIENTS_ATTRIBUTE,
    "priority",
    "schedule",
    "max_attempts",
    "updated_at",
    GSI2.partition_key,
)
_STORAGE_ONLY = {
    PARTITION_KEY,
    SORT_KEY,
    GSI1.partition_key,
    GSI1.sort_key,
    GSI2.partition_key,
    GSI2.sort_key,
    "type",
    _RECIPIENTS_ATTRIBUTE,
}


def _status_index_pk(business_id: str, status: QueueStatus) -> str:
    return f"{business_pk(business_id)}#QSTATUS#{status.value}"


def _account_index_pk(business_id: str, account_id: str) -> str:
    return f"{business_pk(business_id)}#QACCOUNT#{account_id}"


class QueueRepository:
    def __init__(self, table: TableGateway) -> None:
        self._table = table

    def get(self, business_id: str, queue_id: str) -> Queue | None:
        item = self._table.get(business_pk(business_id), f"{QUEUE_PREFIX}{queue_id}")
        return self._to_queue(item) if item else None

    def list(
        self,
        business_id: str,
        *,
        status: QueueStatus | None,
        account_id: str | None,
        limit: int,
        next_token: str | None,
    ) -> Page[Queue]:
        query: dict[str, Any]
        if account_id is not None:
            query = {
                "index_name": GSI2.name,
                "partition_attribute": GSI2.partition_key,
                "partition_value": _account_index_pk(business_id, account_id),
                "sort_attribute": GSI2.sort_key,
                "sort_prefix": f"{status.value}#" if status else None,
            }
        elif status is not None:
            query = {
                "index_name": GSI1.name,
                "partition_attribute": GSI1.partition_key,
                "partition_value": _status_index_pk(business_id, status),
                "sort_attribute": GSI1.sort_key,
                "sort_prefix": None,
            }
        else:
            query = {
                "partition_attribute": PARTITION_KEY,
                "partition_value": business_pk(business_id),
                "sort_attribute": SORT_KEY,
                "sort_prefix": QUEUE_PREFIX,
            }
        items, token = self._table.query_page(limit=limit, next_token=next_token, **query)
        return Page[Queue](items=[self._to_queue(item) for item in items], next_token=token)

    def holds_account(self, business_id: str, account_id: str) -> bool:
        """Whether a queue that may still send (scheduled, processing, paused) uses the account."""
        return any(
            self._table.exists_in(
                index_name=GSI2.name,
                partition_attribute=GSI2.partition_key,
                partition_value=_account_index_pk(business_id, account_id),
                sort_attribute=GSI2.sort_key,
                sort_prefix=f"{status.value}#",
            )
            for status in QUEUE_STATUSES_HOLDING_ACCOUNT
        )

    def create(self, queue: Queue) -> None:
        """Write the queue only while its account still exists."""
        try:
            self._table.transact(
                [
                    {"Put": {"Item": self._to_item(queue), "ConditionExpression": "attribute_not_exists(PK)"}},
                    self._account_exists(queue),
                ]
            )
        except TransactionCancelledError as cancelled:
            if cancelled.failed(1):
                raise InvalidInputError("accountId: account not found", field="accountId") from None
            raise ConcurrentModificationError("the queue changed while this request ran; retry it") from None

    def replace(self, before: Queue, after: Queue, *, forbidden: tuple[QueueStatus, ...]) -> None:
        """Store the editable fields of `after` if nobody changed the queue since `before` was read and it is not
        in a forbidden state. Counters, status and planning state are never overwritten by an edit: the planner
        and the senders update them concurrently."""
        attributes = self._to_item(after)
        names: dict[str, str] = {"#status": "status"}
        values: dict[str, Any] = {f":forbidden{index}": {"S": status.value} for index, status in enumerate(forbidden)}
        condition = "updated_at = :seen"
        if forbidden:
            condition += f" AND NOT #status IN ({', '.join(values)})"
        values[":seen"] = {"S": to_jsonable_python(before.updated_at)}
        sets = []
        for index, name in enumerate(_EDITABLE):
            names[f"#e{index}"] = name
            values[f":e{index}"] = attributes[name]
            sets.append(f"#e{index} = :e{index}")
        operations: list[dict[str, Any]] = [
            {
                "Update": {
                    "Key": {
                        PARTITION_KEY: {"S": business_pk(after.business_id)},
                        SORT_KEY: {"S": f"{QUEUE_PREFIX}{after.id}"},
                    },
                    "UpdateExpression": "SET " + ", ".join(sets),
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        if after.account_id != before.account_id:
            operations.append(self._account_exists(after))
        try:
            self._table.transact(operations)
        except TransactionCancelledError as cancelled:
            if len(operations) > 1 and cancelled.failed(1):
                raise InvalidInputError("accountId: account not found", field="accountId") from None
            raise ConcurrentModificationError("the queue changed while this request ran; retry it") from None

    def delete(self, queue: Queue, *, forbidden: tuple[QueueStatus, ...]) -> None:
        values = {f":forbidden{index}": {"S": status.value} for index, status in enumerate(forbidden)}
        try:
            self._table.client.delete_item(
                TableName=self._table.table_name,
                Key={
                    PARTITION_KEY: {"S": business_pk(queue.business_id)},
                    SORT_KEY: {"S": f"{QUEUE_PREFIX}{queue.id}"},
                },
                ConditionExpression=f"attribute_exists(PK) AND NOT #status IN ({', '.join(values)})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            current = self.get(queue.business_id, queue.id)
            if current is None:
                raise NotFoundError("queue not found") from None
            raise ConflictError(f"a queue that is {current.status.value} cannot be deleted", field="status") from None

    @staticmethod
    def _account_exists(queue: Queue) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "Key": {
                    PARTITION_KEY: {"S": business_pk(queue.business_id)},
                    SORT_KEY: {"S": f"{ACCOUNT_PREFIX}{queue.account_id}"},
                },
                "ConditionExpression": "attribute_exists(PK)",
            }
        }

    @staticmethod
    def _to_item(queue: Queue) -> dict[str, Any]:
        data = queue.model_dump(mode="json")
        recipients = data["audience"].pop("recipients")
        compressed = zlib.compress(json.dumps(recipients, separators=(",", ":")).encode(), level=6)
        if len(compressed) > MAX_COMPRESSED_RECIPIENTS_BYTES:
            raise InvalidInputError(
                "audience.recipients is too large to store inline; upload the audience as contacts and use "
                "audience.contactTags",
                field="audience.recipients",
            )
        data["audience"]["recipient_count"] = len(recipients)
        attributes = to_attributes(
            {
                **data,
                PARTITION_KEY: business_pk(queue.business_id),
                SORT_KEY: f"{QUEUE_PREFIX}{queue.id}",
                GSI1.partition_key: _status_index_pk(queue.business_id, queue.status),
                GSI1.sort_key: queue.id,
                GSI2.partition_key: _account_index_pk(queue.business_id, queue.account_id),
                GSI2.sort_key: f"{queue.status.value}#{queue.id}",
                "type": "Queue",
            }
        )
        attributes[_RECIPIENTS_ATTRIBUTE] = {"B": compressed}
        return attributes

    @staticmethod
    def _to_queue(item: Item) -> Queue:
        # Only the queue's own fields: planner state and error statistics live beside them on the item.
        data = {key: value for key, value in item.items() if key in Queue.model_fields and key not in _STORAGE_ONLY}
        data["audience"].pop("recipient_count", None)
        # Read without the recipients attribute (delivery reads that only need the template and state): none.
        blob = item.get(_RECIPIENTS_ATTRIBUTE)
        data["audience"]["recipients"] = json.loads(zlib.decompress(blob)) if blob is not None else []
        return Queue.model_validate(data, context={FROM_STORAGE: True})
