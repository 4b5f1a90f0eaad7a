"""Services wired to the in-memory fakes (tests/unit/fakes.py) and a clock that only moves when told."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.fakes import (
    FakeAccountStore,
    FakeBusinessStore,
    FakeContactStore,
    FakeQueueProvisioner,
    FakeQueueStore,
    FakeSecretStore,
    FixedClock,
    phone,
)
from wabacast.domain.models import Account, AccountStatus, Business, Provider
from wabacast.logic.accounts import AccountDraft, AccountService, later_than
from wabacast.logic.businesses import BusinessService
from wabacast.logic.contacts import ContactService
from wabacast.logic.queues import QueueService


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def business_store() -> FakeBusinessStore:
    return FakeBusinessStore()


@pytest.fixture
def account_store(business_store: FakeBusinessStore) -> FakeAccountStore:
    return FakeAccountStore(business_store)


@pytest.fixture
def queue_store(account_store: FakeAccountStore) -> FakeQueueStore:
    return FakeQueueStore(account_store)


@pytest.fixture
def contact_store() -> FakeContactStore:
    return FakeContactStore()


@pytest.fixture
def secret_store() -> FakeSecretStore:
    return FakeSecretStore()


@pytest.fixture
def provisioner() -> FakeQueueProvisioner:
    return FakeQueueProvisioner()


@pytest.fixture
def business_service(business_store: FakeBusinessStore, clock: FixedClock) -> BusinessService:
    return BusinessService(business_store, clock=clock)


@pytest.fixture
def account_service(
    business_store: FakeBusinessStore,
    account_store: FakeAccountStore,
    queue_store: FakeQueueStore,
    secret_store: FakeSecretStore,
    provisioner: FakeQueueProvisioner,
    clock: FixedClock,
) -> AccountService:
    # Wired as in production (container.py): every account gets its delivery queues. Sandbox accounts are
    # allowed, as on the local stack, so the tests can use them.
    return AccountService(
        business_store,
        account_store,
        queue_store,
        secret_store,
        clock=clock,
        allow_sandbox=True,
        provisioner=provisioner,
    )


@pytest.fixture
def queue_service(
    business_store: FakeBusinessStore, account_store: FakeAccountStore, queue_store: FakeQueueStore, clock: FixedClock
) -> QueueService:
    return QueueService(business_store, account_store, queue_store, clock=clock)


@pytest.fixture
def contact_service(contact_store: FakeContactStore, clock: FixedClock) -> ContactService:
    return ContactService(contact_store, clock=clock)


@pytest.fixture
def business(business_service: BusinessService) -> Business:
    created, _, _ = business_service.create("Acme", "Europe/Madrid")
    return created


AccountFactory = Callable[..., Account]


@pytest.fixture
def make_account(
    account_service: AccountService,
    business: Business,
    business_store: FakeBusinessStore,
    account_store: FakeAccountStore,
    clock: FixedClock,
) -> AccountFactory:
    """Create an account of `business` through the service; sandbox unless told otherwise. A Twilio or Meta one is
    verified as its first sync would (`verified=False`: left PENDING, awaiting its ownership check)."""
    counter = iter(range(1, 10_000))

    def make(provider: Provider = Provider.SANDBOX, business_id: str | None = None, **fields: Any) -> Account:
        values: dict[str, Any] = {
            "display_name": "Sender",
            "phone_number": phone(next(counter)),
            "provider": provider,
            **fields,
        }
        verified = values.pop("verified", True)
        account = account_service.create(business_id or business.id, AccountDraft(**values))
        if provider is Provider.SANDBOX or not verified:
            return account
        # What the first sync does when the provider confirms the number (wabacast.logic.account_health): the
        # account then has the status that was asked.
        owner = business_store.get(account.business_id)
        assert owner is not None
        after = account.model_copy(
            update={
                "status": values.get("status", AccountStatus.ACTIVE),
                "status_reason": None,
                "ownership_verified_at": clock(),
                "updated_at": later_than(account.updated_at, clock()),
            }
        )
        account_store.update(account, after, owner)
        return after

    return make
