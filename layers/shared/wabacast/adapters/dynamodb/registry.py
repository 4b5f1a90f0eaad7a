"""The planner registry: PLANNER / ACCOUNT#<biz>#<acc> lists the queues (string set) an account's planner must look
at, and holds the per-account lease. The planner tick Queries this one partition; no Scan anywhere."""

from __future__ import annotations

from typing import Any

from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.domain.delivery import ActiveAccount
from wabacast.storage.table import PARTITION_KEY, SORT_KEY

REGISTRY_PK = "PLANNER"


def registry_key(business_id: str, account_id: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": REGISTRY_PK}, SORT_KEY: {"S": f"ACCOUNT#{business_id}#{account_id}"}}


def registry_add(business_id: str, account_id: str, queue_id: str) -> dict[str, Any]:
    """A transaction item: the queue joins its account's registry entry."""
    return {
        "Update": {
            "Key": registry_key(business_id, account_id),
            "UpdateExpression": "ADD queue_ids :q SET business_id = :b, account_id = :a",
            "ExpressionAttributeValues": {":q": {"SS": [queue_id]}, ":b": {"S": business_id}, ":a": {"S": account_id}},
        }
    }


def registry_remove(business_id: str, account_id: str, queue_id: str) -> dict[str, Any]:
    return {
        "Update": {
            "Key": registry_key(business_id, account_id),
            "UpdateExpression": "DELETE queue_ids :q",
            "ExpressionAttributeValues": {":q": {"SS": [queue_id]}},
        }
    }


def _entry(item: dict[str, Any]) -> ActiveAccount:
    """The ids come from the sort key: removing a queue from an account with no entry (an UpdateItem, inside the
    queue's transition) leaves an item with keys only, which the planner then takes, finds empty and deletes."""
    business_id, account_id = str(item[SORT_KEY]).removeprefix("ACCOUNT#").split("#", 1)
    return ActiveAccount(business_id, account_id, frozenset(item.get("queue_ids") or []))


class PlannerRegistryStore:
    def __init__(self, table: TableGateway) -> None:
        self._table = table

    def active_accounts(self) -> list[ActiveAccount]:
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
            accounts.extend(_entry(item) for item in items)
            if token is None:
                return accounts

    def account(self, business_id: str, account_id: str) -> ActiveAccount | None:
        item = self._table.get(REGISTRY_PK, f"ACCOUNT#{business_id}#{account_id}")
        return _entry(item) if item is not None else None

    def acquire_lease(self, business_id: str, account_id: str, *, now: float, seconds: float) -> bool:
        """One planner at a time per account: materializing and feeding are then never interleaved."""
        try:
            self._table.client.update_item(
                TableName=self._table.table_name,
                Key=registry_key(business_id, account_id),
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
        key = registry_key(business_id, account_id)
        try:
            self._table.client.delete_item(
                TableName=self._table.table_name, Key=key, ConditionExpression="attribute_not_exists(queue_ids)"
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            self._table.client.update_item(
                TableName=self._table.table_name, Key=key, UpdateExpression="REMOVE lease_until"
            )

    def unregister(self, business_id: str, account_id: str, queue_id: str) -> None:
        body = registry_remove(business_id, account_id, queue_id)["Update"]
        self._table.client.update_item(TableName=self._table.table_name, **body)
