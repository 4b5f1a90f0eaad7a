"""Queues (campaigns): validation against the business's accounts and the lifecycle rules of editing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from wabacast.clock import Clock, utc_now
from wabacast.domain.health import AccountTemplate
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
from wabacast.domain.recurrence import InvalidRecurrence, Recurrence
from wabacast.errors import ConflictError, InvalidInputError, NotFoundError
from wabacast.ids import new_id
from wabacast.logic.accounts import later_than as _after
from wabacast.logic.ports import AccountStore, BusinessStore, QueueStore

# Editing is refused while the planner works on the queue, and once it has finished.
_NOT_EDITABLE = (QueueStatus.PROCESSING, *QUEUE_STATUSES_FINISHED)
_NOT_DELETABLE = (QueueStatus.PROCESSING,)
MAX_SCHEDULE_AHEAD = timedelta(days=366)


class ScheduleDraft(BaseModel):
    model_config = ConfigDict(frozen=True)

    start_at: datetime | None = None
    timezone: str | None = None
    active_hours: ActiveHours | None = None
    end_at: datetime | None = None
    recipient_local_time: bool = False
    recurrence: str | None = None


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


class ScheduleHooks(Protocol):
    """What editing and deleting a queue do to its schedules (wabacast.logic.processing.ProcessingService)."""

    def rescheduled(self, queue: Queue) -> None: ...
    def removed(self, queue_id: str) -> None: ...


class TemplateCatalogue(Protocol):
    """An account's synced templates (wabacast.adapters.dynamodb.templates)."""

    def get(self, business_id: str, account_id: str, name: str, language: str) -> AccountTemplate | None: ...


def synced_category(
    catalogue: TemplateCatalogue | None, template: Template, business_id: str, account_id: str
) -> Template:
    """The template with the category the provider gave it, when a sync (or a template webhook) knows it: the
    queue's stated category only stands for templates wabacast has not seen (decision 29)."""
    if catalogue is None:
        return template
    known = catalogue.get(business_id, account_id, template.name, template.language)
    if known is None or known.category is None or known.category == template.category:
        return template
    return template.model_copy(update={"category": known.category})


class QueueService:
    def __init__(
        self,
        businesses: BusinessStore,
        accounts: AccountStore,
        queues: QueueStore,
        clock: Clock = utc_now,
        schedule_hooks: ScheduleHooks | None = None,
        templates: TemplateCatalogue | None = None,
    ) -> None:
        self._businesses = businesses
        self._accounts = accounts
        self._queues = queues
        self._clock = clock
        self._hooks = schedule_hooks
        # The accounts' synced templates (decision 29): a known template's category wins over the one stated.
        self._templates = templates

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
        template = synced_category(self._templates, draft.template, account.business_id, account.id)
        now = self._clock()
        queue = Queue(
            id=new_id("q"),
            business_id=business_id,
            name=draft.name,
            account_id=account.id,
            template=template,
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
            changes["template"] = synced_category(
                self._templates, changes.get("template", before.template), business_id, account.id
            )
        if "schedule" in sent:
            changes["schedule"] = self._schedule(patch.schedule or ScheduleDraft(), business)
        changes["updated_at"] = _after(before.updated_at, self._clock())
        after = Queue.model_validate({**before.model_dump(), **{key: _dump(value) for key, value in changes.items()}})
        self._queues.replace(before, after, forbidden=_NOT_EDITABLE)
        if "schedule" in sent and self._hooks is not None:
            self._hooks.rescheduled(after)
            return self.get(business_id, queue_id)  # a cleared startAt started it
        return after

    def delete(self, business_id: str, queue_id: str) -> None:
        queue = self.get(business_id, queue_id)
        if queue.status in _NOT_DELETABLE:
            raise ConflictError(
                f"a queue that is {queue.status.value} cannot be deleted; pause or cancel it first", field="status"
            )
        self._queues.delete(queue, forbidden=_NOT_DELETABLE)
        if self._hooks is not None:
            self._hooks.removed(queue.id)

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
        now = self._clock()
        start_at = _instant(draft.start_at, timezone)
        end_at = _instant(draft.end_at, timezone)
        if start_at is not None:
            if start_at <= now:
                raise InvalidInputError("schedule.startAt: must be in the future", field="schedule.startAt")
            if start_at > now + MAX_SCHEDULE_AHEAD:
                raise InvalidInputError("schedule.startAt: must be at most a year ahead", field="schedule.startAt")
        if end_at is not None:
            if end_at <= (start_at or now):
                after = "schedule.startAt" if start_at is not None else "now"
                raise InvalidInputError(f"schedule.endAt: must be after {after}", field="schedule.endAt")
            if end_at > (start_at or now) + MAX_SCHEDULE_AHEAD + MAX_SCHEDULE_AHEAD:
                raise InvalidInputError("schedule.endAt: must be at most two years ahead", field="schedule.endAt")
        recurrence = None
        if draft.recurrence is not None:
            try:
                recurrence = Recurrence.parse(draft.recurrence)
            except InvalidRecurrence as invalid:
                raise InvalidInputError(f"schedule.recurrence: {invalid}", field="schedule.recurrence") from invalid
        if draft.recipient_local_time and draft.active_hours is None:
            raise InvalidInputError(
                "schedule.recipientLocalTime: needs schedule.activeHours (the window read in each recipient's zone)",
                field="schedule.recipientLocalTime",
            )
        return Schedule(
            start_at=start_at,
            timezone=timezone,
            active_hours=draft.active_hours,
            end_at=end_at,
            recipient_local_time=draft.recipient_local_time,
            recurrence=recurrence.expression if recurrence else None,
        )


def _instant(value: datetime | None, timezone: str) -> datetime | None:
    """UTC, to the whole second (Scheduler's at() has no finer grain); a wall-clock time means "in the schedule's
    time zone" (the earlier of a repeated hour, and the hour after a skipped one, as zoneinfo reads them)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(timezone))
    return value.astimezone(UTC).replace(microsecond=0)


def _dump(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value
