"""Queues (campaigns): validation against the business's accounts and the lifecycle rules of editing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from wabacast.clock import Clock, utc_now
from wabacast.domain.models import (
    QUEUE_STATUSES_FINISHED,
    Account,
    AccountStatus,
    ActiveHours,
    Audience,
    Business,
    Page,
    Provider,
    Queue,
    QueueCounters,
    QueueStatus,
    Schedule,
    Template,
)
from wabacast.errors import ConflictError, InvalidInputError, NotFoundError
from wabacast.ids import new_id
from wabacast.logic.accounts import _after
from wabacast.logic.ports import AccountStore, BusinessStore, QueueStore

# Editing is refused while the planner works on the queue, and once it has finished.
_NOT_EDITABLE = (QueueStatus.PROCESSING, *QUEUE_STATUSES_FINISHED)
_NOT_DELETABLE = (QueueStatus.PROCESSING,)


class ScheduleDraft(BaseModel):
    model_config = ConfigDict(frozen=True)

    start_at: datetime | None = None
    timezone: str | None = None
    active_hours: ActiveHours | None = None


class QueueDraft(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    account_id: str | None = None
    template: Template
    variables: dict[str, str] = {}
    audience: Audience
    priority: int = 5
    schedule: ScheduleDraft = ScheduleDraft()
    max_attempts: int = 3


class QueuePatch(BaseModel):
    """Top-level fields that were sent replace the stored ones whole (`model_fields_set`)."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    account_id: str | None = None
    template: Template | None = None
    variables: dict[str, str] | None = None
    audience: Audience | None = None
    priority: int | None = None
    schedule: ScheduleDraft | None = None
    max_attempts: int | None = None


class QueueService:
    def __init__(
        self,
        businesses: BusinessStore,
        accounts: AccountStore,
        queues: QueueStore,
        clock: Clock = utc_now,
    ) -> None:
        self._businesses = businesses
        self._accounts = accounts
        self._queues = queues
        self._clock = clock

    def list(
        self,
        business_id: str,
        *,
        status: QueueStatus | None,
        account_id: str | None,
        limit: int,
        next_token: str | None,
    ) -> Page[Queue]:
        return self._queues.list(business_id, status=status, account_id=account_id, limit=limit, next_token=next_token)

    def get(self, business_id: str, queue_id: str) -> Queue:
        queue = self._queues.get(business_id, queue_id)
        if queue is None:
            raise NotFoundError("queue not found")
        return queue

    def create(self, business_id: str, draft: QueueDraft) -> Queue:
        business = self._business(business_id)
        account = self._sending_account(business, draft.account_id)
        self._check_template(draft.template, account)
        now = self._clock()
        queue = Queue(
            id=new_id("q"),
            business_id=business_id,
            name=draft.name,
            account_id=account.id,
            template=draft.template,
            variables=draft.variables,
            audience=draft.audience,
            priority=draft.priority,
            schedule=self._schedule(draft.schedule, business),
            max_attempts=draft.max_attempts,
            status=QueueStatus.DRAFT,
            counters=QueueCounters(),
            created_at=now,
            updated_at=now,
        )
        self._queues.create(queue)
        return queue

    def update(self, business_id: str, queue_id: str, patch: QueuePatch) -> Queue:
        before = self.get(business_id, queue_id)
        if before.status in _NOT_EDITABLE:
            raise ConflictError(f"a queue that is {before.status.value} cannot be edited", field="status")
        sent = patch.model_fields_set
        changes: dict[str, Any] = {name: getattr(patch, name) for name in sent - {"schedule", "account_id"}}
        business = self._business(business_id)
        if "account_id" in sent or "template" in sent:
            account = self._sending_account(business, patch.account_id if "account_id" in sent else before.account_id)
            changes["account_id"] = account.id
            self._check_template(changes.get("template", before.template), account)
        if "schedule" in sent:
            changes["schedule"] = self._schedule(patch.schedule or ScheduleDraft(), business)
        changes["updated_at"] = _after(before.updated_at, self._clock())
        after = Queue.model_validate({**before.model_dump(), **{key: _dump(value) for key, value in changes.items()}})
        self._queues.replace(before, after, forbidden=_NOT_EDITABLE)
        return after

    def delete(self, business_id: str, queue_id: str) -> None:
        queue = self.get(business_id, queue_id)
        if queue.status in _NOT_DELETABLE:
            raise ConflictError(
                f"a queue that is {queue.status.value} cannot be deleted; pause or cancel it first", field="status"
            )
        self._queues.delete(queue, forbidden=_NOT_DELETABLE)

    # Rules ---------------------------------------------------------------------------------------------------
    def _business(self, business_id: str) -> Business:
        business = self._businesses.get(business_id)
        if business is None:
            raise NotFoundError("business not found")
        return business

    def _sending_account(self, business: Business, account_id: str | None) -> Account:
        """The queue's account: the one named, else the business's default, else its primary; ACTIVE."""
        chosen = account_id or business.default_account_id or business.primary_account_id
        if chosen is None:
            raise InvalidInputError(
                "accountId: the business has no WhatsApp account yet; create one first", field="accountId"
            )
        account = self._accounts.get(business, chosen)
        if account is None:
            raise InvalidInputError("accountId: account not found", field="accountId")
        if account.status != AccountStatus.ACTIVE:
            raise InvalidInputError(
                f"accountId: the account must be ACTIVE to send (it is {account.status.value})", field="accountId"
            )
        return account

    @staticmethod
    def _check_template(template: Template, account: Account) -> None:
        if account.provider == Provider.TWILIO and template.content_sid is None:
            raise InvalidInputError(
                "template.contentSid: required when the account's provider is twilio (Twilio sends templates by "
                "Content SID)",
                field="template.contentSid",
            )

    def _schedule(self, draft: ScheduleDraft, business: Business) -> Schedule:
        timezone = draft.timezone or business.timezone
        start_at = draft.start_at
        if start_at is not None:
            if start_at.tzinfo is None:
                # A wall-clock time means "in the schedule's time zone".
                start_at = start_at.replace(tzinfo=ZoneInfo(timezone))
            start_at = start_at.astimezone(UTC)
            if start_at <= self._clock():
                raise InvalidInputError("schedule.startAt: must be in the future", field="schedule.startAt")
        return Schedule(start_at=start_at, timezone=timezone, active_hours=draft.active_hours)


def _dump(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value
