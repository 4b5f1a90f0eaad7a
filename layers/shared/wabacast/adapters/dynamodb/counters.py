"""Queue counters and error statistics, kept off the queue item.

Items (none carries index keys, so a counter write is billed once, for a small item):
  counter shard   Q#<q>#C<nn> / #COUNTER    flat numbers c_<counter>, err#<code>; msg#<code> (last message)
  planned totals  Q#<q> / #PLAN             the planner's own counter part (see jobs.py), beside its cursor
  deferred delta  Q#<q> / #DELTA#<job>#<n>  a job move whose shard write kept conflicting (rare, see settle)
  account cost    ACOST#<account>#<nn> / #COST   c_cost_micros: what the account's messages cost (decision 28),
                  16 shards like a queue's; added in the transaction that records a job's cost

A queue's tally is the sum of every part. Each part adds up on its own (every move changes one part by a delta
that keeps total = pending + sent + failed + opted_out + skipped), so a sum read at any moment adds up too.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from wabacast.adapters.dynamodb.base import Item, TableGateway
from wabacast.domain.delivery import QueueTally, tally_from_parts
from wabacast.domain.jobs import Counter, JobError
from wabacast.storage.table import PARTITION_KEY, SORT_KEY

COUNTER_SHARDS = 16
SHARD_SK = "#COUNTER"
PLAN_SK = "#PLAN"
DELTA_PREFIX = "#DELTA#"
COUNTER_ATTRIBUTE_PREFIX = "c_"
ERROR_COUNT_PREFIX = "err#"
ERROR_MESSAGE_PREFIX = "msg#"


def queue_partition(queue_id: str) -> str:
    return f"Q#{queue_id}"


def shard_partition(queue_id: str, shard: int) -> str:
    # Shards live in partitions of their own: writes spread over partitions, not only over items.
    return f"Q#{queue_id}#C{shard:02d}"


ACCOUNT_COST_SK = "#COST"
ACCOUNT_COST_ATTRIBUTE = f"{COUNTER_ATTRIBUTE_PREFIX}cost_micros"


def account_cost_partition(account_id: str, shard: int) -> str:
    return f"ACOST#{account_id}#{shard:02d}"


def account_cost_update(account_id: str, shard: int, micros: int) -> dict[str, Any]:
    """One ADD on one of the account's cost shards (a TransactWriteItems operation)."""
    return {
        "Update": {
            "Key": {PARTITION_KEY: {"S": account_cost_partition(account_id, shard)}, SORT_KEY: {"S": ACCOUNT_COST_SK}},
            "UpdateExpression": "ADD #cost :cost",
            "ExpressionAttributeNames": {"#cost": ACCOUNT_COST_ATTRIBUTE},
            "ExpressionAttributeValues": {":cost": {"N": str(micros)}},
        }
    }


def shard_of(job_id: str, shards: int = COUNTER_SHARDS) -> int:
    """A stable shard for any id (a checksum, so ids of any shape spread evenly)."""
    return zlib.crc32(job_id.encode()) % shards


def counter_update(
    deltas: Mapping[Counter, int], errors: Iterable[JobError] = ()
) -> tuple[str, dict[str, str], dict[str, Any]] | None:
    """An UpdateExpression (ADD counters, SET last error messages) with its names and values; None when empty."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    adds: list[str] = []
    sets: list[str] = []
    for index, (counter, change) in enumerate(sorted(deltas.items())):
        if change:
            names[f"#c{index}"] = f"{COUNTER_ATTRIBUTE_PREFIX}{counter.value}"
            values[f":c{index}"] = {"N": str(change)}
            adds.append(f"#c{index} :c{index}")
    counts: dict[str, int] = {}
    messages: dict[str, str] = {}
    for error in errors:
        counts[error.code] = counts.get(error.code, 0) + 1
        messages[error.code] = error.message
    for index, (code, count) in enumerate(sorted(counts.items())):
        names[f"#e{index}"] = f"{ERROR_COUNT_PREFIX}{code}"
        names[f"#m{index}"] = f"{ERROR_MESSAGE_PREFIX}{code}"
        values[f":e{index}"] = {"N": str(count)}
        values[f":m{index}"] = {"S": messages[code]}
        adds.append(f"#e{index} :e{index}")
        sets.append(f"#m{index} = :m{index}")
    if not adds:
        return None
    expression = "ADD " + ", ".join(adds)
    if sets:
        expression = "SET " + ", ".join(sets) + " " + expression
    return expression, names, values


def counter_part(item: Item) -> tuple[dict[str, int], dict[str, int], dict[str, str]]:
    counters = {
        key.removeprefix(COUNTER_ATTRIBUTE_PREFIX): int(value)
        for key, value in item.items()
        if key.startswith(COUNTER_ATTRIBUTE_PREFIX)
    }
    errors = {
        key.removeprefix(ERROR_COUNT_PREFIX): int(value)
        for key, value in item.items()
        if key.startswith(ERROR_COUNT_PREFIX)
    }
    messages = {
        key.removeprefix(ERROR_MESSAGE_PREFIX): str(value)
        for key, value in item.items()
        if key.startswith(ERROR_MESSAGE_PREFIX)
    }
    return counters, errors, messages


class CounterReader:
    """Sums a queue's counter parts: one BatchGetItem for the shards and the plan item, one Query for deltas."""

    def __init__(self, table: TableGateway) -> None:
        self._table = table

    def tally(self, queue_id: str) -> QueueTally:
        keys = [(shard_partition(queue_id, shard), SHARD_SK) for shard in range(COUNTER_SHARDS)]
        keys.append((queue_partition(queue_id), PLAN_SK))
        items = self._table.batch_get(keys)
        items.extend(self._deltas(queue_id))
        return tally_from_parts([counter_part(item) for item in items])

    def account_cost(self, account_id: str) -> int:
        """The account's cost shards summed: one BatchGetItem of 16 small items."""
        keys = [(account_cost_partition(account_id, shard), ACCOUNT_COST_SK) for shard in range(COUNTER_SHARDS)]
        return sum(int(item.get(ACCOUNT_COST_ATTRIBUTE, 0)) for item in self._table.batch_get(keys))

    def _deltas(self, queue_id: str) -> list[Item]:
        found: list[Item] = []
        token: str | None = None
        while True:
            page, token = self._table.query_page(
                partition_attribute=PARTITION_KEY,
                partition_value=queue_partition(queue_id),
                sort_attribute=SORT_KEY,
                sort_prefix=DELTA_PREFIX,
                limit=100,
                next_token=token,
            )
            found.extend(page)
            if token is None:
                return found
