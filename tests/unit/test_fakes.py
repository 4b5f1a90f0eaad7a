"""The fakes check the same conditions as the DynamoDB adapters; if they did not, the service tests would lie."""

from __future__ import annotations

import pytest

from tests.unit.conftest import AccountFactory
from tests.unit.fakes import FakeAccountStore, FakeBusinessStore, FixedClock
from wabacast.domain.models import Business
from wabacast.errors import ConcurrentModificationError, ConflictError


def _stored_business(store: FakeBusinessStore, business_id: str) -> Business:
    found = store.get(business_id)
    assert found is not None
    return found


def test_create_with_a_stale_primary_pointer_is_a_concurrent_modification(
    make_account: AccountFactory, account_store: FakeAccountStore, business_store: FakeBusinessStore, business: Business
) -> None:
    # GIVEN a business read before its first account existed
    stale = _stored_business(business_store, business.id)
    existing = make_account()
    # WHEN an account is written as primary against the stale read
    candidate = existing.model_copy(update={"id": "acc_new", "phone_number": "+34612399999"})
    # THEN the pointer condition fails, and nothing is written
    with pytest.raises(ConcurrentModificationError):
        account_store.create(candidate, stale)
    assert (business.id, "acc_new") not in account_store.items
    assert business_store.account_count(business.id) == 1


def test_update_with_a_stale_version_is_a_concurrent_modification(
    make_account: AccountFactory, account_store: FakeAccountStore, business_store: FakeBusinessStore, clock: FixedClock
) -> None:
    # GIVEN an account and a copy of it read before another update
    account = make_account()
    business = _stored_business(business_store, account.business_id)
    newer = account.model_copy(update={"display_name": "Newer", "updated_at": clock.advance(seconds=1)})
    account_store.update(account, newer, business)
    # WHEN an update based on the old read is written
    # THEN the version condition fails
    with pytest.raises(ConcurrentModificationError):
        account_store.update(account, account.model_copy(update={"display_name": "Lost"}), business)


def test_delete_with_a_stale_count_is_a_concurrent_modification(
    make_account: AccountFactory, account_store: FakeAccountStore, business_store: FakeBusinessStore
) -> None:
    # GIVEN two accounts
    make_account()
    second = make_account()
    business, count = business_store.get_with_account_count(second.business_id)
    # WHEN the delete is told another count than stored
    # THEN it is refused
    with pytest.raises(ConcurrentModificationError):
        account_store.delete(second, business, count + 1)
    account_store.delete(second, business, count)
    assert business_store.account_count(second.business_id) == count - 1


def test_phone_claim_conflict_wins_over_other_failures(
    make_account: AccountFactory, account_store: FakeAccountStore, business_store: FakeBusinessStore, business: Business
) -> None:
    # GIVEN an account, and a stale business read
    stale = _stored_business(business_store, business.id)
    existing = make_account()
    # WHEN another account with the same number is written against the stale read
    # THEN, as in the adapter, the claim failure is reported (ConflictError on phoneNumber)
    with pytest.raises(ConflictError) as caught:
        account_store.create(existing.model_copy(update={"id": "acc_other"}), stale)
    assert not isinstance(caught.value, ConcurrentModificationError)
    assert caught.value.field == "phoneNumber"


def test_primary_flag_is_derived_from_the_business_read(
    make_account: AccountFactory, account_store: FakeAccountStore, business_store: FakeBusinessStore, business: Business
) -> None:
    # GIVEN a primary account
    account = make_account()
    # WHEN it is read with the business as it is now, and as it was before the account existed
    now = account_store.get(_stored_business(business_store, business.id), account.id)
    before = account_store.get(business, account.id)
    # THEN is_primary follows the business given, as with the adapter
    assert now is not None
    assert now.is_primary
    assert before is not None
    assert not before.is_primary
