"""wabacast.logic.account_health with fakes: ownership proof, standing, protection of queues, template webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from tests.unit.conftest import AccountFactory
from tests.unit.delivery_fakes import FakeJobStore, FakeMetrics, FakePlannerRegistry, FakeQueueLifecycle
from tests.unit.fakes import (
    META_CREDENTIALS,
    FakeAccountStore,
    FakeBusinessStore,
    FakeQueueStore,
    FakeSecretStore,
    FixedClock,
)
from wabacast.domain.health import (
    AccountReadError,
    AccountSnapshot,
    AccountTemplate,
    AccountUpdate,
    PhoneNumberHealth,
    ProviderTemplate,
    QualityUpdate,
    TemplateStatus,
    TemplateStatusUpdate,
)
from wabacast.domain.models import (
    Account,
    AccountStatus,
    Audience,
    Business,
    MessagingTier,
    Page,
    Provider,
    QualityRating,
    Queue,
    QueueStatus,
    Template,
    TemplateCategory,
)
from wabacast.domain.webhooks import WebhookAccount
from wabacast.errors import ConflictError, TemplateNotApprovedError
from wabacast.logic.account_health import AccountHealthService, digits
from wabacast.logic.accounts import AccountPatch, AccountService
from wabacast.logic.processing import ProcessingService
from wabacast.logic.queues import QueueDraft, QueueService

WABA = META_CREDENTIALS["wabaId"]


# Fakes ---------------------------------------------------------------------------------------------------------
@dataclass
class FakeReaders:
    """The provider as each account's reader sees it: a snapshot per account id, or an error."""

    snapshots: dict[str, AccountSnapshot] = field(default_factory=dict)
    errors: dict[str, AccountReadError] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def for_account(self, account: Account, secret_name: str) -> FakeReader:
        return FakeReader(self, account.id)

    def answer(self, account: Account, **phone: Any) -> None:
        templates = phone.pop("templates", None)
        health = PhoneNumberHealth(display_phone_number=phone.pop("display", account.phone_number), **phone)
        self.snapshots[account.id] = AccountSnapshot(phone=health, templates=templates)


@dataclass
class FakeReader:
    readers: FakeReaders
    account_id: str

    def read(self, *, include_templates: bool = True) -> AccountSnapshot:
        self.readers.reads.append(self.account_id)
        if self.account_id in self.readers.errors:
            raise self.readers.errors[self.account_id]
        return self.readers.snapshots[self.account_id]


class FakeTemplateStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str, str], AccountTemplate] = {}
        self.writes = 0

    def get(self, business_id: str, account_id: str, name: str, language: str) -> AccountTemplate | None:
        return self.items.get((business_id, account_id, name, language))

    def all(self, business_id: str, account_id: str) -> list[AccountTemplate]:
        return [t for (b, a, _, _), t in sorted(self.items.items()) if (b, a) == (business_id, account_id)]

    def list(self, business_id: str, account_id: str, limit: int, next_token: str | None) -> Page[AccountTemplate]:
        return Page(items=self.all(business_id, account_id)[:limit])

    def replace(self, business_id: str, put: Sequence[AccountTemplate], remove: Sequence[AccountTemplate]) -> None:
        for template in remove:
            del self.items[(business_id, template.account_id, template.name, template.language)]
        for template in put:
            self.items[(business_id, template.account_id, template.name, template.language)] = template
        self.writes += len(put) + len(remove)

    def record_status(self, business_id: str, template: AccountTemplate) -> bool:
        key = (business_id, template.account_id, template.name, template.language)
        current = self.items.get(key)
        if current is not None and current.updated_at > template.updated_at:
            return False
        self.items[key] = template
        self.writes += 1
        return True

    def delete_all(self, business_id: str, account_id: str) -> None:
        self.replace(business_id, (), self.all(business_id, account_id))


