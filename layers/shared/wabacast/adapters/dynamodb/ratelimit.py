"""Per-account send rate and messaging limit, shared by every concurrent sender through DynamoDB.

The rate is a GCRA (a leaky bucket without burst): one item per account holds the "theoretical arrival time"
(TAT) of its next free send slot; a batch of n reserves n slots 1/rate apart with one conditional UpdateItem (not a
transaction, so a lost race costs one unit, not four). The sender sends each message at its slot. Slots never
overlap across senders, so no one-second window ever holds more than `messages_per_second` sends.

The messaging limit (Meta's unique recipients per rolling 24 h, docs/decisions.md 30) rides on the same write:
- each recipient has an item of its own (`RCPT#<account>#<number>`) holding when its 24 h window opened, expired
  by TTL. One eventually consistent BatchGetItem per batch (half a read unit per recipient) says which
  recipients are new; the sender writes the items of the new ones after their message went out (one BatchWriteItem).
- the rate item holds the new recipients counted per 15-minute bucket (`recent`, from bucket `recentFrom`): the
  sum of the buckets of the last 24 h is the usage, the oldest bucket says when room returns. The whole list is
  rewritten by the conditional write that moves the TAT, so a sender that read it stale loses the race and reads
  again: never a lost count.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from wabacast.adapters.dynamodb.base import Item, TableGateway
from wabacast.domain.delivery import Reservation
from wabacast.domain.messaging_limit import SEND_MARGIN_S, WINDOW_S, LimitUsage, RollingCount, usage_of
from wabacast.storage.table import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

_MAX_CONTENTION_RETRIES = 20
GCRA_SK = "#GCRA"
WINDOW_SK = "#WINDOW"
# Window items outlive their 24 h by this much before TTL removes them (TTL deletes late, never early; an item read
# after its 24 h counts as absent either way).
_WINDOW_TTL_MARGIN_S = 3600
_DAY_S = 24 * 3600


def _rate_pk(account_id: str) -> str:
    return f"RATE#{account_id}"


def _window_pk(account_id: str, phone_number: str) -> str:
    return f"RCPT#{account_id}#{phone_number}"


def _rolling_count(item: Item, now: float) -> RollingCount:
    count = RollingCount(int(item.get("recentFrom", 0)), tuple(int(n) for n in item.get("recent") or ()))
    if "day" in item and int(item.get("count", 0)) > 0:
        # Written before the rolling count: that UTC day's recipients count until 24 h after the day's end (or
        # after now, for today's), a little longer than each one's own window, never shorter.
        day_end = datetime.fromisoformat(f"{item['day']}T00:00:00+00:00").timestamp() + _DAY_S
        count = count.add(min(now, day_end - 1), int(item["count"]), now)
    return count.live(now)


class RateLimiter:
    def __init__(self, table: TableGateway) -> None:
        self._table = table

    def reserve(
        self,
        account_id: str,
        recipients: Sequence[str],
        *,
        messages_per_second: int,
        recipient_limit: int,
        now: float,
        max_wait_s: float,
    ) -> Reservation:
        """Slots for the messages to `recipients` (one per message, in order) whose recipient is within the messaging
        limit: repeat recipients (window opened in the last 24 h) always are, new ones while there is room."""
        if not recipients:
            return Reservation()
        interval = 1.0 / messages_per_second
        repeat = self._open_windows(account_id, recipients, now)
        key = {PARTITION_KEY: {"S": _rate_pk(account_id)}, SORT_KEY: {"S": GCRA_SK}}
        for _ in range(_MAX_CONTENTION_RETRIES):
            item = self._table.get(_rate_pk(account_id), GCRA_SK) or {}
            count = _rolling_count(item, now)
            room = max(0, recipient_limit - sum(count.counts))
            granted, opened = _admit(recipients, repeat, room)
            if not granted:
                return Reservation(limit_reached=True)
            previous_tat = float(item["tat"]) if "tat" in item else None
            start = max(previous_tat or now, now)
            if start - now > max_wait_s:
                return Reservation(retry_after_s=start - now)
            last_slot = start + (len(granted) - 1) * interval
            if opened:
                count = count.add(last_slot + SEND_MARGIN_S, len(opened), now)
            values: dict[str, Any] = {
                ":tat": {"N": repr(start + len(granted) * interval)},
                ":from": {"N": str(count.first_bucket)},
                ":recent": {"L": [{"N": str(n)} for n in count.counts]},
            }
            if previous_tat is None:
                condition = "attribute_not_exists(tat)"
            else:
                condition = "tat = :previous"
                values[":previous"] = {"N": repr(previous_tat)}
            try:
                self._table.client.update_item(
                    TableName=self._table.table_name,
                    Key=key,
                    # The per-UTC-day count of earlier versions is folded into `recent` (see _rolling_count).
                    UpdateExpression="SET tat = :tat, recentFrom = :from, recent = :recent REMOVE #day, #count",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#day": "day", "#count": "count"},
                    ExpressionAttributeValues=values,
                )
            except self._table.client.exceptions.ConditionalCheckFailedException:
                # Another sender moved the TAT (and maybe the count) first: read again after a short random pause,
                # so contending senders spread out instead of colliding in lockstep.
                time.sleep(random.uniform(0.001, 0.01))  # noqa: S311 - jitter, not security
                continue
            return Reservation(
                granted=tuple(granted),
                slots=[start + index * interval for index in range(len(granted))],
                limit_reached=len(granted) < len(recipients),
                opened=frozenset(opened),
            )
        # Contention this heavy means other senders are taking every slot: come back later.
        return Reservation(retry_after_s=1.0)

    def record_windows(self, account_id: str, recipients: Sequence[str], *, opened_at: float) -> None:
        """The recipients' 24 h windows opened at `opened_at` (no later than their message went out)."""
        expires_at = int(opened_at) + WINDOW_S + _WINDOW_TTL_MARGIN_S
        puts = [
            {
                PARTITION_KEY: {"S": _window_pk(account_id, phone)},
                SORT_KEY: {"S": WINDOW_SK},
                "openedAt": {"N": repr(opened_at)},
                TTL_ATTRIBUTE: {"N": str(expires_at)},
            }
            for phone in dict.fromkeys(recipients)
        ]
        if puts:
            self._table.batch_write(puts)

    def usage(self, account_id: str, recipient_limit: int, now: float) -> LimitUsage:
        item = self._table.get(_rate_pk(account_id), GCRA_SK, consistent=False) or {}
        return usage_of(_rolling_count(item, now), recipient_limit, now)

    def _open_windows(self, account_id: str, recipients: Sequence[str], now: float) -> set[str]:
        """The recipients whose 24 h window is still open. Eventually consistent: a window written a moment ago may
        be missed, and its recipient is counted twice (never too few)."""
        phones = list(dict.fromkeys(recipients))
        if not phones:
            return set()
        items = self._table.batch_get(
            ((_window_pk(account_id, phone), WINDOW_SK) for phone in phones),
            attributes=(PARTITION_KEY, "openedAt"),
            consistent=False,
        )
        prefix = _window_pk(account_id, "")
        return {
            str(item[PARTITION_KEY]).removeprefix(prefix) for item in items if float(item["openedAt"]) + WINDOW_S > now
        }


def _admit(recipients: Sequence[str], repeat: set[str], room: int) -> tuple[list[int], list[str]]:
    """The messages that may go (indexes) and the new recipients they open: every message to a repeat recipient,
    and those to the first `room` new recipients (several messages to one new recipient count once)."""
    granted: list[int] = []
    opened: list[str] = []
    for index, phone in enumerate(recipients):
        if phone in repeat or phone in opened:
            granted.append(index)
        elif len(opened) < room:
            opened.append(phone)
            granted.append(index)
    return granted, opened
