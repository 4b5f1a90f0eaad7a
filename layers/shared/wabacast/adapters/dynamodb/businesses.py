"""Businesses (tenants) and their API keys (stored only as SHA-256 hashes)."""

from __future__ import annotations

import builtins
from typing import Any

from wabacast.adapters.dynamodb.base import (
    Item,
    TableGateway,
    TransactionCancelledError,
    business_pk,
    from_attributes,
    to_attributes,
)
from wabacast.domain.models import ApiKey, Business, Page
from wabacast.errors import NotFoundError
from wabacast.storage.table import GSI1, PARTITION_KEY, SORT_KEY

BUSINESS_SK = "#BUSINESS"
BUSINESSES_INDEX_PK = "BUSINESSES"
ADMIN_KEYS_PK = "ADMIN"
_KEY_LOOKUP_SK = "#APIKEY"
_KEY_ITEM_PREFIX = "APIKEY#"
_STORAGE_ONLY = {PARTITION_KEY, SORT_KEY, GSI1.partition_key, GSI1.sort_key, "type", "account_count", "key_hash"}


def _strip(item: Item) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key not in _STORAGE_ONLY}


def _listing_pk(business_id: str | None) -> str:
    """Where keys are listed: under their business, or under ADMIN for admin keys."""
    return business_pk(business_id) if business_id else ADMIN_KEYS_PK


def key_lookup_pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


class BusinessRepository:
    def __init__(self, table: TableGateway) -> None:
        self._table = table

    def create(self, business: Business, key: ApiKey, key_hash: str) -> None:
        """The business and its first key appear together or not at all."""
        business_item = {
            **business.model_dump(mode="json", exclude_none=True),
            PARTITION_KEY: business_pk(business.id),
            SORT_KEY: BUSINESS_SK,
            GSI1.partition_key: BUSINESSES_INDEX_PK,
            GSI1.sort_key: business.id,
            "type": "Business",
            "account_count": 0,
        }
        self._table.transact(
            [
                {"Put": {"Item": to_attributes(business_item), "ConditionExpression": "attribute_not_exists(PK)"}},
                *self._key_puts(key, key_hash),
            ]
        )

    def get(self, business_id: str) -> Business | None:
        item = self._table.get(business_pk(business_id), BUSINESS_SK)
        return Business.model_validate(_strip(item)) if item else None

    def set_keywords(self, business_id: str, stop: list[str] | None, start: list[str] | None) -> Business:
        """Set (a list) or clear (None: the defaults) the business's reply keywords."""
        values: dict[str, Any] = {}
        sets, removes = [], []
        for attribute, words in (("stop_keywords", stop), ("start_keywords", start)):
            if words is None:
                removes.append(attribute)
            else:
                values[f":{attribute}"] = {"L": [{"S": word} for word in words]}
                sets.append(f"{attribute} = :{attribute}")
        expression = (f"SET {', '.join(sets)} " if sets else "") + (f"REMOVE {', '.join(removes)}" if removes else "")
        request: dict[str, Any] = {
            "TableName": self._table.table_name,
            "Key": {PARTITION_KEY: {"S": business_pk(business_id)}, SORT_KEY: {"S": BUSINESS_SK}},
            "UpdateExpression": expression.strip(),
            "ConditionExpression": "attribute_exists(PK)",
            "ReturnValues": "ALL_NEW",
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            response = self._table.client.update_item(**request)
        except self._table.client.exceptions.ConditionalCheckFailedException:
            raise NotFoundError("business not found") from None
        return Business.model_validate(_strip(from_attributes(response["Attributes"])))

    def get_with_account_count(self, business_id: str) -> tuple[Business, int]:
        item = self._table.get(business_pk(business_id), BUSINESS_SK)
        if item is None:
            raise NotFoundError("business not found")
        return Business.model_validate(_strip(item)), int(item.get("account_count", 0))

    def list(self, limit: int, next_token: str | None) -> Page[Business]:
        items, token = self._table.query_page(
            index_name=GSI1.name,
            partition_attribute=GSI1.partition_key,
            partition_value=BUSINESSES_INDEX_PK,
            sort_attribute=GSI1.sort_key,
            sort_prefix=None,
            limit=limit,
            next_token=next_token,
        )
        items = self._table.hydrate(items)  # the index holds keys only
        return Page[Business](items=[Business.model_validate(_strip(item)) for item in items], next_token=token)

    def add_key(self, key: ApiKey, key_hash: str) -> None:
        operations = self._key_puts(key, key_hash)
        if key.business_id is not None:
            # The business must still exist when the key lands.
            operations.append(
                {
                    "ConditionCheck": {
                        "Key": {PARTITION_KEY: {"S": business_pk(key.business_id)}, SORT_KEY: {"S": BUSINESS_SK}},
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                }
            )
        try:
            self._table.transact(operations)
        except TransactionCancelledError as cancelled:
            if cancelled.failed(2):
                raise NotFoundError("business not found") from None
            raise

    def list_keys(self, business_id: str | None, limit: int, next_token: str | None) -> Page[ApiKey]:
        """The keys of a business, or the admin keys for None."""
        items, token = self._table.query_page(
            partition_attribute=PARTITION_KEY,
            partition_value=_listing_pk(business_id),
            sort_attribute=SORT_KEY,
            sort_prefix=_KEY_ITEM_PREFIX,
            limit=limit,
            next_token=next_token,
        )
        return Page[ApiKey](items=[ApiKey.model_validate(_strip(item)) for item in items], next_token=token)

    def delete_key(self, business_id: str | None, key_id: str) -> None:
        """Revoke a key of a business, or an admin key for None."""
        listing_pk = _listing_pk(business_id)
        item = self._table.get(listing_pk, f"{_KEY_ITEM_PREFIX}{key_id}")
        if item is None:
            raise NotFoundError("API key not found", field="keyId")
        self._table.transact(
            [
                {"Delete": {"Key": {PARTITION_KEY: {"S": listing_pk}, SORT_KEY: {"S": f"{_KEY_ITEM_PREFIX}{key_id}"}}}},
                {
                    "Delete": {
                        "Key": {PARTITION_KEY: {"S": key_lookup_pk(item["key_hash"])}, SORT_KEY: {"S": _KEY_LOOKUP_SK}}
                    }
                },
            ]
        )

    def find_key(self, key_hash: str) -> ApiKey | None:
        # A consistent read: a key revoked a moment ago must not authenticate (API Gateway's authorizer cache is
        # the one documented delay, docs/operations.md).
        item = self._table.get(key_lookup_pk(key_hash), _KEY_LOOKUP_SK, consistent=True)
        return ApiKey.model_validate(_strip(item)) if item else None

    def _key_puts(self, key: ApiKey, key_hash: str) -> builtins.list[dict[str, Any]]:
        data = key.model_dump(mode="json", exclude_none=True)
        listing_pk = _listing_pk(key.business_id)
        lookup = {**data, PARTITION_KEY: key_lookup_pk(key_hash), SORT_KEY: _KEY_LOOKUP_SK, "type": "ApiKeyLookup"}
        listing = {
            **data,
            PARTITION_KEY: listing_pk,
            SORT_KEY: f"{_KEY_ITEM_PREFIX}{key.key_id}",
            "type": "ApiKey",
            "key_hash": key_hash,
        }
        condition = "attribute_not_exists(PK)"
        return [
            {"Put": {"Item": to_attributes(lookup), "ConditionExpression": condition}},
            {"Put": {"Item": to_attributes(listing), "ConditionExpression": condition}},
        ]


__all__ = ["BUSINESS_SK", "BusinessRepository", "from_attributes"]