class FakePauser:
    """The lifecycle's conditional status move, over the fake queue store."""

    def __init__(self, queues: FakeQueueStore) -> None:
        self._queues = queues

    def transition(
        self,
        queue: Queue,
        *,
        allowed_from: Sequence[QueueStatus],
        to: QueueStatus,
        now: datetime,
        reason: str | None = None,
        register: bool | None = None,
        paused_from: QueueStatus | None = None,
    ) -> bool:
        item = self._queues.items[(queue.business_id, queue.id)]
        if QueueStatus(item["status"]) not in allowed_from:
            return False
        item.update(status=to.value, status_reason=reason, paused_from=paused_from.value if paused_from else None)
        return True


class FakeWabas:
    def __init__(self, accounts: FakeAccountStore) -> None:
        self._accounts = accounts

    def accounts_of_waba(self, waba_id: str) -> list[WebhookAccount]:
        return [
            WebhookAccount(business_id, account_id, Provider(item["provider"]))
            for (business_id, account_id), item in self._accounts.items.items()
            if item.get("waba_id") == waba_id
        ]


@dataclass
class World:
    health: AccountHealthService
    accounts: AccountService
    queues: QueueService
    readers: FakeReaders
    templates: FakeTemplateStore
    queue_store: FakeQueueStore
    metrics: FakeMetrics
    business: Business
    business_store: FakeBusinessStore

    def account(self, account: Account) -> Account:
        return self.accounts.get(account.business_id, account.id)

    def queue(self, queue: Queue) -> Queue:
        found = self.queue_store.get(queue.business_id, queue.id)
        assert found is not None
        return found

    def processing_queue(self, account: Account, template: str = "spring_sale") -> Queue:
        queue = self.queues.create(
            account.business_id,
            QueueDraft(
                name="Sale",
                account_id=account.id,
                template=Template(name=template, language="en_US"),
                audience=Audience.model_validate({"recipients": [{"phoneNumber": "+34612300001"}]}),
            ),
        )
        self.queue_store.set_status(queue.business_id, queue.id, QueueStatus.PROCESSING)
        return self.queue(queue)

    def make_default(self, account: Account) -> None:
        self.accounts.update(account.business_id, account.id, AccountPatch(is_default=True))


@pytest.fixture
def world(
    business_store: FakeBusinessStore,
    account_store: FakeAccountStore,
    queue_store: FakeQueueStore,
    secret_store: FakeSecretStore,
    account_service: AccountService,
    clock: FixedClock,
    business: Business,
) -> World:
    readers = FakeReaders()
    templates = FakeTemplateStore()
    metrics = FakeMetrics()
    health = AccountHealthService(
        businesses=business_store,
        accounts=account_store,
        queues=queue_store,
        templates=templates,
        readers=readers,
        secrets=secret_store,
        pauser=FakePauser(queue_store),
        metrics=metrics,
        wabas=FakeWabas(account_store),
        clock=clock,
    )
    queues = QueueService(business_store, account_store, queue_store, clock=clock, templates=templates)
    return World(health, account_service, queues, readers, templates, queue_store, metrics, business, business_store)


def meta(make_account: AccountFactory, **fields: Any) -> Account:
    fields.setdefault("credentials", dict(META_CREDENTIALS))
    return make_account(Provider.META, **fields)


# Proof of ownership --------------------------------------------------------------------------------------------
def test_a_new_meta_account_waits_for_its_ownership_check(make_account: AccountFactory) -> None:
    # WHEN a Meta account is created asking to be ACTIVE
    account = meta(make_account, status=AccountStatus.ACTIVE, verified=False)

    # THEN it is PENDING with the reason, cannot send, and knows its WABA
    assert account.status == AccountStatus.PENDING
    assert account.status_reason == "awaiting ownership check"
    assert not account.can_send
    assert account.waba_id == WABA


def test_a_sandbox_account_needs_no_proof(make_account: AccountFactory) -> None:
    # WHEN a sandbox account is created
    account = make_account(Provider.SANDBOX)

    # THEN it is ACTIVE at once, as before
    assert account.status == AccountStatus.ACTIVE
    assert not account.needs_ownership_proof


