"""Queues (campaigns).

The queue item (BIZ#<biz> / QUEUE#<q>) holds what the API edits and the lifecycle status, nothing that changes per
message. Inline recipients live in chunk items beside the queue's jobs (Q#<q> / RECIPIENTS#<nnnn>, 100 recipients
each, zlib-compressed), written in the same transaction as the queue and read only by the planner and by a single
queue's GET. Counters live in counter items (wabacast.adapters.dynamodb.counters); the queue item keeps a snapshot
of them that the planner refreshes once per tick, which listings show.
"""

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
from wabacast.adapters.dynamodb.counters import CounterReader, queue_partition
from wabacast.domain.models import QUEUE_STATUSES_HOLDING_ACCOUNT, Page, Queue, QueueCounters, QueueStatus, Recipient
from wabacast.errors import ConcurrentModificationError, ConflictError, InvalidInputError, NotFoundError
from wabacast.phone import FROM_STORAGE
from wabacast.storage.table import GSI1, GSI2, PARTITION_KEY, SORT_KEY

QUEUE_PREFIX = "QUEUE#"
RECIPIENTS_PREFIX = "RECIPIENTS#"
RECIPIENTS_PER_CHUNK = 100
# The whole inline audience, compressed: a transaction carries at most 4 MB, and this keeps a queue's create well
# inside it (1,000 recipients with variables compress to a few tens of KB).
MAX_COMPRESSED_RECIPIENTS_BYTES = 300_000
RECIPIENT_COUNT_ATTRIBUTE = "recipient_count"
# What an edit (PUT) may write; everything else on the item belongs to the lifecycle and the planner.
_EDITABLE = (
    "name",
    "account_id",
    "template",
    "variables",
    "audience",
    RECIPIENT_COUNT_ATTRIBUTE,
    "priority",
    "schedule",
    "max_attempts",
    "updated_at",
    GSI2.partition_key,
)


def status_index_pk(business_id: str, status: QueueStatus) -> str:
    return f"{business_pk(business_id)}#QSTATUS#{status.value}"


def account_index_pk(business_id: str, account_id: str) -> str:
    return f"{business_pk(business_id)}#QACCOUNT#{account_id}"


