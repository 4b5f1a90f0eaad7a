"""Contacts, their tag memberships, and opt-outs.

A contact lives at BIZ#<business>/CONTACT#<phone>. Each tag it carries has a membership item at
BIZ#<business>#TAG#<tag>/<phone>, so "contacts with tag X" is a Query. Memberships are written beside the
contact (not atomically with it): a listing by tag re-reads the contacts and drops stale memberships, and a
retried upsert repairs them.

An opt-out is BIZ#<business>/OPTOUT#<phone>. The last time a number asked to hear from the business again (a
start keyword) is BIZ#<business>/OPTIN#<phone>, kept OPT_IN_MEMORY_DAYS (TTL expiresAt): long enough for any
provider's webhook retries, so a stop written before it and delivered after it is recognized as older.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from wabacast.adapters.dynamodb.base import Item, TableGateway, business_pk, to_attributes
from wabacast.domain.models import Contact, OptOut, OptOutScope, Page, TemplateCategory
from wabacast.errors import NotFoundError
from wabacast.phone import FROM_STORAGE
from wabacast.storage.table import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

CONTACT_PREFIX = "CONTACT#"
OPT_OUT_PREFIX = "OPTOUT#"
OPT_IN_PREFIX = "OPTIN#"
# Meta retries a webhook for up to 7 days; Twilio for much less.
OPT_IN_MEMORY_DAYS = 30
_STORAGE_ONLY = {PARTITION_KEY, SORT_KEY, "type"}


def tag_pk(business_id: str, tag: str) -> str:
    return f"{business_pk(business_id)}#TAG#{tag}"


def _strip(item: Item) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key not in _STORAGE_ONLY}


class ContactRepository:
    def __init__(self, table: TableGateway) -> None:
        self._table = table

    # Contacts ------------------------------------------------------------------------------------------------
    def get_many(self, business_id: str, phone_numbers: Sequence[str]) -> dict[str, Contact]:
        pk = business_pk(business_id)
        items = self._table.batch_get((pk, f"{CONTACT_PREFIX}{phone}") for phone in phone_numbers)
        contacts = (Contact.model_validate(_strip(item), context={FROM_STORAGE: True}) for item in items)
        return {contact.phone_number: contact for contact in contacts}

    def save_many(self, business_id: str, changes: Sequence[tuple[Contact, Sequence[str]]]) -> None:
        """Write each contact and move its tag memberships from the old tags (second element) to its new ones."""
        pk = business_pk(business_id)
        puts: list[dict[str, Any]] = []
        deletes: list[tuple[str, str]] = []
        for contact, old_tags in changes:
            puts.append(
                to_attributes(
                    {
                        **contact.model_dump(mode="json"),
                        PARTITION_KEY: pk,
                        SORT_KEY: f"{CONTACT_PREFIX}{contact.phone_number}",
                        "type": "Contact",
                    }
                )
            )
            for tag in set(contact.tags) - set(old_tags):
                puts.append(
                    to_attributes(
                        {PARTITION_KEY: tag_pk(business_id, tag), SORT_KEY: contact.phone_number, "type": "TagMember"}
                    )
                )
            deletes.extend(
                (tag_pk(business_id, tag), contact.phone_number) for tag in set(old_tags) - set(contact.tags)
            )
        self._table.batch_write(puts, deletes)

    def list(self, business_id: str, *, tag: str | None, limit: int, next_token: str | None) -> Page[Contact]:
        if tag is None:
            items, token = self._table.query_page(
                partition_attribute=PARTITION_KEY,
                partition_value=business_pk(business_id),
                sort_attribute=SORT_KEY,
                sort_prefix=CONTACT_PREFIX,
                limit=limit,
                next_token=next_token,
            )
            contacts = [Contact.model_validate(_strip(item), context={FROM_STORAGE: True}) for item in items]
            return Page[Contact](items=contacts, next_token=token)
        members, token = self._table.query_page(
            partition_attribute=PARTITION_KEY,
            partition_value=tag_pk(business_id, tag),
            sort_attribute=SORT_KEY,
            sort_prefix=None,
            limit=limit,
            next_token=next_token,
        )
        phones = [member[SORT_KEY] for member in members]
        found = self.get_many(business_id, phones)
        # Keep the index's order; drop memberships whose contact is gone or no longer carries the tag.
        contacts = [found[phone] for phone in phones if phone in found and tag in found[phone].tags]
        return Page[Contact](items=contacts, next_token=token)

    def delete(self, business_id: str, phone_number: str) -> None:
        pk = business_pk(business_id)
        item = self._table.get(pk, f"{CONTACT_PREFIX}{phone_number}")
        if item is None:
            raise NotFoundError("contact not found", field="phoneNumber")
        tags = item.get("tags", [])
        self._table.batch_write(
            [], [(pk, f"{CONTACT_PREFIX}{phone_number}")] + [(tag_pk(business_id, tag), phone_number) for tag in tags]
        )

    # Opt-outs ------------------------------------------------------------------------------------------------
    def add_opt_out(self, business_id: str, opt_out: OptOut) -> tuple[OptOut, bool]:
        """Record the opt-out; an existing one is kept as it was (first source and time win), except that an opt-out
        of everything widens one of marketing only (it never narrows)."""
        item = to_attributes(
            {
                **opt_out.model_dump(mode="json"),
                PARTITION_KEY: business_pk(business_id),
                SORT_KEY: f"{OPT_OUT_PREFIX}{opt_out.phone_number}",
                "type": "OptOut",
            }
        )
        try:
            self._table.client.put_item(
                TableName=self._table.table_name, Item=item, ConditionExpression="attribute_not_exists(PK)"
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            existing = self.get_opt_out(business_id, opt_out.phone_number)
            if existing is None:
                raise
            if existing.scope == OptOutScope.MARKETING and opt_out.scope == OptOutScope.ALL:
                return self._widen(business_id, opt_out), True
            return existing, False
        return opt_out, True

    def _widen(self, business_id: str, opt_out: OptOut) -> OptOut:
        """A marketing-only opt-out becomes one of everything (the same write again, conditioned on the scope read,
        so a concurrent widening is harmless)."""
        item = to_attributes(
            {
                **opt_out.model_dump(mode="json"),
                PARTITION_KEY: business_pk(business_id),
                SORT_KEY: f"{OPT_OUT_PREFIX}{opt_out.phone_number}",
                "type": "OptOut",
            }
        )
        # Widened (or removed) meanwhile: nothing to do.
        with contextlib.suppress(self._table.client.exceptions.ConditionalCheckFailedException):
            self._table.client.put_item(
                TableName=self._table.table_name,
                Item=item,
                ConditionExpression="#scope = :marketing",
                ExpressionAttributeNames={"#scope": "scope"},
                ExpressionAttributeValues={":marketing": {"S": OptOutScope.MARKETING.value}},
            )
        return opt_out

    def get_opt_out(self, business_id: str, phone_number: str) -> OptOut | None:
        item = self._table.get(business_pk(business_id), f"{OPT_OUT_PREFIX}{phone_number}")
        return OptOut.model_validate(_strip(item), context={FROM_STORAGE: True}) if item else None

    def opted_out_among(
        self,
        business_id: str,
        phone_numbers: Sequence[str],
        *,
        category: TemplateCategory = TemplateCategory.MARKETING,
    ) -> set[str]:
        """Which of these numbers opted out of this business for templates of `category` (BatchGetItem, 100 keys a
        call): every opt-out stops marketing; only those of scope `all` stop utility and authentication."""
        pk = business_pk(business_id)
        items = self._table.batch_get(
            ((pk, f"{OPT_OUT_PREFIX}{phone}") for phone in set(phone_numbers)), attributes=("phone_number", "scope")
        )
        return {
            item["phone_number"]
            for item in items
            if category == TemplateCategory.MARKETING or item.get("scope", OptOutScope.ALL.value) == OptOutScope.ALL
        }

    def remove_opt_out(self, business_id: str, phone_number: str) -> None:
        try:
            self._table.client.delete_item(
                TableName=self._table.table_name,
                Key={
                    PARTITION_KEY: {"S": business_pk(business_id)},
                    SORT_KEY: {"S": f"{OPT_OUT_PREFIX}{phone_number}"},
                },
                ConditionExpression="attribute_exists(PK)",
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            raise NotFoundError("opt-out not found", field="phoneNumber") from None

    def record_opt_in(self, business_id: str, phone_number: str, at: datetime) -> None:
        """Remember that the number asked to hear from the business again at `at`; a later time already kept stays
        (a start delivered late never moves it back)."""
        at_ms = int(at.timestamp() * 1000)
        item = {
            PARTITION_KEY: {"S": business_pk(business_id)},
            SORT_KEY: {"S": f"{OPT_IN_PREFIX}{phone_number}"},
            "type": {"S": "OptIn"},
            "opted_in_at_ms": {"N": str(at_ms)},
            TTL_ATTRIBUTE: {"N": str(int((at + timedelta(days=OPT_IN_MEMORY_DAYS)).timestamp()))},
        }
        with contextlib.suppress(self._table.client.exceptions.ConditionalCheckFailedException):
            self._table.client.put_item(
                TableName=self._table.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(PK) OR opted_in_at_ms < :at",
                ExpressionAttributeValues={":at": {"N": str(at_ms)}},
            )

    def last_opt_in(self, business_id: str, phone_number: str) -> datetime | None:
        item = self._table.get(business_pk(business_id), f"{OPT_IN_PREFIX}{phone_number}")
        if item is None:
            return None
        return datetime.fromtimestamp(int(item["opted_in_at_ms"]) / 1000, UTC)

    def list_opt_outs(self, business_id: str, limit: int, next_token: str | None) -> Page[OptOut]:
        items, token = self._table.query_page(
            partition_attribute=PARTITION_KEY,
            partition_value=business_pk(business_id),
            sort_attribute=SORT_KEY,
            sort_prefix=OPT_OUT_PREFIX,
            limit=limit,
            next_token=next_token,
        )
        return Page[OptOut](
            items=[OptOut.model_validate(_strip(item), context={FROM_STORAGE: True}) for item in items],
            next_token=token,
        )