def test_a_sync_confirming_the_number_makes_the_account_active(world: World, make_account: AccountFactory) -> None:
    # GIVEN an unverified Meta account whose provider knows its number (written as Meta displays it)
    account = meta(make_account, verified=False)
    world.readers.answer(account, display=f"+34 612 3{account.phone_number[-5:]}", provider_status="CONNECTED")

    # WHEN it is synced
    synced = world.health.sync(account.business_id, account.id)

    # THEN it is ACTIVE, verified now, with no reason
    assert synced.status == AccountStatus.ACTIVE
    assert synced.ownership_verified_at is not None
    assert synced.status_reason is None
    assert world.account(account) == synced


def test_a_sync_finding_another_number_leaves_the_account_pending(world: World, make_account: AccountFactory) -> None:
    # GIVEN an unverified account whose credentials' number id is someone else's number
    account = meta(make_account, verified=False)
    world.readers.answer(account, display="+34612399999")

    # WHEN it is synced
    synced = world.health.sync(account.business_id, account.id)

    # THEN it stays PENDING and says which number the provider knows
    assert synced.status == AccountStatus.PENDING
    assert synced.ownership_verified_at is None
    assert synced.status_reason is not None
    assert "+34612399999" in synced.status_reason


def test_refused_credentials_leave_the_account_pending(world: World, make_account: AccountFactory) -> None:
    # GIVEN a provider that refuses the account's credentials
    account = meta(make_account, verified=False)
    world.readers.errors[account.id] = AccountReadError("190", "token expired", credentials_refused=True)

    # WHEN it is synced
    synced = world.health.sync(account.business_id, account.id)

    # THEN it stays PENDING with the refusal as the reason and the sync error
    assert synced.status == AccountStatus.PENDING
    assert synced.status_reason == "ownership check failed: meta refused the account's credentials (190)"
    assert synced.sync_error == "190: token expired"


def test_a_verified_account_found_on_another_number_stops_sending(world: World, make_account: AccountFactory) -> None:
    # GIVEN a verified account with a PROCESSING queue, whose number id now belongs to another number
    account = meta(make_account)
    queue = world.processing_queue(account)
    world.readers.answer(account, display="+34612399999")

    # WHEN it is synced
    synced = world.health.sync(account.business_id, account.id)

    # THEN it is PENDING again and its queue paused
    assert synced.status == AccountStatus.PENDING
    assert world.queue(queue).status == QueueStatus.PAUSED


def test_an_unverified_account_cannot_be_set_active(world: World, make_account: AccountFactory) -> None:
    # GIVEN an unverified Meta account
    account = meta(make_account, verified=False)

    # WHEN the tenant sets it ACTIVE
    with pytest.raises(ConflictError) as caught:
        world.accounts.update(account.business_id, account.id, AccountPatch(status=AccountStatus.ACTIVE))

    # THEN the status rule is named
    assert caught.value.field == "status"


def test_a_new_number_must_be_proven_again(world: World, make_account: AccountFactory) -> None:
    # GIVEN a verified Meta account
    account = meta(make_account)

    # WHEN its phone number changes
    after = world.accounts.update(account.business_id, account.id, AccountPatch(phone_number="+34612388888"))

    # THEN it is PENDING again, awaiting its ownership check
    assert after.status == AccountStatus.PENDING
    assert after.ownership_verified_at is None
    assert after.status_reason == "awaiting ownership check"


# Standing --------------------------------------------------------------------------------------------------------
def test_a_sync_records_quality_tier_and_throughput(world: World, make_account: AccountFactory) -> None:
    # GIVEN a verified account rated GREEN by its provider, on the 10K tier
    account = meta(make_account)
    world.readers.answer(
        account,
        quality_rating=QualityRating.GREEN,
        messaging_tier=MessagingTier.TIER_10K,
        throughput="HIGH",
        provider_status="CONNECTED",
    )

    # WHEN it is synced
    synced = world.health.sync(account.business_id, account.id)

    # THEN its standing is the provider's
    assert (synced.quality_rating, synced.messaging_tier) == (QualityRating.GREEN, MessagingTier.TIER_10K)
    assert (synced.throughput, synced.provider_status) == ("HIGH", "CONNECTED")
    assert synced.last_synced_at is not None


