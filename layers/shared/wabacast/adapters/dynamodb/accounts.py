"""WhatsApp sender accounts, their global phone-number claims, and the business's primary/default pointers.

The primary and default accounts are pointers on the business item, so "exactly one primary, at most one
default" holds by construction; every change to them is a conditional write on the pointer's expected value.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_jsonable_python

from wabacast.adapters.dynamodb.base import (
    Item,
    TableGateway,
    TransactionCancelledError,
    business_pk,
    from_attributes,
    to_attributes,
)
from wabacast.adapters.dynamodb.businesses import BUSINESS_SK
from wabacast.domain.models import Account, Business, Page, Provider
from wabacast.domain.webhooks import META_ROUTE, TWILIO_ROUTE, WebhookAccount
from wabacast.errors import ConcurrentModificationError, ConflictError
from wabacast.storage.table import PARTITION_KEY, SORT_KEY

ACCOUNT_PREFIX = "ACCOUNT#"
_CLAIM_SK = "#CLAIM"
_DERIVED = {"is_primary", "is_default"}
_STORAGE_ONLY = {PARTITION_KEY, SORT_KEY, "type"}


def phone_claim_pk(phone_number: str) -> str:
    return f"PHONE#{phone_number}"


_WEBHOOK_SK = "#ACCOUNT"


def webhook_route_pk(route: str, key: str) -> str:
    """The item naming the account behind a webhook: ("meta", phone number id) or ("twilio", account id)."""
    return f"WEBHOOK#{route}#{key}"


def waba_pk(waba_id: str) -> str:
    """The lookup of a Meta WABA's accounts (Meta's account webhooks name the WABA, not a phone number id): one
    item per account, SK `ACCOUNT#<account id>`. Not unique: a WABA holds many numbers."""
    return f"WABA#{waba_id}"


def webhook_route_of(account: Account) -> tuple[str, str] | None:
    if account.provider is Provider.TWILIO:
        return (TWILIO_ROUTE, account.id)
    if account.provider_number_id:
        return (META_ROUTE, account.provider_number_id)
    return None


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": sk}}


@dataclass
class _BusinessPointerUpdate:
    """Builds one conditional UpdateItem on the business item."""

    business_id: str
    sets: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=lambda: ["attribute_exists(PK)"])
    values: dict[str, Any] = field(default_factory=dict)

    def expect_pointer(self, attribute: str, expected: str | None) -> None:
        if expected is None:
            self.conditions.append(f"attribute_not_exists({attribute})")
        else:
            placeholder = f":expected_{attribute}"
            self.conditions.append(f"{attribute} = {placeholder}")
            self.values[placeholder] = {"S": expected}

    def point(self, attribute: str, account_id: str | None) -> None:
        if account_id is None:
            self.removes.append(attribute)
        else:
            placeholder = f":new_{attribute}"
            self.sets.append(f"{attribute} = {placeholder}")
            self.values[placeholder] = {"S": account_id}

    def add_to_count(self, delta: int, *, require_count: int | None = None) -> None:
        self.sets.append("account_count = if_not_exists(account_count, :zero) + :delta")
        self.values[":zero"] = {"N": "0"}
        self.values[":delta"] = {"N": str(delta)}
        if require_count is not None:
            self.conditions.append("account_count = :required_count")
            self.values[":required_count"] = {"N": str(require_count)}

    def operation(self) -> dict[str, Any] | None:
        if not self.sets and not self.removes and len(self.conditions) == 1:
            return None
        expression = ""
        if self.sets:
            expression += "SET " + ", ".join(self.sets)
        if self.removes:
            expression += " REMOVE " + ", ".join(self.removes)
        update: dict[str, Any] = {
            "Key": _key(business_pk(self.business_id), BUSINESS_SK),
            "ConditionExpression": " AND ".join(self.conditions),
        }
        if self.values:
            update["ExpressionAttributeValues"] = self.values
        if expression:
            update["UpdateExpression"] = expression.strip()
            return {"Update": update}
        return {"ConditionCheck": update}


class AccountRepository:
    def __init__(self, table: TableGateway) -> None:
        self._table = table

    # Reading -------------------------------------------------------------------------------------------------
    def get(self, business: Business, account_id: str) -> Account | None:
        item = self._table.get(business_pk(business.id), f"{ACCOUNT_PREFIX}{account_id}")
        return self._to_account(item, business) if item else None

    def list(self, business: Business, limit: int, next_token: str | None) -> Page[Account]:
        items, token = self._table.query_page(
            partition_attribute=PARTITION_KEY,
            partition_value=business_pk(business.id),
            sort_attribute=SORT_KEY,
            sort_prefix=ACCOUNT_PREFIX,
            limit=limit,
            next_token=next_token,
        )
        return Page[Account](items=[self._to_account(item, business) for item in items], next_token=token)

    # Writing -------------------------------------------------------------------------------------------------
    def create(self, account: Account, business: Business) -> None:
        """Account, phone claim and the business's pointers/count, in one transaction.

        `business` is the state the caller read: if its pointers changed meanwhile the transaction is refused
        (ConcurrentModificationError) and the caller re-reads and decides again.
        """
        pointers = _BusinessPointerUpdate(account.business_id)
        pointers.add_to_count(1)
        self._repoint(pointers, account, business)
        operations = [
            {"Put": {"Item": self._to_item(account), "ConditionExpression": "attribute_not_exists(PK)"}},
            {"Put": {"Item": self._claim_item(account), "ConditionExpression": "attribute_not_exists(PK)"}},
            self._webhook_put(account),
            pointers.operation(),
            self._waba_put(account),
        ]
        self._run(operations, claim_index=1, webhook_index=2)

    def update(self, before: Account, after: Account, business: Business) -> None:
        operations: builtins.list[dict[str, Any] | None] = [
            {
                "Put": {
                    "Item": self._to_item(after),
                    "ConditionExpression": "updated_at = :seen",
                    "ExpressionAttributeValues": {":seen": {"S": to_jsonable_python(before.updated_at)}},
                }
            }
        ]
        claim_index = None
        if after.phone_number != before.phone_number:
            operations.append(
                {
                    "Delete": {
                        "Key": _key(phone_claim_pk(before.phone_number), _CLAIM_SK),
                        "ConditionExpression": "account_id = :account",
                        "ExpressionAttributeValues": {":account": {"S": before.id}},
                    }
                }
            )
            claim_index = len(operations)
            operations.append(
                {"Put": {"Item": self._claim_item(after), "ConditionExpression": "attribute_not_exists(PK)"}}
            )
        webhook_index = None
        if webhook_route_of(after) != webhook_route_of(before):
            operations.append(self._webhook_delete(before))
            webhook_index = len(operations)
            operations.append(self._webhook_put(after))
        if after.waba_id != before.waba_id:
            operations.append(self._waba_delete(before))
            operations.append(self._waba_put(after))
        pointers = _BusinessPointerUpdate(after.business_id)
        self._repoint(pointers, after, business)
        operations.append(pointers.operation())
        self._run(operations, claim_index=claim_index, webhook_index=webhook_index)

    def delete(self, account: Account, business: Business, account_count: int) -> None:
        pointers = _BusinessPointerUpdate(account.business_id)
        pointers.add_to_count(-1, require_count=account_count)
        pointers.expect_pointer("primary_account_id", business.primary_account_id)
        pointers.expect_pointer("default_account_id", business.default_account_id)
        if account.is_primary:
            pointers.point("primary_account_id", None)
        if account.is_default:
            pointers.point("default_account_id", None)
        operations = [
            {
                "Delete": {
                    "Key": _key(business_pk(account.business_id), f"{ACCOUNT_PREFIX}{account.id}"),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {
                "Delete": {
                    "Key": _key(phone_claim_pk(account.phone_number), _CLAIM_SK),
                    "ConditionExpression": "account_id = :account",
                    "ExpressionAttributeValues": {":account": {"S": account.id}},
                }
            },
            self._webhook_delete(account),
            pointers.operation(),
            self._waba_delete(account),
        ]
        self._run(operations, claim_index=None)

    def owner_of_phone(self, phone_number: str) -> tuple[str, str] | None:
        """(business id, account id) holding the number's claim, if any."""
        item = self._table.get(phone_claim_pk(phone_number), _CLAIM_SK)
        return (item["business_id"], item["account_id"]) if item else None

    def webhook_account(self, route: str, key: str) -> WebhookAccount | None:
        """The account registered under a webhook route key, if any: one GetItem."""
        item = self._table.get(webhook_route_pk(route, key), _WEBHOOK_SK)
        if item is None:
            return None
        return WebhookAccount(item["business_id"], item["account_id"], Provider(item["provider"]))

    def accounts_of_waba(self, waba_id: str) -> builtins.list[WebhookAccount]:
        """Every account registered with this Meta WABA id (any business: the id is not proof of anything until
        the account's own credentials verified a signature or a sync). One Query."""
        response = self._table.client.query(
            TableName=self._table.table_name,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": waba_pk(waba_id)}},
            ConsistentRead=True,
        )
        found = []
        for raw in response.get("Items", []):
            item = from_attributes(raw)
            found.append(WebhookAccount(item["business_id"], item["account_id"], Provider(item["provider"])))
        return found

    def mark_delivery_ready(self, account: Account) -> None:
        self._table.client.update_item(
            TableName=self._table.table_name,
            Key=_key(business_pk(account.business_id), f"{ACCOUNT_PREFIX}{account.id}"),
            UpdateExpression="SET delivery_ready = :ready",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues={":ready": {"BOOL": True}},
        )

    # Helpers -------------------------------------------------------------------------------------------------
    @staticmethod
    def _repoint(pointers: _BusinessPointerUpdate, account: Account, business: Business) -> None:
        """Move (or clear) the business's pointers so they agree with the account's flags."""
        for attribute, flag, current in (
            ("primary_account_id", account.is_primary, business.primary_account_id),
            ("default_account_id", account.is_default, business.default_account_id),
        ):
            if flag and current != account.id:
                pointers.expect_pointer(attribute, current)
                pointers.point(attribute, account.id)
            elif not flag and current == account.id:
                pointers.expect_pointer(attribute, current)
                pointers.point(attribute, None)

    def _run(
        self,
        operations: builtins.list[dict[str, Any] | None],
        *,
        claim_index: int | None,
        webhook_index: int | None = None,
    ) -> None:
        # Indexes count the operations actually sent (None entries are dropped).
        sent = [operation for operation in operations if operation is not None]

        def position(index: int | None) -> int | None:
            if index is None or operations[index] is None:
                return None
            return sum(1 for operation in operations[:index] if operation is not None)

        claim_index, webhook_index = position(claim_index), position(webhook_index)
        if len(sent) == 1 and "Put" in sent[0]:
            # The account item alone (most updates, every sync): a conditional PutItem costs half a transaction.
            self._put_alone(sent[0]["Put"])
            return
        try:
            self._table.transact(sent)
        except TransactionCancelledError as cancelled:
            if webhook_index is not None and cancelled.failed(webhook_index):
                raise ConflictError(
                    "credentials.phoneNumberId is already registered to another WhatsApp account",
                    field="credentials.phoneNumberId",
                ) from None
            if claim_index is not None and cancelled.failed(claim_index):
                raise ConflictError(
                    "phoneNumber is already registered to a WhatsApp account", field="phoneNumber"
                ) from None
            raise ConcurrentModificationError(
                "the account or its business changed while this request ran; retry it"
            ) from None

    def _put_alone(self, put: dict[str, Any]) -> None:
        try:
            self._table.client.put_item(TableName=self._table.table_name, **put)
        except self._table.client.exceptions.ConditionalCheckFailedException:
            raise ConcurrentModificationError(
                "the account or its business changed while this request ran; retry it"
            ) from None

    @staticmethod
    def _to_item(account: Account) -> dict[str, Any]:
        data = account.model_dump(mode="json", exclude=_DERIVED)
        return to_attributes(
            {
                **data,
                PARTITION_KEY: business_pk(account.business_id),
                SORT_KEY: f"{ACCOUNT_PREFIX}{account.id}",
                "type": "Account",
            }
        )

    @staticmethod
    def _claim_item(account: Account) -> dict[str, Any]:
        return to_attributes(
            {
                PARTITION_KEY: phone_claim_pk(account.phone_number),
                SORT_KEY: _CLAIM_SK,
                "type": "PhoneClaim",
                "business_id": account.business_id,
                "account_id": account.id,
            }
        )

    @staticmethod
    def _webhook_put(account: Account) -> dict[str, Any] | None:
        """The account's webhook route item; one account per key (a second one is refused, 409)."""
        route = webhook_route_of(account)
        if route is None:
            return None
        item = {
            PARTITION_KEY: webhook_route_pk(*route),
            SORT_KEY: _WEBHOOK_SK,
            "type": "WebhookRoute",
            "business_id": account.business_id,
            "account_id": account.id,
            "provider": account.provider.value,
        }
        return {
            "Put": {
                "Item": to_attributes(item),
                "ConditionExpression": "attribute_not_exists(PK) OR account_id = :account",
                "ExpressionAttributeValues": {":account": {"S": account.id}},
            }
        }

    @staticmethod
    def _waba_put(account: Account) -> dict[str, Any] | None:
        if account.waba_id is None:
            return None
        item = {
            PARTITION_KEY: waba_pk(account.waba_id),
            SORT_KEY: f"{ACCOUNT_PREFIX}{account.id}",
            "type": "WabaAccount",
            "business_id": account.business_id,
            "account_id": account.id,
            "provider": account.provider.value,
        }
        return {"Put": {"Item": to_attributes(item)}}

    @staticmethod
    def _waba_delete(account: Account) -> dict[str, Any] | None:
        if account.waba_id is None:
            return None
        return {"Delete": {"Key": _key(waba_pk(account.waba_id), f"{ACCOUNT_PREFIX}{account.id}")}}

    @staticmethod
    def _webhook_delete(account: Account) -> dict[str, Any] | None:
        route = webhook_route_of(account)
        if route is None:
            return None
        return {
            "Delete": {
                "Key": _key(webhook_route_pk(*route), _WEBHOOK_SK),
                "ConditionExpression": "attribute_not_exists(PK) OR account_id = :account",
                "ExpressionAttributeValues": {":account": {"S": account.id}},
            }
        }

    @staticmethod
    def _to_account(item: Item, business: Business) -> Account:
        data = {key: value for key, value in item.items() if key not in _STORAGE_ONLY}
        data["is_primary"] = business.primary_account_id == data["id"]
        data["is_default"] = business.default_account_id == data["id"]
        return Account.model_validate(data)
