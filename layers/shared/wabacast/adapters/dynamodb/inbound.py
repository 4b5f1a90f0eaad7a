"""Inbound messages, kept per account for INBOUND_RETENTION_DAYS.

Item: INBOUND#<account> / <received at, ISO>#<provider message id>, TTL expiresAt. The key comes from the provider's
own id and time, so a webhook delivered twice writes the same item again (one write unit each time, no duplicate).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from wabacast.adapters.dynamodb.base import TableGateway, to_attributes
from wabacast.domain.models import Page
from wabacast.domain.replies import ReplyAction
from wabacast.domain.webhooks import INBOUND_RETENTION_DAYS, InboundMessage
from wabacast.storage.table import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

MAX_TEXT = 4096


def inbound_partition(account_id: str) -> str:
    return f"INBOUND#{account_id}"


class InboundRepository:
    def __init__(self, table: TableGateway) -> None:
        self._table = table

    def record(self, messages: Sequence[InboundMessage]) -> None:
        # One item per key: BatchWriteItem refuses the same key twice in a request (a payload repeating a message).
        unique = {
            (message.account_id, message.received_at, message.provider_message_id): message for message in messages
        }
        items = [
            to_attributes(
                {
                    PARTITION_KEY: inbound_partition(message.account_id),
                    SORT_KEY: f"{message.received_at.isoformat()}#{message.provider_message_id}",
                    "type": "InboundMessage",
                    "business_id": message.business_id,
                    "account_id": message.account_id,
                    "provider_message_id": message.provider_message_id,
                    "from_number": message.from_number,
                    "kind": message.kind,
                    "text": message.text[:MAX_TEXT],
                    "received_at": message.received_at.isoformat(),
                    **({"action": message.action.value} if message.action else {}),
                    TTL_ATTRIBUTE: int((message.received_at + timedelta(days=INBOUND_RETENTION_DAYS)).timestamp()),
                }
            )
            for message in unique.values()
        ]
        if items:
            self._table.batch_write(items)

    def list(self, account_id: str, limit: int, next_token: str | None) -> Page[InboundMessage]:
        """The account's messages, newest first (the sort key starts with the time)."""
        items, token = self._table.query_page(
            partition_attribute=PARTITION_KEY,
            partition_value=inbound_partition(account_id),
            sort_attribute=SORT_KEY,
            sort_prefix=None,
            limit=limit,
            next_token=next_token,
            descending=True,
        )
        return Page[InboundMessage](
            items=[
                InboundMessage(
                    business_id=item["business_id"],
                    account_id=item["account_id"],
                    provider_message_id=item["provider_message_id"],
                    from_number=item["from_number"],
                    kind=item["kind"],
                    text=item["text"],
                    received_at=datetime.fromisoformat(item["received_at"]),
                    action=ReplyAction(item["action"]) if item.get("action") else None,
                )
                for item in items
            ],
            next_token=token,
        )