def test_a_banned_number_is_suspended_and_reinstated_by_later_syncs(world: World, make_account: AccountFactory) -> None:
    # GIVEN a verified account the provider reports BANNED
    account = meta(make_account)
    world.readers.answer(account, provider_status="BANNED")

    # WHEN it is synced, then synced again once the provider reports it CONNECTED
    banned = world.health.sync(account.business_id, account.id)
    world.readers.answer(account, provider_status="CONNECTED")
    reinstated = world.health.sync(account.business_id, account.id)

    # THEN it was SUSPENDED by the provider, then ACTIVE again
    assert (banned.status, banned.suspended_by_provider) == (AccountStatus.SUSPENDED, True)
    assert banned.status_reason == "meta reports the number BANNED"
    assert (reinstated.status, reinstated.suspended_by_provider) == (AccountStatus.ACTIVE, False)


def test_a_tenants_own_suspension_is_not_lifted_by_a_sync(world: World, make_account: AccountFactory) -> None:
    # GIVEN an account its tenant suspended
    account = meta(make_account, status=AccountStatus.SUSPENDED)
    world.readers.answer(account, provider_status="CONNECTED")

    # WHEN it is synced
    synced = world.health.sync(account.business_id, account.id)

    # THEN it stays SUSPENDED
    assert synced.status == AccountStatus.SUSPENDED


def test_turning_red_is_counted_once(world: World, make_account: AccountFactory) -> None:
    # GIVEN an account whose provider rates it RED
    account = meta(make_account)
    world.readers.answer(account, quality_rating=QualityRating.RED)

    # WHEN it is synced twice
    world.health.sync(account.business_id, account.id)
    world.health.sync(account.business_id, account.id)

    # THEN AccountQualityRed counts the one change
    assert world.metrics.total("AccountQualityRed", account_id=account.id) == 1


# Protection ------------------------------------------------------------------------------------------------------
def test_red_pauses_the_processing_queues_when_there_is_no_fallback(world: World, make_account: AccountFactory) -> None:
    # GIVEN the business's only account with a PROCESSING and a DRAFT queue
    account = meta(make_account)
    processing = world.processing_queue(account)
    draft = world.processing_queue(account)
    world.queue_store.set_status(draft.business_id, draft.id, QueueStatus.DRAFT)
    world.readers.answer(account, quality_rating=QualityRating.RED)

    # WHEN a sync finds it RED
    world.health.sync(account.business_id, account.id)

    # THEN the PROCESSING queue is PAUSED with the reason, the draft untouched, and it is counted
    paused = world.queue(processing)
    assert paused.status == QueueStatus.PAUSED
    assert paused.status_reason == (
        f"paused by account health: account {account.id} cannot send (quality rating RED) "
        "and the business has no healthy default account"
    )
    assert paused.paused_from == QueueStatus.PROCESSING
    assert world.queue(draft).status == QueueStatus.DRAFT
    assert world.metrics.total("QueuesPausedByHealth", account_id=account.id) == 1


def test_red_falls_back_to_a_default_account_that_can_send(world: World, make_account: AccountFactory) -> None:
    # GIVEN an account with a PROCESSING queue, and another account, the business's default, that can send
    account = meta(make_account)
    queue = world.processing_queue(account)
    default = make_account(Provider.SANDBOX)
    world.make_default(default)
    world.readers.answer(account, quality_rating=QualityRating.RED)

    # WHEN the first one turns RED
    report_before = world.metrics.total("QueuesFallingBack")
    world.health.sync(account.business_id, account.id)

    # THEN the queue stays PROCESSING (the planner sends it through the default account) and that is counted
    assert world.queue(queue).status == QueueStatus.PROCESSING
    assert world.metrics.total("QueuesFallingBack", account_id=account.id) == report_before + 1