def queue_key(business_id: str, queue_id: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": business_pk(business_id)}, SORT_KEY: {"S": f"{QUEUE_PREFIX}{queue_id}"}}


def queue_to_item(queue: Queue) -> dict[str, Any]:
    """The queue item, without its inline recipients (see recipient_chunks)."""
    data = queue.model_dump(mode="json")
    data["audience"].pop("recipients")
    return to_attributes(
        {
            **data,
            RECIPIENT_COUNT_ATTRIBUTE: len(queue.audience.recipients),
            PARTITION_KEY: business_pk(queue.business_id),
            SORT_KEY: f"{QUEUE_PREFIX}{queue.id}",
            GSI1.partition_key: status_index_pk(queue.business_id, queue.status),
            GSI1.sort_key: queue.id,
            GSI2.partition_key: account_index_pk(queue.business_id, queue.account_id),
            GSI2.sort_key: f"{queue.status.value}#{queue.id}",
            "type": "Queue",
        }
    )


def queue_from_item(item: Item, recipients: list[Recipient] | None = None) -> Queue:
    """The queue of a stored item; `recipients` when they were read (else the audience lists none, and
    `audience.recipient_count` still tells how many there are)."""
    data = {key: value for key, value in item.items() if key in Queue.model_fields}
    data["audience"] = {**data["audience"], "recipients": recipients or []}
    queue = Queue.model_validate(data, context={FROM_STORAGE: True})
    queue.audience.stored_recipient_count = int(item.get(RECIPIENT_COUNT_ATTRIBUTE, 0))
    return queue


def recipient_chunks(queue: Queue) -> list[dict[str, Any]]:
    """The inline recipients as chunk items of RECIPIENTS_PER_CHUNK each (compressed)."""
    recipients = [recipient.model_dump(mode="json") for recipient in queue.audience.recipients]
    chunks = []
    total = 0
    for number, start in enumerate(range(0, len(recipients), RECIPIENTS_PER_CHUNK)):
        blob = zlib.compress(
            json.dumps(recipients[start : start + RECIPIENTS_PER_CHUNK], separators=(",", ":")).encode(), level=6
        )
        total += len(blob)
        chunks.append(
            {
                PARTITION_KEY: {"S": queue_partition(queue.id)},
                SORT_KEY: {"S": _chunk_sk(number)},
                "data": {"B": blob},
                "type": {"S": "Recipients"},
            }
        )
    if total > MAX_COMPRESSED_RECIPIENTS_BYTES:
        raise InvalidInputError(
            "audience.recipients is too large to store inline; upload the audience as contacts and use "
            "audience.contactTags",
            field="audience.recipients",
        )
    return chunks


def _chunk_sk(number: int) -> str:
    return f"{RECIPIENTS_PREFIX}{number:04d}"


def _chunk_count(recipient_count: int) -> int:
    return -(-recipient_count // RECIPIENTS_PER_CHUNK)


def _decode_chunk(item: Item) -> list[Recipient]:
    rows = json.loads(zlib.decompress(item["data"]))
    return [Recipient.model_validate(row, context={FROM_STORAGE: True}) for row in rows]


class QueueRepository:
    def __init__(self, table: TableGateway) -> None:
        self._table = table
        self._counters = CounterReader(table)

    def get(self, business_id: str, queue_id: str) -> Queue | None:
        """The queue with its inline recipients and live counters."""
        item = self._table.get(business_pk(business_id), f"{QUEUE_PREFIX}{queue_id}")
        if item is None:
            return None
        count = int(item.get(RECIPIENT_COUNT_ATTRIBUTE, 0))
        queue = queue_from_item(item, self.inline_recipients(queue_id, 0, count) if count else None)
        return queue.model_copy(update={"counters": self._counters.tally(queue_id).counters})

    def inline_recipients(self, queue_id: str, offset: int, limit: int) -> list[Recipient]:
        """Recipients offset..offset+limit of a queue's inline audience (one GetItem per chunk)."""
        first, last = offset // RECIPIENTS_PER_CHUNK, (offset + limit - 1) // RECIPIENTS_PER_CHUNK
        items = self._table.batch_get((queue_partition(queue_id), _chunk_sk(n)) for n in range(first, last + 1))
        recipients: list[Recipient] = []
        for item in sorted(items, key=lambda found: str(found[SORT_KEY])):
            recipients.extend(_decode_chunk(item))
        start = offset - first * RECIPIENTS_PER_CHUNK
        return recipients[start : start + limit]

    def list(
        self,
        business_id: str,
        *,
        status: QueueStatus | None,
        account_id: str | None,
        limit: int,
        next_token: str | None,
    ) -> Page[Queue]:
        """A page of queues (without recipients; counters as of the planner's last snapshot)."""
        query: dict[str, Any]
        if account_id is not None:
            query = {
                "index_name": GSI2.name,
                "partition_attribute": GSI2.partition_key,
                "partition_value": account_index_pk(business_id, account_id),
                "sort_attribute": GSI2.sort_key,
                "sort_prefix": f"{status.value}#" if status else None,
            }
        elif status is not None:
            query = {
                "index_name": GSI1.name,
                "partition_attribute": GSI1.partition_key,
                "partition_value": status_index_pk(business_id, status),
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
        if "index_name" in query:
            items = self._table.hydrate(items)  # the indexes hold keys only
        return Page[Queue](items=[queue_from_item(item) for item in items], next_token=token)

    def holds_account(self, business_id: str, account_id: str) -> bool:
        """Whether a queue that may still send (scheduled, processing, paused) uses the account."""
        return any(
            self._table.exists_in(
                index_name=GSI2.name,
                partition_attribute=GSI2.partition_key,
                partition_value=account_index_pk(business_id, account_id),
                sort_attribute=GSI2.sort_key,
                sort_prefix=f"{status.value}#",
            )
            for status in QUEUE_STATUSES_HOLDING_ACCOUNT
        )

    def create(self, queue: Queue) -> None:
        """Write the queue and its recipient chunks only while its account still exists."""
        operations: list[dict[str, Any]] = [
            {"Put": {"Item": queue_to_item(queue), "ConditionExpression": "attribute_not_exists(PK)"}},
            self._account_exists(queue),
        ]
        operations += [{"Put": {"Item": chunk}} for chunk in recipient_chunks(queue)]
        try:
            self._table.transact(operations)
        except TransactionCancelledError as cancelled:
            if cancelled.failed(1):
                raise InvalidInputError("accountId: account not found", field="accountId") from None
            raise ConcurrentModificationError("the queue changed while this request ran; retry it") from None

    def replace(self, before: Queue, after: Queue, *, forbidden: tuple[QueueStatus, ...]) -> None:
        """Store the editable fields of `after` if nobody changed the queue since `before` was read and it is not
        in a forbidden state. Status and counters are never overwritten by an edit: the lifecycle and the
        planner own them."""
        attributes = queue_to_item(after)
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
                    "Key": queue_key(after.business_id, after.id),
                    "UpdateExpression": "SET " + ", ".join(sets),
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        account_check = None
        if after.account_id != before.account_id:
            account_check = len(operations)
            operations.append(self._account_exists(after))
        if after.audience.recipients != before.audience.recipients:
            chunks = recipient_chunks(after)
            operations += [{"Put": {"Item": chunk}} for chunk in chunks]
            stale = range(len(chunks), _chunk_count(len(before.audience.recipients)))
            operations += [
                {"Delete": {"Key": {PARTITION_KEY: {"S": queue_partition(after.id)}, SORT_KEY: {"S": _chunk_sk(n)}}}}
                for n in stale
            ]
        try:
            self._table.transact(operations)
        except TransactionCancelledError as cancelled:
            if account_check is not None and cancelled.failed(account_check):
                raise InvalidInputError("accountId: account not found", field="accountId") from None
            raise ConcurrentModificationError("the queue changed while this request ran; retry it") from None

    def delete(self, queue: Queue, *, forbidden: tuple[QueueStatus, ...]) -> None:
        values = {f":forbidden{index}": {"S": status.value} for index, status in enumerate(forbidden)}
        try:
            self._table.client.delete_item(
                TableName=self._table.table_name,
                Key=queue_key(queue.business_id, queue.id),
                ConditionExpression=f"attribute_exists(PK) AND NOT #status IN ({', '.join(values)})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values,
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            current = self.get(queue.business_id, queue.id)
            if current is None:
                raise NotFoundError("queue not found") from None
            raise ConflictError(f"a queue that is {current.status.value} cannot be deleted", field="status") from None
        # The queue is gone: its recipients with it (jobs expire by TTL).
        chunks = _chunk_count(len(queue.audience.recipients))
        self._table.batch_write([], deletes=[(queue_partition(queue.id), _chunk_sk(n)) for n in range(chunks)])

    def record_counters(self, queue: Queue, counters: QueueCounters) -> None:
        """Refresh the counters snapshot listings show (the planner, once per tick when they changed)."""
        try:
            self._table.client.update_item(
                TableName=self._table.table_name,
                Key=queue_key(queue.business_id, queue.id),
                UpdateExpression="SET counters = :counters",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues={":counters": to_attributes({"c": counters.model_dump(mode="json")})["c"]},
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return  # deleted meanwhile: nothing to show

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
