"""Per-account send rate and daily volume, shared by every concurrent sender through DynamoDB.

The rate is a GCRA (a leaky bucket without burst): one item per account holds the "theoretical arrival time"
(TAT) of its next free send slot, and the day's count beside it; a batch of n reserves n slots 1/rate apart and
counts them with one conditional UpdateItem (one write unit: not a transaction, so a lost race costs one unit, not
four). The sender sends each message at its slot. Slots never overlap across senders, so no one-second window ever
holds more than `messages_per_second` sends. The count restarts with each UTC day.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.domain.delivery import Reservation
from wabacast.storage.table import PARTITION_KEY, SORT_KEY

_MAX_CONTENTION_RETRIES = 20
GCRA_SK = "#GCRA"


def _rate_pk(account_id: str) -> str:
    return f"RATE#{account_id}"


class RateLimiter:
    def __init__(self, table: TableGateway) -> None:
        self._table = table

    def reserve(
        self,
        account_id: str,
        count: int,
        *,
        messages_per_second: int,
        daily_limit: int,
        now: float,
        max_wait_s: float,
    ) -> Reservation:
        interval = 1.0 / messages_per_second
        today = datetime.fromtimestamp(now, UTC).date().isoformat()
        key = {PARTITION_KEY: {"S": _rate_pk(account_id)}, SORT_KEY: {"S": GCRA_SK}}
        for _ in range(_MAX_CONTENTION_RETRIES):
            item = self._table.get(_rate_pk(account_id), GCRA_SK) or {}
            same_day = item.get("day") == today
            used_today = int(item.get("count", 0)) if same_day else 0
            granted = min(count, daily_limit - used_today)
            if granted <= 0:
                return Reservation(daily_exhausted=True)
            previous_tat = float(item["tat"]) if "tat" in item else None
            start = max(previous_tat or now, now)
            if start - now > max_wait_s:
                return Reservation(retry_after_s=start - now)
            values = {":tat": {"N": repr(start + granted * interval)}, ":n": {"N": str(granted)}}
            if previous_tat is None:
                condition = "attribute_not_exists(tat)"
            else:
                condition = "tat = :previous"
                values[":previous"] = {"N": repr(previous_tat)}
            if same_day:
                # Another sender's count since the read would fail `tat = :previous` too: the count is as read.
                expression = "SET tat = :tat ADD #count :n"
            else:
                expression = "SET tat = :tat, #day = :today, #count = :n"
                values[":today"] = {"S": today}
            try:
                self._table.client.update_item(
                    TableName=self._table.table_name,
                    Key=key,
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#count": "count", **({} if same_day else {"#day": "day"})},
                    ExpressionAttributeValues=values,
                )
            except self._table.client.exceptions.ConditionalCheckFailedException:
                # Another sender moved the TAT first: read again after a short random pause, so contending
                # senders spread out instead of colliding in lockstep.
                time.sleep(random.uniform(0.001, 0.01))  # noqa: S311 - jitter, not security
                continue
            return Reservation(slots=[start + index * interval for index in range(granted)])
        # Contention this heavy means other senders are taking every slot: come back later.
        return Reservation(retry_after_s=1.0)

    def daily_remaining(self, account_id: str, daily_limit: int, now: float) -> int:
        today = datetime.fromtimestamp(now, UTC).date().isoformat()
        item = self._table.get(_rate_pk(account_id), GCRA_SK) or {}
        used = int(item.get("count", 0)) if item.get("day") == today else 0
        return max(0, daily_limit - used)