def test_no_fallback_to_a_default_account_whose_template_is_known_bad(
    world: World, make_account: AccountFactory
) -> None:
    # GIVEN a default account whose copy of the queue's template is DISABLED
    account = meta(make_account)
    queue = world.processing_queue(account)
    default = make_account(Provider.SANDBOX)
    world.make_default(default)
    world.templates.items[(default.business_id, default.id, "spring_sale", "en_US")] = AccountTemplate(
        account_id=default.id,
        name="spring_sale",
        language="en_US",
        status=TemplateStatus.DISABLED,
        category=None,
        updated_at=datetime(2025, 1, 1),
    )
    world.readers.answer(account, provider_status="FLAGGED")

    # WHEN the queue's account is FLAGGED
    synced = world.health.sync(account.business_id, account.id)

    # THEN it cannot send, and the queue is paused rather than falling back
    assert synced.flagged
    assert not synced.can_send
    assert world.queue(queue).status == QueueStatus.PAUSED


def test_a_paused_template_pauses_only_the_queues_sending_it(world: World, make_account: AccountFactory) -> None:
    # GIVEN an account with queues sending spring_sale and order_update, and spring_sale known as APPROVED
    account = meta(make_account)
    spring = world.processing_queue(account, "spring_sale")
    order = world.processing_queue(account, "order_update")
    world.readers.answer(
        account,
        templates=(ProviderTemplate("spring_sale", "en_US", TemplateStatus.APPROVED, TemplateCategory.MARKETING),),
    )
    world.health.sync(account.business_id, account.id)

    # WHEN Meta reports spring_sale PAUSED (a webhook signed by the account's WABA)
    changed = world.health.apply_template_status(
        TemplateStatusUpdate(waba_id=WABA, name="spring_sale", language="en_US", status=TemplateStatus.PAUSED)
    )

    # THEN only its queue is paused, with the template's status as the reason
    assert changed == 1
    assert world.queue(spring).status == QueueStatus.PAUSED
    assert world.queue(spring).status_reason == "paused by account health: template spring_sale (en_US) is PAUSED"
    assert world.queue(order).status == QueueStatus.PROCESSING
    # AND the stored template keeps the category the sync read
    stored = world.templates.get(account.business_id, account.id, "spring_sale", "en_US")
    assert stored is not None
    assert (stored.status, stored.category) == (TemplateStatus.PAUSED, TemplateCategory.MARKETING)


def test_a_sync_that_reads_a_disabled_template_pauses_its_queues(world: World, make_account: AccountFactory) -> None:
    # GIVEN a queue sending spring_sale
    account = meta(make_account)
    queue = world.processing_queue(account)
    world.readers.answer(account, templates=(ProviderTemplate("spring_sale", "en_US", TemplateStatus.DISABLED, None),))

    # WHEN a sync reads it DISABLED
    world.health.sync(account.business_id, account.id)

    # THEN the queue is paused
    assert world.queue(queue).status == QueueStatus.PAUSED


def test_a_sync_writes_only_changed_templates_and_deletes_vanished_ones(
    world: World, make_account: AccountFactory
) -> None:
    # GIVEN an account synced once with two templates
    account = meta(make_account)
    first = ProviderTemplate("a_one", "en_US", TemplateStatus.APPROVED, TemplateCategory.UTILITY)
    second = ProviderTemplate("b_two", "en_US", TemplateStatus.APPROVED, TemplateCategory.UTILITY)
    world.readers.answer(account, templates=(first, second))
    world.health.sync(account.business_id, account.id)
    writes = world.templates.writes

    # WHEN the next sync finds the first unchanged and the second gone
    world.readers.answer(account, templates=(first,))
    world.health.sync(account.business_id, account.id)

    # THEN one write: the deletion
    assert world.templates.writes == writes + 1
    assert [t.name for t in world.templates.all(account.business_id, account.id)] == ["a_one"]


