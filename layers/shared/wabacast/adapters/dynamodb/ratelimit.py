"""Per-account send rate and daily volume, shared by every concurrent sender through DynamoDB.

The rate is a GCRA (a leaky bucket without burst): the account item holds the "theoretical arrival time" (TAT)
of its next free send slot; a batch of n reserves n slots 1/rate apart with one conditional write, and the
sender sends each message at its slot. Slots never overlap across senders, so no one-second window ever holds
more than `messages_per_second` sends. The daily count is a counter per account and UTC day, updated in the
same transaction.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from wabacast.adapters.dynamodb.base import TableGateway, TransactionCancelledError
from wabacast.domain.delivery import Reservation
from wabacast.storage.table import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

_MAX_CONTENTION_RETRIES = 20


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
        day = datetime.fromtimestamp(now, UTC).date()
        day_key = {PARTITION_KEY: {"S": _rate_pk(account_id)}, SORT_KEY: {"S": f"DAY#{day.isoformat()}"}}
        gcra_key = {PARTITION_KEY: {"S": _rate_pk(account_id)}, SORT_KEY: {"S": "#GCRA"}}
        expires = int((datetime.combine(day, datetime.min.time(), UTC) + timedelta(days=2)).timestamp())
        for _ in range(_MAX_CONTENTION_RETRIES):
            # One consistent BatchGetItem for both items.
            items = {
                item[SORT_KEY]: item
                for item in self._table.batch_get(
                    [(_rate_pk(account_id), "#GCRA"), (_rate_pk(account_id), f"DAY#{day.isoformat()}")]
                )
            }
            gcra = items.get("#GCRA", {})
            used_today = int(items.get(f"DAY#{day.isoformat()}", {}).get("count", 0))
            granted = min(count, daily_limit - used_today)
            if granted <= 0:
                return Reservation(daily_exhausted=True)
            previous_tat = float(gcra["tat"]) if "tat" in gcra else None
            start = max(previous_tat or now, now)
            if start - now > max_wait_s:
                return Reservation(retry_after_s=start - now)
            new_tat = start + granted * interval
            gcra_condition = "attribute_not_exists(tat)" if previous_tat is None else "tat = :previous"
            gcra_values = {":tat": {"N": repr(new_tat)}}
            if previous_tat is not None:
                gcra_values[":previous"] = {"N": repr(previous_tat)}
            try:
                self._table.transact(
                    [
                        {
                            "Update": {
                                "Key": gcra_key,
                                "UpdateExpression": "SET tat = :tat",
                                "ConditionExpression": gcra_condition,
                                "ExpressionAttributeValues": gcra_values,
                            }
                        },
                        {
                            "Update": {
                                "Key": day_key,
                                "UpdateExpression": f"ADD #count :n SET {TTL_ATTRIBUTE} = :expires",
                                "ConditionExpression": "attribute_not_exists(#count) OR #count <= :room",
                                "ExpressionAttributeNames": {"#count": "count"},
                                "ExpressionAttributeValues": {
                                    ":n": {"N": str(granted)},
                                    ":room": {"N": str(daily_limit - granted)},
                                    ":expires": {"N": str(expires)},
                                },
                            }
                        },
                    ]
                )
            except TransactionCancelledError:
                # Another sender moved the TAT or the day's count first: read again after a short random pause,
                # so contending senders spread out instead of colliding in lockstep.
                time.sleep(random.uniform(0.001, 0.01))  # noqa: S311 - jitter, not security
                continue
            return Reservation(slots=[start + index * interval for index in range(granted)])
        # Contention this heavy means other senders are taking every slot: come back later.
        return Reservation(retry_after_s=1.0)

    def daily_remaining(self, account_id: str, daily_limit: int, now: float) -> int:
        day = datetime.fromtimestamp(now, UTC).date()
        used = int((self._table.get(_rate_pk(account_id), f"DAY#{day.isoformat()}") or {}).get("count", 0))
        return max(0, daily_limit - used)
