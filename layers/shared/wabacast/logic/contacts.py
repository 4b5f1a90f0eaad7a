"""Contacts (bulk upsert, listing by tag) and opt-outs, per business."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from wabacast.clock import Clock, utc_now
from wabacast.domain.models import Contact, OptOut, OptOutScope, OptOutSource, Page
from wabacast.logic.ports import ContactStore

MAX_CONTACTS_PER_CALL = 1000


class ContactDraft(BaseModel):
    """One validated row of an upsert; only the fields that were sent change an existing contact."""

    model_config = ConfigDict(frozen=True)

    phone_number: str
    name: str | None = None
    tags: list[str] | None = None
    attributes: dict[str, str | int | float | bool] | None = None
    timezone: str | None = None


class Rejection(BaseModel):
    index: int
    phone_number: str | None = None
    field: str | None = None
    message: str


class UpsertResult(BaseModel):
    created: int
    updated: int
    rejected: list[Rejection]


class ContactService:
    def __init__(self, store: ContactStore, clock: Clock = utc_now) -> None:
        self._store = store
        self._clock = clock

    def upsert(
        self, business_id: str, rows: Sequence[tuple[int, ContactDraft]], rejected: Sequence[Rejection]
    ) -> UpsertResult:
        """Write the valid rows; `rejected` holds the rows the caller already refused, reported back as is."""
        rejections = list(rejected)
        seen: dict[str, int] = {}
        accepted: list[ContactDraft] = []
        for index, draft in rows:
            if draft.phone_number in seen:
                rejections.append(
                    Rejection(
                        index=index,
                        phone_number=draft.phone_number,
                        field="phoneNumber",
                        message=f"phoneNumber: duplicate of row {seen[draft.phone_number]} in this request",
                    )
                )
                continue
            seen[draft.phone_number] = index
            accepted.append(draft)
        existing = self._store.get_many(business_id, [draft.phone_number for draft in accepted])
        now = self._clock()
        changes: list[tuple[Contact, Sequence[str]]] = []
        created = 0
        for draft in accepted:
            sent = draft.model_dump(include=draft.model_fields_set - {"phone_number"})
            previous = existing.get(draft.phone_number)
            if previous is None:
                created += 1
                contact = Contact(
                    phone_number=draft.phone_number,
                    created_at=now,
                    updated_at=now,
                    **{key: value for key, value in sent.items() if value is not None},
                )
                changes.append((contact, []))
            else:
                merged = {**previous.model_dump(), **{key: value for key, value in sent.items()}, "updated_at": now}
                merged["tags"] = merged.get("tags") or []
                merged["attributes"] = merged.get("attributes") or {}
                changes.append((Contact.model_validate(merged), previous.tags))
        self._store.save_many(business_id, changes)
        rejections.sort(key=lambda rejection: rejection.index)
        return UpsertResult(created=created, updated=len(changes) - created, rejected=rejections)

    def list(self, business_id: str, *, tag: str | None, limit: int, next_token: str | None) -> Page[Contact]:
        return self._store.list(business_id, tag=tag, limit=limit, next_token=next_token)

    def delete(self, business_id: str, phone_number: str) -> None:
        self._store.delete(business_id, phone_number)

    def opt_out(
        self,
        business_id: str,
        phone_number: str,
        reason: str | None,
        source: OptOutSource = OptOutSource.API,
        scope: OptOutScope = OptOutScope.ALL,
    ) -> tuple[OptOut, bool]:
        opt_out = OptOut(phone_number=phone_number, reason=reason, source=source, created_at=self._clock(), scope=scope)
        return self._store.add_opt_out(business_id, opt_out)

    def remove_opt_out(self, business_id: str, phone_number: str) -> None:
        self._store.remove_opt_out(business_id, phone_number)

    def list_opt_outs(self, business_id: str, limit: int, next_token: str | None) -> Page[OptOut]:
        return self._store.list_opt_outs(business_id, limit, next_token)