# Webhooks ----------------------------------------------------------------------------------------------------
def test_a_flagged_update_stops_the_number_and_unflagged_lets_it_send(
    world: World, make_account: AccountFactory
) -> None:
    # GIVEN a verified account
    account = meta(make_account)
    number = digits(account.phone_number)

    # WHEN Meta flags it with a lower limit, then unflags it
    world.health.apply_quality(QualityUpdate(WABA, number, "FLAGGED", MessagingTier.TIER_250))
    flagged = world.account(account)
    world.health.apply_quality(QualityUpdate(WABA, number, "UNFLAGGED"))

    # THEN it was flagged (no sending) on the new tier, then back
    assert (flagged.flagged, flagged.can_send, flagged.messaging_tier) == (True, False, MessagingTier.TIER_250)
    assert world.account(account).can_send


def test_a_quality_update_for_another_number_of_the_waba_changes_nothing(
    world: World, make_account: AccountFactory
) -> None:
    # GIVEN a verified account
    account = meta(make_account)

    # WHEN Meta flags another number of the same WABA
    changed = world.health.apply_quality(QualityUpdate(WABA, "34612399999", "FLAGGED"))

    # THEN this account is untouched
    assert changed == 0
    assert not world.account(account).flagged


def test_an_update_older_than_the_last_sync_is_ignored(
    world: World, make_account: AccountFactory, clock: FixedClock
) -> None:
    # GIVEN an account synced now
    account = meta(make_account)
    world.readers.answer(account)
    synced = world.health.sync(account.business_id, account.id)
    assert synced.last_synced_at is not None

    # WHEN a FLAGGED update that happened before that sync arrives late
    late = synced.last_synced_at.replace(year=synced.last_synced_at.year - 1)
    changed = world.health.apply_quality(QualityUpdate(WABA, digits(account.phone_number), "FLAGGED", occurred_at=late))

    # THEN it changes nothing
    assert changed == 0
    assert not world.account(account).flagged


def test_events_apply_only_to_the_accounts_that_vouched_for_them(world: World, make_account: AccountFactory) -> None:
    # GIVEN two verified accounts of the same WABA
    first = meta(make_account)
    second = meta(make_account, credentials={**META_CREDENTIALS, "phoneNumberId": "109876543219999"})

    # WHEN a WABA-wide ban arrives that only the first account's secret verified
    world.health.apply_account_update(
        AccountUpdate(waba_id=WABA, event="DISABLED_UPDATE", ban_state="DISABLE"),
        among=[WebhookAccount(first.business_id, first.id, Provider.META)],
    )

    # THEN only the first is suspended
    assert world.account(first).status == AccountStatus.SUSPENDED
    assert world.account(second).status == AccountStatus.ACTIVE


def test_a_reinstatement_lifts_only_a_provider_suspension(world: World, make_account: AccountFactory) -> None:
    # GIVEN a WABA Meta disabled
    account = meta(make_account)
    world.health.apply_account_update(AccountUpdate(waba_id=WABA, event="DISABLED_UPDATE", ban_state="DISABLE"))
    assert world.account(account).status == AccountStatus.SUSPENDED

    # WHEN Meta reinstates it
    world.health.apply_account_update(AccountUpdate(waba_id=WABA, event="DISABLED_UPDATE", ban_state="REINSTATE"))

    # THEN the account is ACTIVE again
    assert world.account(account).status == AccountStatus.ACTIVE


# Periodic sync ---------------------------------------------------------------------------------------------------
def test_sync_all_reads_every_account_and_reports(world: World, make_account: AccountFactory) -> None:
    # GIVEN an unverified account the provider confirms, and one whose provider is unreachable
    confirmed = meta(make_account, verified=False)
    unreachable = make_account(Provider.SANDBOX)
    world.readers.answer(confirmed)
    world.readers.errors[unreachable.id] = AccountReadError("UNREACHABLE", "connection refused")

    # WHEN the periodic sync runs without a deadline
    report = world.health.sync_all(deadline=None)

    # THEN both were read, one verified, one failed with its code
    assert (report.accounts_synced, report.accounts_verified, report.accounts_failed) == (1, 1, 1)
    assert report.errors == {unreachable.id: "UNREACHABLE"}
    assert not report.stopped_early


