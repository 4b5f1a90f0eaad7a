"""wabacast.logic.queues: account resolution, template and schedule rules, and the lifecycle of edits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.unit.conftest import AccountFactory
from tests.unit.fakes import CONTENT_SID, TWILIO_CREDENTIALS, FakeBusinessStore, FakeQueueStore, FixedClock, phone
from wabacast.domain.models import (
    AccountStatus,
    ActiveHours,
    Audience,
    Business,
    Provider,
    Queue,
    QueueStatus,
    Template,
)
from wabacast.errors import ConcurrentModificationError, ConflictError, InvalidInputError, NotFoundError
from wabacast.logic.accounts import AccountDraft, AccountPatch, AccountService
from wabacast.logic.businesses import BusinessService
from wabacast.logic.queues import QueueDraft, QueuePatch, QueueService, ScheduleDraft

pytestmark = pytest.mark.filterwarnings("error")

TEMPLATE = Template(name="welcome", language="en")
TWILIO_TEMPLATE = Template(name="welcome", language="en", content_sid=CONTENT_SID)


def _draft(**fields: Any) -> QueueDraft:
    values: dict[str, Any] = {
        "name": "Spring sale",
        "template": TEMPLATE,
        "audience": Audience.model_validate({"recipients": [{"phoneNumber": phone(1)}], "contactTags": ["vip"]}),
        **fields,
    }
    return QueueDraft(**values)


# Account resolution --------------------------------------------------------------------------------------------
def test_explicit_account_wins(make_account: AccountFactory, queue_service: QueueService, business: Business) -> None:
    # GIVEN a primary, a default and a third account
    make_account()
    make_account(is_default=True)
    chosen = make_account()
    # WHEN a queue names the third
    queue = queue_service.create(business.id, _draft(account_id=chosen.id))
    # THEN it uses it
    assert queue.account_id == chosen.id


def test_default_account_beats_primary(
    make_account: AccountFactory, queue_service: QueueService, business: Business
) -> None:
    # GIVEN a primary and a different default account
    make_account()
    default = make_account(is_default=True)
    # WHEN a queue names no account
    queue = queue_service.create(business.id, _draft())
    # THEN it uses the default
    assert queue.account_id == default.id


def test_primary_account_is_the_fallback(
    make_account: AccountFactory, queue_service: QueueService, business: Business
) -> None:
    # GIVEN a primary and no default
    primary = make_account()
    make_account()
    # WHEN a queue names no account
    queue = queue_service.create(business.id, _draft())
    # THEN it uses the primary
    assert queue.account_id == primary.id


def test_no_account_at_all_is_invalid_input(queue_service: QueueService, business: Business) -> None:
    # GIVEN a business without accounts
    # WHEN a queue is created
    with pytest.raises(InvalidInputError) as caught:
        queue_service.create(business.id, _draft())
    # THEN accountId is at fault and the message says to create an account
    assert caught.value.field == "accountId"
    assert "no WhatsApp account yet" in caught.value.message


def test_unknown_account_is_invalid_input(
    make_account: AccountFactory, queue_service: QueueService, business: Business
) -> None:
    # GIVEN a business with an account
    make_account()
    # WHEN a queue names an account that does not exist
    with pytest.raises(InvalidInputError) as caught:
        queue_service.create(business.id, _draft(account_id="acc_missing"))
    # THEN accountId is at fault
    assert caught.value.field == "accountId"
    assert "not found" in caught.value.message


@pytest.mark.parametrize("status", [AccountStatus.SUSPENDED, AccountStatus.PENDING])
def test_account_that_is_not_active_cannot_send(
    status: AccountStatus,
    make_account: AccountFactory,
    account_service: AccountService,
    queue_service: QueueService,
    queue_store: FakeQueueStore,
    business: Business,
) -> None:
    # GIVEN the only account, no longer ACTIVE
    account = make_account()
    account_service.update(business.id, account.id, AccountPatch(status=status))
    # WHEN a queue is created on it
    with pytest.raises(InvalidInputError) as caught:
        queue_service.create(business.id, _draft())
    # THEN accountId is at fault, naming the status, and nothing was stored
    assert caught.value.field == "accountId"
    assert f"it is {status.value}" in caught.value.message
    assert queue_store.items == {}


def test_unknown_business_is_not_found(queue_service: QueueService) -> None:
    # GIVEN no such business
    # WHEN a queue is created for it
    # THEN it is NotFoundError
    with pytest.raises(NotFoundError):
        queue_service.create("biz_missing", _draft())


# Template ------------------------------------------------------------------------------------------------------
def test_twilio_requires_a_content_sid(
    make_account: AccountFactory, queue_service: QueueService, business: Business
) -> None:
    # GIVEN a Twilio account
    make_account(Provider.TWILIO, credentials=dict(TWILIO_CREDENTIALS))
    # WHEN a queue's template has no Content SID
    with pytest.raises(InvalidInputError) as caught:
        queue_service.create(business.id, _draft(template=TEMPLATE))
    # THEN template.contentSid is at fault
    assert caught.value.field == "template.contentSid"


def test_twilio_with_a_content_sid_is_accepted(
    make_account: AccountFactory, queue_service: QueueService, business: Business
) -> None:
    # GIVEN a Twilio account
    make_account(Provider.TWILIO, credentials=dict(TWILIO_CREDENTIALS))
    # WHEN the template has a Content SID
    queue = queue_service.create(business.id, _draft(template=TWILIO_TEMPLATE))
    # THEN the queue is created as a DRAFT
    assert queue.template.content_sid == CONTENT_SID
    assert queue.status == QueueStatus.DRAFT


def test_sandbox_needs_no_content_sid(
    make_account: AccountFactory, queue_service: QueueService, business: Business
) -> None:
    # GIVEN a sandbox account
    make_account()
    # WHEN the template has no Content SID
    queue = queue_service.create(business.id, _draft(template=TEMPLATE))
    # THEN it is accepted
    assert queue.template.content_sid is None


# Schedule ------------------------------------------------------------------------------------------------------
def test_naive_start_is_read_in_the_schedule_time_zone_and_stored_utc(
    make_account: AccountFactory, queue_service: QueueService, queue_store: FakeQueueStore, business: Business
) -> None:
    # GIVEN a wall-clock start time in Madrid in summer (UTC+2)
    make_account()
    schedule = ScheduleDraft(start_at=datetime(2025, 7, 1, 9, 0), timezone="Europe/Madrid")
    # WHEN the queue is created
    queue = queue_service.create(business.id, _draft(schedule=schedule))
    # THEN the start is 07:00 UTC, stored as UTC, with the time zone kept
    assert queue.schedule.start_at == datetime(2025, 7, 1, 7, 0, tzinfo=UTC)
    assert queue.schedule.start_at is not None
    assert queue.schedule.start_at.utcoffset() == timedelta(0)
    assert queue.schedule.timezone == "Europe/Madrid"
    stored = queue_service.get(business.id, queue.id)
    assert stored.schedule.start_at == datetime(2025, 7, 1, 7, 0, tzinfo=UTC)
    assert queue_store.items[(business.id, queue.id)]["schedule"]["start_at"] == "2025-07-01T07:00:00Z"


def test_naive_start_in_winter_uses_the_winter_offset(
    make_account: AccountFactory, queue_service: QueueService, business: Business
) -> None:
    # GIVEN a wall-clock start time in Madrid in winter (UTC+1)
    make_account()
    schedule = ScheduleDraft(start_at=datetime(2025, 12, 1, 9, 0), timezone="Europe/Madrid")
    # WHEN the queue is created
    queue = queue_service.create(business.id, _draft(schedule=schedule))
    # THEN the start is 08:00 UTC
    assert queue.schedule.start_at == datetime(2025, 12, 1, 8, 0, tzinfo=UTC)


def test_start_with_an_offset_keeps_its_instant(
    make_account: AccountFactory, queue_service: QueueService, business: Business
) -> None:
    # GIVEN a start time with an explicit -05:00 offset, in a schedule whose zone is Madrid
    make_account()
    start = datetime(2025, 7, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
    # WHEN the queue is created
    queue = queue_service.create(business.id, _draft(schedule=ScheduleDraft(start_at=start, timezone="Europe/Madrid")))
    # THEN the instant is kept (14:00 UTC), not re-read in Madrid
    assert queue.schedule.start_at == datetime(2025, 7, 1, 14, 0, tzinfo=UTC)


def test_time_zone_defaults_to_the_business_time_zone(
    business_service: BusinessService, account_service: AccountService, queue_service: QueueService
) -> None:
    # GIVEN a business in Tokyo (UTC+9, no daylight saving) with an account
    tokyo, _, _ = business_service.create("Tokyo shop", "Asia/Tokyo")
    account_service.create(tokyo.id, AccountDraft(display_name="x", phone_number=phone(5), provider=Provider.SANDBOX))
    # WHEN a queue gives a naive start and no time zone
    queue = queue_service.create(tokyo.id, _draft(schedule=ScheduleDraft(start_at=datetime(2025, 3, 1, 9, 0))))
    # THEN the schedule takes the business's zone and reads the start in it
    assert queue.schedule.timezone == "Asia/Tokyo"
    assert queue.schedule.start_at == datetime(2025, 3, 1, 0, 0, tzinfo=UTC)


def test_no_schedule_means_no_start_and_the_business_zone(
    make_account: AccountFactory, queue_service: QueueService, business: Business
) -> None:
    # GIVEN no schedule
    make_account()
    # WHEN the queue is created
    queue = queue_service.create(business.id, _draft())
    # THEN it has no start and the business's zone
    assert queue.schedule.start_at is None
    assert queue.schedule.timezone == business.timezone == "Europe/Madrid"


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(seconds=-1), timedelta(days=-30)])
def test_start_not_in_the_future_is_refused(
    offset: timedelta,
    make_account: AccountFactory,
    queue_service: QueueService,
    queue_store: FakeQueueStore,
    business: Business,
    clock: FixedClock,
) -> None:
    # GIVEN a start at or before the clock's now
    make_account()
    schedule = ScheduleDraft(start_at=clock.now + offset)
    # WHEN the queue is created
    with pytest.raises(InvalidInputError) as caught:
        queue_service.create(business.id, _draft(schedule=schedule))
    # THEN schedule.startAt is at fault and nothing was stored
    assert caught.value.field == "schedule.startAt"
    assert queue_store.items == {}


def test_naive_start_in_the_past_of_the_zone_is_refused(
    make_account: AccountFactory, queue_service: QueueService, business: Business, clock: FixedClock
) -> None:
    # GIVEN the clock at 10:00 UTC (11:00 in Madrid) and a naive 10:30 start meant in Madrid (09:30 UTC)
    make_account()
    start = clock.now.replace(tzinfo=None, minute=30)
    # WHEN the queue is created
    # THEN it is refused: 10:30 in Madrid is already past, although 10:30 UTC is not
    with pytest.raises(InvalidInputError):
        queue_service.create(business.id, _draft(schedule=ScheduleDraft(start_at=start, timezone="Europe/Madrid")))


def test_active_hours_are_kept(make_account: AccountFactory, queue_service: QueueService, business: Business) -> None:
    # GIVEN an overnight sending window
    make_account()
    hours = ActiveHours(start="22:00", end="06:00", days=["MON", "TUE"])
    # WHEN the queue is created with it
    queue = queue_service.create(business.id, _draft(schedule=ScheduleDraft(active_hours=hours)))
    # THEN the stored schedule has it
    assert queue_service.get(business.id, queue.id).schedule.active_hours == hours


# Created queue -------------------------------------------------------------------------------------------------
def test_created_queue_is_a_draft_with_empty_counters(
    make_account: AccountFactory, queue_service: QueueService, business: Business, clock: FixedClock
) -> None:
    # GIVEN an account
    make_account()
    # WHEN a queue is created
    queue = queue_service.create(business.id, _draft(priority=9, max_attempts=2, variables={"1": "{{contact.name}}"}))
    # THEN it is stored as a DRAFT, with zero counters and the clock's time, and reads back equal
    assert queue.status == QueueStatus.DRAFT
    assert queue.counters.total == queue.counters.sent == 0
    assert queue.created_at == queue.updated_at == clock.now
    assert (queue.priority, queue.max_attempts) == (9, 2)
    assert queue_service.get(business.id, queue.id) == queue


def test_queue_of_another_business_is_not_found(
    make_account: AccountFactory, queue_service: QueueService, business_service: BusinessService, business: Business
) -> None:
    # GIVEN a queue of one business and another business
    make_account()
    queue = queue_service.create(business.id, _draft())
    other, _, _ = business_service.create("Other", "UTC")
    # WHEN the other business reads, edits or deletes it
    # THEN it does not exist for it
    with pytest.raises(NotFoundError):
        queue_service.get(other.id, queue.id)
    with pytest.raises(NotFoundError):
        queue_service.update(other.id, queue.id, QueuePatch(name="x"))
    with pytest.raises(NotFoundError):
        queue_service.delete(other.id, queue.id)


# Editing -------------------------------------------------------------------------------------------------------
@pytest.fixture
def queue(make_account: AccountFactory, queue_service: QueueService, business: Business) -> Queue:
    make_account()
    return queue_service.create(
        business.id,
        _draft(
            variables={"1": "{{contact.name}}"},
            schedule=ScheduleDraft(start_at=datetime(2025, 6, 1, 9, 0), timezone="Europe/Madrid"),
        ),
    )


@pytest.mark.parametrize(
    "status", [QueueStatus.PROCESSING, QueueStatus.COMPLETED, QueueStatus.CANCELLED, QueueStatus.FAILED]
)
def test_update_is_refused_while_processing_or_finished(
    status: QueueStatus, queue: Queue, queue_service: QueueService, queue_store: FakeQueueStore, business: Business
) -> None:
    # GIVEN a queue in a state that forbids editing
    queue_store.set_status(business.id, queue.id, status)
    # WHEN it is edited
    with pytest.raises(ConflictError) as caught:
        queue_service.update(business.id, queue.id, QueuePatch(name="New name"))
    # THEN the edit is refused on status, naming it, and nothing was written
    assert caught.value.field == "status"
    assert status.value in caught.value.message
    assert queue_store.calls.get("replace", 0) == 0
    assert queue_service.get(business.id, queue.id).name == "Spring sale"


@pytest.mark.parametrize("status", [QueueStatus.DRAFT, QueueStatus.SCHEDULED, QueueStatus.PAUSED])
def test_update_is_allowed_before_processing_and_when_paused(
    status: QueueStatus, queue: Queue, queue_service: QueueService, queue_store: FakeQueueStore, business: Business
) -> None:
    # GIVEN a queue that may be edited
    queue_store.set_status(business.id, queue.id, status)
    # WHEN it is renamed
    updated = queue_service.update(business.id, queue.id, QueuePatch(name="New name"))
    # THEN the new name is stored and the status is untouched
    assert updated.name == "New name"
    stored = queue_service.get(business.id, queue.id)
    assert (stored.name, stored.status) == ("New name", status)


def test_update_racing_the_planner_is_refused_by_the_store(
    queue: Queue, queue_service: QueueService, queue_store: FakeQueueStore, business: Business
) -> None:
    # GIVEN a DRAFT queue that the planner starts processing between our read and our write
    queue_store.before_next("replace", lambda: queue_store.set_status(business.id, queue.id, QueueStatus.PROCESSING))
    # WHEN it is edited
    with pytest.raises(ConcurrentModificationError):
        queue_service.update(business.id, queue.id, QueuePatch(name="Too late"))
    # THEN the store's condition (forbidden statuses) kept the edit out
    assert queue_service.get(business.id, queue.id).name == "Spring sale"


def test_partial_update_replaces_only_sent_fields(
    queue: Queue, queue_service: QueueService, business: Business, clock: FixedClock
) -> None:
    # GIVEN a queue with variables, an audience and a schedule
    new_audience = Audience(contact_tags=["newsletter"])
    # WHEN only the name and the audience are sent
    updated = queue_service.update(business.id, queue.id, QueuePatch(name="Renamed", audience=new_audience))
    # THEN those two are replaced whole, everything else is as before, and updated_at moved
    assert updated.name == "Renamed"
    assert updated.audience == new_audience
    assert updated.audience.recipients == []
    assert updated.variables == queue.variables
    assert updated.template == queue.template
    assert updated.schedule == queue.schedule
    assert (updated.priority, updated.max_attempts, updated.account_id) == (
        queue.priority,
        queue.max_attempts,
        queue.account_id,
    )
    assert updated.created_at == queue.created_at
    assert updated.updated_at > queue.updated_at
    assert queue_service.get(business.id, queue.id) == updated


def test_update_keeps_lifecycle_fields_written_meanwhile(
    queue: Queue, queue_service: QueueService, queue_store: FakeQueueStore, business: Business
) -> None:
    # GIVEN a PAUSED queue whose counters the senders moved
    queue_store.set_status(business.id, queue.id, QueueStatus.PAUSED)
    queue_store.items[(business.id, queue.id)]["counters"]["sent"] = 42
    # WHEN it is renamed
    queue_service.update(business.id, queue.id, QueuePatch(name="Renamed"))
    # THEN status and counters are still the stored ones
    stored = queue_service.get(business.id, queue.id)
    assert (stored.status, stored.counters.sent) == (QueueStatus.PAUSED, 42)


def test_update_schedule_is_recomputed(queue: Queue, queue_service: QueueService, business: Business) -> None:
    # GIVEN a queue scheduled in Madrid
    # WHEN a new schedule with a naive start in New York (UTC-4 in summer) is sent
    schedule = ScheduleDraft(start_at=datetime(2025, 8, 1, 9, 0), timezone="America/New_York")
    updated = queue_service.update(business.id, queue.id, QueuePatch(schedule=schedule))
    # THEN the start is read in New York and stored in UTC
    assert updated.schedule.timezone == "America/New_York"
    assert updated.schedule.start_at == datetime(2025, 8, 1, 13, 0, tzinfo=UTC)


def test_update_schedule_refuses_a_past_start(
    queue: Queue, queue_service: QueueService, business: Business, clock: FixedClock
) -> None:
    # GIVEN a queue
    # WHEN its schedule is moved to the past
    with pytest.raises(InvalidInputError) as caught:
        queue_service.update(
            business.id, queue.id, QueuePatch(schedule=ScheduleDraft(start_at=clock.now - timedelta(hours=1)))
        )
    # THEN schedule.startAt is at fault
    assert caught.value.field == "schedule.startAt"


def test_update_to_a_twilio_account_needs_a_content_sid(
    queue: Queue, make_account: AccountFactory, queue_service: QueueService, business: Business
) -> None:
    # GIVEN a queue without Content SID and a Twilio account
    twilio = make_account(Provider.TWILIO, credentials=dict(TWILIO_CREDENTIALS))
    # WHEN the queue is moved to the Twilio account alone
    with pytest.raises(InvalidInputError) as caught:
        queue_service.update(business.id, queue.id, QueuePatch(account_id=twilio.id))
    # THEN template.contentSid is at fault; with the template in the same patch it works
    assert caught.value.field == "template.contentSid"
    updated = queue_service.update(business.id, queue.id, QueuePatch(account_id=twilio.id, template=TWILIO_TEMPLATE))
    assert (updated.account_id, updated.template.content_sid) == (twilio.id, CONTENT_SID)


def test_update_template_alone_is_checked_against_the_queues_account(
    make_account: AccountFactory, queue_service: QueueService, business: Business
) -> None:
    # GIVEN a queue on a Twilio account
    make_account(Provider.TWILIO, credentials=dict(TWILIO_CREDENTIALS))
    queue = queue_service.create(business.id, _draft(template=TWILIO_TEMPLATE))
    # WHEN its template is replaced by one without Content SID
    # THEN it is refused
    with pytest.raises(InvalidInputError) as caught:
        queue_service.update(business.id, queue.id, QueuePatch(template=TEMPLATE))
    assert caught.value.field == "template.contentSid"


def test_update_with_a_frozen_clock_still_moves_updated_at(
    queue: Queue, queue_service: QueueService, business: Business
) -> None:
    # GIVEN a frozen clock
    # WHEN the queue is edited twice
    first = queue_service.update(business.id, queue.id, QueuePatch(priority=1))
    second = queue_service.update(business.id, queue.id, QueuePatch(priority=2))
    # THEN updated_at strictly increases (it is the optimistic-lock version)
    assert queue.updated_at < first.updated_at < second.updated_at
    assert second.priority == 2


# Deleting ------------------------------------------------------------------------------------------------------
def test_delete_is_refused_while_processing(
    queue: Queue, queue_service: QueueService, queue_store: FakeQueueStore, business: Business
) -> None:
    # GIVEN a PROCESSING queue
    queue_store.set_status(business.id, queue.id, QueueStatus.PROCESSING)
    # WHEN it is deleted
    with pytest.raises(ConflictError) as caught:
        queue_service.delete(business.id, queue.id)
    # THEN it is refused on status and the queue stays
    assert caught.value.field == "status"
    assert "pause or cancel it first" in caught.value.message
    assert queue_service.get(business.id, queue.id).id == queue.id


@pytest.mark.parametrize(
    "status",
    [
        QueueStatus.DRAFT,
        QueueStatus.SCHEDULED,
        QueueStatus.PAUSED,
        QueueStatus.COMPLETED,
        QueueStatus.CANCELLED,
        QueueStatus.FAILED,
    ],
)
def test_delete_is_allowed_in_other_states(
    status: QueueStatus, queue: Queue, queue_service: QueueService, queue_store: FakeQueueStore, business: Business
) -> None:
    # GIVEN a queue that is not PROCESSING
    queue_store.set_status(business.id, queue.id, status)
    # WHEN it is deleted
    queue_service.delete(business.id, queue.id)
    # THEN it is gone
    with pytest.raises(NotFoundError):
        queue_service.get(business.id, queue.id)


def test_delete_racing_the_planner_is_refused_by_the_store(
    queue: Queue, queue_service: QueueService, queue_store: FakeQueueStore, business: Business
) -> None:
    # GIVEN a queue that starts processing between our read and our delete
    queue_store.before_next("delete", lambda: queue_store.set_status(business.id, queue.id, QueueStatus.PROCESSING))
    # WHEN it is deleted
    with pytest.raises(ConflictError):
        queue_service.delete(business.id, queue.id)
    # THEN it is still there
    assert queue_service.get(business.id, queue.id).status == QueueStatus.PROCESSING


# Listing -------------------------------------------------------------------------------------------------------
def test_list_filters_by_status_and_account_and_pages(
    make_account: AccountFactory,
    queue_service: QueueService,
    queue_store: FakeQueueStore,
    business_store: FakeBusinessStore,
    business: Business,
) -> None:
    # GIVEN three queues on two accounts, one of them SCHEDULED
    first = make_account()
    second = make_account()
    a = queue_service.create(business.id, _draft(name="a", account_id=first.id))
    b = queue_service.create(business.id, _draft(name="b", account_id=second.id))
    c = queue_service.create(business.id, _draft(name="c", account_id=second.id))
    queue_store.set_status(business.id, c.id, QueueStatus.SCHEDULED)
    # WHEN they are listed by account, by status and by account and status
    by_account = queue_service.list(business.id, status=None, account_id=second.id, limit=10, next_token=None)
    by_status = queue_service.list(business.id, status=QueueStatus.DRAFT, account_id=None, limit=10, next_token=None)
    both = queue_service.list(
        business.id, status=QueueStatus.SCHEDULED, account_id=second.id, limit=10, next_token=None
    )
    # THEN each filter holds
    assert {queue.id for queue in by_account.items} == {b.id, c.id}
    assert {queue.id for queue in by_status.items} == {a.id, b.id}
    assert [queue.id for queue in both.items] == [c.id]
    # AND paging one by one visits every queue once
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        page = queue_service.list(business.id, status=None, account_id=None, limit=1, next_token=token)
        seen += [queue.id for queue in page.items]
        token = page.next_token
        if token is None:
            break
    assert sorted(seen) == sorted([a.id, b.id, c.id])
    assert token is None