def test_sync_all_starts_no_account_after_its_deadline(world: World, make_account: AccountFactory) -> None:
    # GIVEN two accounts and a deadline already passed
    for account in (make_account(Provider.SANDBOX), make_account(Provider.SANDBOX)):
        world.readers.answer(account)

    # WHEN the periodic sync runs
    report = world.health.sync_all(deadline=0.0)

    # THEN it stopped before reading any
    assert world.readers.reads == []
    assert report.stopped_early


# Template checks at process time --------------------------------------------------------------------------------
def processing_service(world: World, clock: FixedClock) -> ProcessingService:
    jobs = FakeJobStore()
    lifecycle = FakeQueueLifecycle(FakePlannerRegistry(), items=world.queue_store.items)
    return ProcessingService(world.queue_store, lifecycle, jobs, jobs, None, clock=clock, templates=world.templates)


def draft_queue(world: World, account: Account, template: str) -> Queue:
    queue = world.processing_queue(account, template)
    world.queue_store.set_status(queue.business_id, queue.id, QueueStatus.DRAFT)
    return world.queue(queue)


def test_a_known_unapproved_template_cannot_start(
    world: World, make_account: AccountFactory, clock: FixedClock
) -> None:
    # GIVEN a draft queue whose template the account's sync read as REJECTED
    account = meta(make_account)
    queue = draft_queue(world, account, "spring_sale")
    rejected = ProviderTemplate("spring_sale", "en_US", TemplateStatus.REJECTED, TemplateCategory.MARKETING)
    world.readers.answer(account, templates=(rejected,))
    world.health.sync(account.business_id, account.id)

    # WHEN it is processed
    with pytest.raises(TemplateNotApprovedError) as caught:
        processing_service(world, clock).process(queue.business_id, queue.id)

    # THEN 409 (a ConflictError) with the template's status, and the queue did not start
    assert isinstance(caught.value, ConflictError)
    assert caught.value.template_status == "REJECTED"
    assert "REJECTED" in caught.value.message
    assert world.queue(queue).status == QueueStatus.DRAFT


def test_an_approved_template_starts_with_its_synced_category_and_an_unknown_one_as_stated(
    world: World, make_account: AccountFactory, clock: FixedClock
) -> None:
    # GIVEN an APPROVED utility template known to the account, and two draft queues stating marketing (the default)
    account = meta(make_account)
    known = draft_queue(world, account, "order_update")
    unknown = draft_queue(world, account, "welcome")
    approved = ProviderTemplate("order_update", "en_US", TemplateStatus.APPROVED, TemplateCategory.UTILITY)
    world.readers.answer(account, templates=(approved,))
    world.health.sync(account.business_id, account.id)

    # WHEN both are processed
    service = processing_service(world, clock)
    service.process(known.business_id, known.id)
    service.process(unknown.business_id, unknown.id)

    # THEN both start; the known one now has the provider's category, the unknown one keeps its own
    assert world.queue(known).status == QueueStatus.PROCESSING
    assert world.queue(known).template.category == TemplateCategory.UTILITY
    assert world.queue(unknown).status == QueueStatus.PROCESSING
    assert world.queue(unknown).template.category == TemplateCategory.MARKETING


def test_a_repeated_event_writes_nothing(world: World, make_account: AccountFactory) -> None:
    # GIVEN a flagged account and a paused template, each reported once
    account = meta(make_account)
    flag = QualityUpdate(WABA, digits(account.phone_number), "FLAGGED")
    pause = TemplateStatusUpdate(waba_id=WABA, name="spring_sale", language="en_US", status=TemplateStatus.PAUSED)
    assert world.health.apply_quality(flag) == 1
    assert world.health.apply_template_status(pause) == 1
    stored = world.account(account)
    template_writes = world.templates.writes

    # WHEN Meta sends both again
    changed = world.health.apply_quality(flag) + world.health.apply_template_status(pause)

    # THEN nothing changed and nothing was written
    assert changed == 0
    assert world.account(account).updated_at == stored.updated_at
    assert world.templates.writes == template_writes
