"""wabacast.logic.accounts: credentials parsing and the account hierarchy, on in-memory stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.unit.conftest import AccountFactory
from tests.unit.delivery_fakes import FakeMetrics
from tests.unit.fakes import (
    META_CREDENTIALS,
    TWILIO_CREDENTIALS,
    TWILIO_SID,
    TWILIO_TOKEN,
    FakeAccountStore,
    FakeBusinessStore,
    FakeQueueProvisioner,
    FakeQueueStore,
    FakeSecretStore,
    FixedClock,
    phone,
)
from wabacast.domain.models import (
    AccountLimits,
    AccountStatus,
    Business,
    MetaCredentials,
    Provider,
    QualityRating,
    Queue,
    QueueCounters,
    QueueStatus,
    Schedule,
    Template,
    TwilioCredentials,
)
from wabacast.errors import ConcurrentModificationError, ConflictError, InvalidInputError, NotFoundError
from wabacast.logic.accounts import MAX_ATTEMPTS, AccountDraft, AccountPatch, AccountService, parse_credentials

# A pydantic serializer warning means a model held a value of the wrong type somewhere: fail on it.
pytestmark = pytest.mark.filterwarnings("error")


# parse_credentials ---------------------------------------------------------------------------------------------
def test_twilio_credentials_are_parsed_from_camel_case() -> None:
    # GIVEN Twilio credentials as the client sends them
    raw = {**TWILIO_CREDENTIALS, "messagingServiceSid": "MG" + "b" * 32}
    # WHEN they are parsed
    credentials = parse_credentials(Provider.TWILIO, raw)
    # THEN they become TwilioCredentials
    assert isinstance(credentials, TwilioCredentials)
    assert (credentials.account_sid, credentials.messaging_service_sid) == (TWILIO_SID, "MG" + "b" * 32)


def test_meta_credentials_are_parsed_from_camel_case() -> None:
    # GIVEN Meta credentials as the client sends them
    # WHEN they are parsed
    credentials = parse_credentials(Provider.META, dict(META_CREDENTIALS))
    # THEN they become MetaCredentials
    assert isinstance(credentials, MetaCredentials)
    assert credentials.waba_id == META_CREDENTIALS["wabaId"]


@pytest.mark.parametrize(
    ("provider", "raw", "field"),
    [
        (Provider.TWILIO, {**TWILIO_CREDENTIALS, "authToken": "my-Secret-Token-Value"}, "credentials.authToken"),
        (Provider.TWILIO, {**TWILIO_CREDENTIALS, "accountSid": "ACsecretvalue"}, "credentials.accountSid"),
        (Provider.TWILIO, {"accountSid": TWILIO_SID}, "credentials.authToken"),
        (Provider.META, {**META_CREDENTIALS, "accessToken": "tooShortSecret"}, "credentials.accessToken"),
        (Provider.META, {**META_CREDENTIALS, "appSecret": "notHexSecretValue" * 2}, "credentials.appSecret"),
        (Provider.META, {k: v for k, v in META_CREDENTIALS.items() if k != "wabaId"}, "credentials.wabaId"),
    ],
)
def test_invalid_credentials_name_the_camel_case_field_and_never_echo_values(
    provider: Provider, raw: dict[str, Any], field: str
) -> None:
    # GIVEN credentials with one bad or missing field
    # WHEN they are parsed
    with pytest.raises(InvalidInputError) as caught:
        parse_credentials(provider, raw)
    # THEN the field is named in camelCase, in `field` and at the start of the message
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ")
    # AND no value that was sent appears in the message
    for value in raw.values():
        assert value not in caught.value.message


def test_unknown_credential_key_is_refused_and_expected_keys_listed() -> None:
    # GIVEN a key the provider does not know (including a snake_case spelling of a known one)
    raw = {**TWILIO_CREDENTIALS, "account_sid": TWILIO_SID, "apiKey": "sk_live_secret"}
    # WHEN the credentials are parsed
    with pytest.raises(InvalidInputError) as caught:
        parse_credentials(Provider.TWILIO, raw)
    # THEN the first unknown key (sorted) is the field, and the expected keys are listed, without the value
    assert caught.value.field == "credentials.account_sid"
    assert "expected accountSid, authToken, messagingServiceSid" in caught.value.message
    assert "sk_live_secret" not in caught.value.message


@pytest.mark.parametrize("provider", [Provider.TWILIO, Provider.META])
def test_credentials_are_required_for_real_providers(provider: Provider) -> None:
    # GIVEN no credentials for a provider that needs them
    # WHEN they are parsed
    with pytest.raises(InvalidInputError) as caught:
        parse_credentials(provider, None)
    # THEN "credentials" is the field and the message names the provider
    assert caught.value.field == "credentials"
    assert f"required for {provider.value} accounts" in caught.value.message


def test_sandbox_refuses_credentials() -> None:
    # GIVEN credentials for a sandbox account
    # WHEN they are parsed
    with pytest.raises(InvalidInputError) as caught:
        parse_credentials(Provider.SANDBOX, dict(TWILIO_CREDENTIALS))
    # THEN they are refused, naming the credentials field and never echoing them
    assert caught.value.field == "credentials"
    assert "sandbox accounts take no credentials" in caught.value.message
    assert TWILIO_TOKEN not in caught.value.message


@pytest.mark.parametrize("raw", [None, {}])
def test_sandbox_without_credentials_has_none(raw: dict[str, Any] | None) -> None:
    # GIVEN no (or empty) credentials for a sandbox account
    # WHEN they are parsed
    # THEN there are none to store
    assert parse_credentials(Provider.SANDBOX, raw) is None


# AccountService: hierarchy -------------------------------------------------------------------------------------
def _business(store: FakeBusinessStore, business_id: str) -> Business:
    found = store.get(business_id)
    assert found is not None
    return found


def test_first_account_becomes_primary(
    make_account: AccountFactory, business_store: FakeBusinessStore, business: Business
) -> None:
    # GIVEN a business without accounts
    # WHEN its first account is created without asking for primary
    account = make_account(is_primary=False)
    # THEN it is the primary anyway, and the business points at it
    assert account.is_primary
    assert _business(business_store, business.id).primary_account_id == account.id
    assert business_store.account_count(business.id) == 1


def test_second_account_is_not_primary_unless_asked(
    make_account: AccountFactory, account_service: AccountService, business: Business
) -> None:
    # GIVEN a business with a primary account
    first = make_account()
    # WHEN a second account is created without flags
    second = make_account()
    # THEN the first stays primary and the second is neither primary nor default
    assert not second.is_primary
    assert not second.is_default
    assert account_service.get(business.id, first.id).is_primary


def test_is_primary_on_create_moves_the_primary(
    make_account: AccountFactory, account_service: AccountService, business: Business
) -> None:
    # GIVEN a business with a primary account
    first = make_account()
    # WHEN another account is created as primary
    second = make_account(is_primary=True)
    # THEN it is the only primary
    assert second.is_primary
    assert not account_service.get(business.id, first.id).is_primary
    assert account_service.get(business.id, second.id).is_primary


def test_is_primary_on_update_moves_the_primary(
    make_account: AccountFactory, account_service: AccountService, business_store: FakeBusinessStore, business: Business
) -> None:
    # GIVEN two accounts, the first primary
    first, second = make_account(), make_account()
    # WHEN the second is made primary
    updated = account_service.update(business.id, second.id, AccountPatch(is_primary=True))
    # THEN the pointer moved and the first is no longer primary
    assert updated.is_primary
    assert _business(business_store, business.id).primary_account_id == second.id
    assert not account_service.get(business.id, first.id).is_primary


def test_is_default_moves_the_default(
    make_account: AccountFactory, account_service: AccountService, business_store: FakeBusinessStore, business: Business
) -> None:
    # GIVEN one default account and another account
    first = make_account(is_default=True)
    second = make_account()
    # WHEN the second becomes default
    account_service.update(business.id, second.id, AccountPatch(is_default=True))
    # THEN it is the only default
    assert _business(business_store, business.id).default_account_id == second.id
    assert not account_service.get(business.id, first.id).is_default
    assert account_service.get(business.id, second.id).is_default


def test_unsetting_default_clears_it(
    make_account: AccountFactory, account_service: AccountService, business_store: FakeBusinessStore, business: Business
) -> None:
    # GIVEN a default account
    account = make_account(is_default=True)
    # WHEN isDefault is set to false
    updated = account_service.update(business.id, account.id, AccountPatch(is_default=False))
    # THEN the business has no default any more
    assert not updated.is_default
    assert _business(business_store, business.id).default_account_id is None


def test_unsetting_primary_is_a_conflict(
    make_account: AccountFactory, account_service: AccountService, account_store: FakeAccountStore, business: Business
) -> None:
    # GIVEN the primary account
    account = make_account()
    # WHEN someone tries to make it not primary
    with pytest.raises(ConflictError) as caught:
        account_service.update(business.id, account.id, AccountPatch(is_primary=False))
    # THEN it is refused on isPrimary and nothing was written
    assert caught.value.field == "isPrimary"
    assert account_store.calls.get("update", 0) == 0


def test_setting_is_primary_false_on_a_non_primary_is_harmless(
    make_account: AccountFactory, account_service: AccountService, business: Business
) -> None:
    # GIVEN a non-primary account
    make_account()
    other = make_account()
    # WHEN isPrimary false is sent for it
    updated = account_service.update(business.id, other.id, AccountPatch(is_primary=False))
    # THEN nothing changes about the hierarchy
    assert not updated.is_primary


def test_update_changes_only_sent_fields(
    make_account: AccountFactory, account_service: AccountService, business: Business
) -> None:
    # GIVEN an account with a name and default limits
    account = make_account(display_name="Sales")
    # WHEN only its limits are sent
    limits = AccountLimits(messages_per_second=10, daily_recipient_limit=500)
    updated = account_service.update(business.id, account.id, AccountPatch(limits=limits))
    # THEN the limits changed, everything else stayed, and the store holds the same
    assert updated.limits == limits
    assert updated.display_name == "Sales"
    assert account_service.get(business.id, account.id) == updated


def test_delete_primary_while_others_exist_is_a_conflict(
    make_account: AccountFactory, account_service: AccountService, account_store: FakeAccountStore, business: Business
) -> None:
    # GIVEN a primary and another account
    primary = make_account()
    make_account()
    # WHEN the primary is deleted
    with pytest.raises(ConflictError) as caught:
        account_service.delete(business.id, primary.id)
    # THEN it is refused and the account is still there
    assert caught.value.field == "isPrimary"
    assert account_service.get(business.id, primary.id).is_primary
    assert account_store.calls.get("delete", 0) == 0


def test_delete_the_only_account_clears_the_primary(
    make_account: AccountFactory, account_service: AccountService, business_store: FakeBusinessStore, business: Business
) -> None:
    # GIVEN a business with a single, primary and default, account
    account = make_account(is_default=True)
    # WHEN it is deleted
    account_service.delete(business.id, account.id)
    # THEN it is gone and the business has neither primary nor default, and no accounts
    with pytest.raises(NotFoundError):
        account_service.get(business.id, account.id)
    stored = _business(business_store, business.id)
    assert (stored.primary_account_id, stored.default_account_id) == (None, None)
    assert business_store.account_count(business.id) == 0
    # AND the next account created becomes primary again
    assert make_account().is_primary


def _queue_using(business: Business, account_id: str, status: QueueStatus, clock: FixedClock) -> Queue:
    return Queue(
        id=f"q_{status.value.lower()}",
        business_id=business.id,
        name="Campaign",
        account_id=account_id,
        template=Template(name="welcome", language="en"),
        variables={},
        audience={"contact_tags": ["vip"]},
        priority=5,
        schedule=Schedule(timezone="UTC"),
        max_attempts=3,
        status=status,
        counters=QueueCounters(),
        created_at=clock(),
        updated_at=clock(),
    )


@pytest.mark.parametrize("status", [QueueStatus.SCHEDULED, QueueStatus.PROCESSING, QueueStatus.PAUSED])
def test_delete_account_held_by_a_live_queue_is_a_conflict(
    status: QueueStatus,
    make_account: AccountFactory,
    account_service: AccountService,
    queue_store: FakeQueueStore,
    business: Business,
    clock: FixedClock,
) -> None:
    # GIVEN a non-primary account used by a queue that may still send
    make_account()
    account = make_account()
    queue_store.create(_queue_using(business, account.id, status, clock))
    # WHEN the account is deleted
    with pytest.raises(ConflictError) as caught:
        account_service.delete(business.id, account.id)
    # THEN it is refused on accountId and the account stays
    assert caught.value.field == "accountId"
    assert account_service.get(business.id, account.id).id == account.id


@pytest.mark.parametrize(
    "status", [QueueStatus.DRAFT, QueueStatus.COMPLETED, QueueStatus.CANCELLED, QueueStatus.FAILED]
)
def test_delete_account_used_only_by_idle_or_finished_queues(
    status: QueueStatus,
    make_account: AccountFactory,
    account_service: AccountService,
    queue_store: FakeQueueStore,
    business: Business,
    clock: FixedClock,
) -> None:
    # GIVEN a non-primary account used only by a queue that will not send
    make_account()
    account = make_account()
    queue_store.create(_queue_using(business, account.id, status, clock))
    # WHEN the account is deleted
    account_service.delete(business.id, account.id)
    # THEN it is gone
    with pytest.raises(NotFoundError):
        account_service.get(business.id, account.id)


def test_unknown_business_or_account_is_not_found(account_service: AccountService, business: Business) -> None:
    # GIVEN ids that do not exist
    # WHEN they are read, updated or deleted
    # THEN each is NotFoundError
    with pytest.raises(NotFoundError):
        account_service.get("biz_missing", "acc_x")
    with pytest.raises(NotFoundError):
        account_service.get(business.id, "acc_missing")
    with pytest.raises(NotFoundError):
        account_service.update(business.id, "acc_missing", AccountPatch(display_name="x"))
    with pytest.raises(NotFoundError):
        account_service.delete(business.id, "acc_missing")


def test_accounts_of_another_business_are_invisible(
    make_account: AccountFactory, account_service: AccountService, business_store: FakeBusinessStore
) -> None:
    # GIVEN an account of one business and another business
    account = make_account()
    other = Business(id="biz_other", name="Other", timezone="UTC", created_at=account.created_at)
    business_store.items[other.id] = {**other.model_dump(mode="json", exclude_none=True), "account_count": 0}
    # WHEN the other business asks for the account
    # THEN it does not exist for it
    with pytest.raises(NotFoundError):
        account_service.get(other.id, account.id)


def test_phone_number_already_registered_is_a_conflict(
    make_account: AccountFactory, account_service: AccountService, business: Business
) -> None:
    # GIVEN an account with a phone number
    make_account(phone_number=phone(77))
    # WHEN another account claims the same number
    with pytest.raises(ConflictError) as caught:
        make_account(phone_number=phone(77))
    # THEN it is refused on phoneNumber
    assert caught.value.field == "phoneNumber"
    assert len(account_service.list(business.id, 10, None).items) == 1


# AccountService: secrets ---------------------------------------------------------------------------------------
def test_secret_is_written_on_create_with_tags(
    make_account: AccountFactory, secret_store: FakeSecretStore, business: Business
) -> None:
    # GIVEN Twilio credentials
    # WHEN a Twilio account is created
    account = make_account(Provider.TWILIO, credentials=dict(TWILIO_CREDENTIALS))
    # THEN the secret holds them (snake_case), tagged with business and account
    name = secret_store.name_for_account(business.id, account.id)
    assert secret_store.secrets[name] == {
        "account_sid": TWILIO_SID,
        "auth_token": TWILIO_TOKEN,
        "messaging_service_sid": None,
    }
    assert secret_store.tags[name] == {"wabacast:business": business.id, "wabacast:account": account.id}
    # AND the account only shows a hint, never the token
    assert account.credentials.configured
    assert account.credentials.hint == "AC...cdef"
    assert TWILIO_TOKEN not in account.model_dump_json()


def test_sandbox_account_writes_no_secret(make_account: AccountFactory, secret_store: FakeSecretStore) -> None:
    # GIVEN a sandbox account
    # WHEN it is created
    account = make_account(Provider.SANDBOX)
    # THEN no secret was written and credentials show as not configured
    assert secret_store.puts == []
    assert not account.credentials.configured
    assert account.credentials.hint is None


def test_invalid_credentials_write_nothing(
    account_service: AccountService, secret_store: FakeSecretStore, account_store: FakeAccountStore, business: Business
) -> None:
    # GIVEN Twilio credentials with a malformed token
    draft = AccountDraft(
        display_name="x",
        phone_number=phone(1),
        provider=Provider.TWILIO,
        credentials={**TWILIO_CREDENTIALS, "authToken": "x"},
    )
    # WHEN the account is created
    with pytest.raises(InvalidInputError):
        account_service.create(business.id, draft)
    # THEN neither the secret nor the account were written
    assert secret_store.puts == []
    assert account_store.items == {}


@pytest.mark.parametrize(
    "failure",
    [
        ConflictError("phoneNumber is already registered to a WhatsApp account", field="phoneNumber"),
        RuntimeError("DynamoDB is down"),
    ],
)
def test_secret_is_deleted_when_the_account_cannot_be_stored(
    failure: Exception,
    account_service: AccountService,
    account_store: FakeAccountStore,
    secret_store: FakeSecretStore,
    business: Business,
) -> None:
    # GIVEN an account store that refuses the write
    account_store.fail_next("create", failure)
    draft = AccountDraft(
        display_name="x", phone_number=phone(1), provider=Provider.META, credentials=dict(META_CREDENTIALS)
    )
    # WHEN a Meta account is created
    with pytest.raises(type(failure)):
        account_service.create(business.id, draft)
    # THEN the secret written just before was deleted again, and no account exists
    assert len(secret_store.puts) == 1
    assert secret_store.deleted == secret_store.puts
    assert secret_store.secrets == {}
    assert account_store.items == {}


def test_secret_is_deleted_with_the_account(
    make_account: AccountFactory, account_service: AccountService, secret_store: FakeSecretStore, business: Business
) -> None:
    # GIVEN a Meta account with its secret
    account = make_account(Provider.META, credentials=dict(META_CREDENTIALS))
    name = secret_store.name_for_account(business.id, account.id)
    assert name in secret_store.secrets
    # WHEN the account is deleted
    account_service.delete(business.id, account.id)
    # THEN its secret is deleted too
    assert secret_store.deleted == [name]
    assert name not in secret_store.secrets


def test_sandbox_account_delete_touches_no_secret(
    make_account: AccountFactory, account_service: AccountService, secret_store: FakeSecretStore, business: Business
) -> None:
    # GIVEN a sandbox account
    account = make_account(Provider.SANDBOX)
    # WHEN it is deleted
    account_service.delete(business.id, account.id)
    # THEN no secret deletion was attempted
    assert secret_store.deleted == []


def test_secret_is_kept_when_the_delete_is_refused(
    make_account: AccountFactory,
    account_service: AccountService,
    account_store: FakeAccountStore,
    secret_store: FakeSecretStore,
    business: Business,
) -> None:
    # GIVEN a Twilio account and a store that fails the delete for another reason than a race
    account = make_account(Provider.TWILIO, credentials=dict(TWILIO_CREDENTIALS))
    account_store.fail_next("delete", RuntimeError("DynamoDB is down"))
    # WHEN the account is deleted
    with pytest.raises(RuntimeError):
        account_service.delete(business.id, account.id)
    # THEN its secret is still there
    assert secret_store.deleted == []


def test_credentials_update_rewrites_the_secret_and_hint(
    make_account: AccountFactory, account_service: AccountService, secret_store: FakeSecretStore, business: Business
) -> None:
    # GIVEN a Twilio account
    account = make_account(Provider.TWILIO, credentials=dict(TWILIO_CREDENTIALS))
    new_sid = "AC" + "9" * 28 + "4321"
    # WHEN its credentials are replaced
    updated = account_service.update(
        business.id, account.id, AccountPatch(credentials={"accountSid": new_sid, "authToken": "e" * 32})
    )
    # THEN the secret holds the new ones and the hint follows
    name = secret_store.name_for_account(business.id, account.id)
    assert secret_store.secrets[name]["account_sid"] == new_sid
    assert updated.credentials.hint == "AC...4321"


def test_credentials_update_is_validated_for_the_accounts_provider(
    make_account: AccountFactory, account_service: AccountService, secret_store: FakeSecretStore, business: Business
) -> None:
    # GIVEN a Twilio account
    account = make_account(Provider.TWILIO, credentials=dict(TWILIO_CREDENTIALS))
    # WHEN Meta-shaped credentials are sent for it
    with pytest.raises(InvalidInputError) as caught:
        account_service.update(business.id, account.id, AccountPatch(credentials=dict(META_CREDENTIALS)))
    # THEN they are refused as unknown Twilio fields, and the secret was not rewritten
    assert caught.value.field == "credentials.accessToken"
    assert len(secret_store.puts) == 1


# AccountService: optimistic concurrency ------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["create", "update", "delete"])
def test_one_concurrent_modification_is_retried(
    method: str,
    make_account: AccountFactory,
    account_service: AccountService,
    account_store: FakeAccountStore,
    business: Business,
) -> None:
    # GIVEN an existing non-primary account and a store whose next write loses a race once
    make_account()
    account = make_account()
    before = account_store.calls.get(method, 0)
    account_store.fail_next(method, ConcurrentModificationError("raced"))
    # WHEN the operation runs
    if method == "create":
        created = make_account()
    elif method == "update":
        account_service.update(business.id, account.id, AccountPatch(display_name="Renamed"))
    else:
        account_service.delete(business.id, account.id)
    # THEN it succeeded on the second attempt
    assert account_store.calls[method] - before == 2
    if method == "create":
        assert account_service.get(business.id, created.id) == created
    if method == "update":
        assert account_service.get(business.id, account.id).display_name == "Renamed"
    if method == "delete":
        with pytest.raises(NotFoundError):
            account_service.get(business.id, account.id)


@pytest.mark.parametrize("method", ["create", "update", "delete"])
def test_gives_up_after_max_attempts(
    method: str,
    make_account: AccountFactory,
    account_service: AccountService,
    account_store: FakeAccountStore,
    secret_store: FakeSecretStore,
    business: Business,
) -> None:
    # GIVEN a store that loses every race
    make_account()
    account = make_account()
    before = account_store.calls.get(method, 0)
    account_store.fail_next(method, ConcurrentModificationError("raced"), times=MAX_ATTEMPTS)
    # WHEN the operation runs
    operations: dict[str, Callable[[], object]] = {
        "create": lambda: make_account(Provider.TWILIO, credentials=dict(TWILIO_CREDENTIALS)),
        "update": lambda: account_service.update(business.id, account.id, AccountPatch(display_name="Renamed")),
        "delete": lambda: account_service.delete(business.id, account.id),
    }
    with pytest.raises(ConcurrentModificationError, match="retry"):
        operations[method]()
    # THEN it tried exactly MAX_ATTEMPTS times and left nothing behind
    assert account_store.calls[method] - before == MAX_ATTEMPTS
    assert account_service.get(business.id, account.id).display_name == "Sender"
    if method == "create":
        assert secret_store.deleted == secret_store.puts != []


def test_create_rereads_the_business_after_a_concurrent_primary(
    account_service: AccountService,
    account_store: FakeAccountStore,
    business_store: FakeBusinessStore,
    business: Business,
) -> None:
    # GIVEN a business without accounts, and another request creating its first account while ours runs
    rival = AccountDraft(display_name="Rival", phone_number=phone(900), provider=Provider.SANDBOX)
    rival_ids: list[str] = []
    account_store.before_next("create", lambda: rival_ids.append(account_service.create(business.id, rival).id))
    # WHEN our first account is created
    ours = account_service.create(
        business.id, AccountDraft(display_name="Ours", phone_number=phone(901), provider=Provider.SANDBOX)
    )
    # THEN our write lost the race on the primary pointer, re-read the business and created a non-primary account
    assert not ours.is_primary
    assert _business(business_store, business.id).primary_account_id == rival_ids[0]
    assert business_store.account_count(business.id) == 2


def test_update_retries_after_a_concurrent_edit(
    make_account: AccountFactory,
    account_service: AccountService,
    account_store: FakeAccountStore,
    business: Business,
    clock: FixedClock,
) -> None:
    # GIVEN an account that another request renames between our read and our write
    account = make_account()

    def their_rename() -> None:
        account_service.update(business.id, account.id, AccountPatch(display_name="Theirs"))

    account_store.before_next("update", their_rename)
    # WHEN we change its status
    updated = account_service.update(business.id, account.id, AccountPatch(status=AccountStatus.SUSPENDED))
    # THEN our change applies on top of theirs (nothing is lost)
    assert (updated.display_name, updated.status) == ("Theirs", AccountStatus.SUSPENDED)
    assert account_service.get(business.id, account.id) == updated


def test_updated_at_strictly_increases_with_a_frozen_clock(
    make_account: AccountFactory, account_service: AccountService, business: Business, clock: FixedClock
) -> None:
    # GIVEN an account created at the clock's (frozen) time
    account = make_account()
    # WHEN it is updated twice without the clock moving
    first = account_service.update(business.id, account.id, AccountPatch(display_name="One"))
    second = account_service.update(business.id, account.id, AccountPatch(display_name="Two"))
    # THEN each update has a strictly later updated_at, and created_at never moves
    assert account.updated_at == clock.now
    assert account.updated_at < first.updated_at < second.updated_at
    assert second.updated_at - account.updated_at == timedelta(microseconds=2)
    assert second.created_at == account.created_at


def test_updated_at_follows_a_moving_clock(
    make_account: AccountFactory, account_service: AccountService, business: Business, clock: FixedClock
) -> None:
    # GIVEN an account
    account = make_account()
    # WHEN the clock moves on and the account is updated
    later = clock.advance(minutes=5)
    updated = account_service.update(business.id, account.id, AccountPatch(display_name="Later"))
    # THEN updated_at is the clock's time
    assert updated.updated_at == later


# AccountService: delivery queues -------------------------------------------------------------------------------
def _sandbox(n: int) -> AccountDraft:
    return AccountDraft(display_name="Sender", phone_number=phone(n), provider=Provider.SANDBOX)


def test_create_provisions_delivery_and_marks_the_account_ready(
    account_service: AccountService, provisioner: FakeQueueProvisioner, business: Business
) -> None:
    # GIVEN delivery queues wired in
    # WHEN an account is created
    account = account_service.create(business.id, _sandbox(1))
    # THEN its queues were provisioned and it reads back as delivery-ready
    assert (business.id, account.id) in provisioner.provisioned
    assert account.delivery_ready
    assert account_service.get(business.id, account.id).delivery_ready


def test_interrupted_create_is_resumed_by_the_retry(
    account_service: AccountService,
    provisioner: FakeQueueProvisioner,
    account_store: FakeAccountStore,
    secret_store: FakeSecretStore,
    business: Business,
) -> None:
    # GIVEN a create that stored the account but crashed while provisioning its queues
    provisioner.fail_next("provision", RuntimeError("SQS timed out"))
    with pytest.raises(RuntimeError):
        account_service.create(business.id, _sandbox(1))
    (stored,) = account_store.items.values()
    assert stored["delivery_ready"] is False
    # WHEN the client retries the same create
    resumed = account_service.create(business.id, _sandbox(1))
    # THEN the half-made account is completed instead of refused, and no second account exists
    assert resumed.id == stored["id"]
    assert resumed.delivery_ready
    assert len(account_store.items) == 1
    assert (business.id, resumed.id) in provisioner.provisioned


def test_same_number_on_a_ready_account_is_still_a_conflict(
    account_service: AccountService, business: Business
) -> None:
    # GIVEN a fully created account
    account_service.create(business.id, _sandbox(1))
    # WHEN another create uses its number
    # THEN it is refused on phoneNumber
    with pytest.raises(ConflictError) as caught:
        account_service.create(business.id, _sandbox(1))
    assert caught.value.field == "phoneNumber"


def test_delete_tears_down_delivery(
    account_service: AccountService, provisioner: FakeQueueProvisioner, business: Business
) -> None:
    # GIVEN an account with delivery queues
    account = account_service.create(business.id, _sandbox(1))
    # WHEN it is deleted
    account_service.delete(business.id, account.id)
    # THEN its queues are torn down
    assert provisioner.torn_down == [(business.id, account.id)]
    assert provisioner.provisioned == {}


def test_limits_change_reprovisions_delivery(
    account_service: AccountService, provisioner: FakeQueueProvisioner, business: Business
) -> None:
    # GIVEN a delivery-ready account
    account = account_service.create(business.id, _sandbox(1))
    provisioned_before = provisioner.calls["provision"]
    # WHEN only its name changes, and then its limits
    account_service.update(business.id, account.id, AccountPatch(display_name="Renamed"))
    after_rename = provisioner.calls["provision"]
    limits = AccountLimits(messages_per_second=5)
    account_service.update(business.id, account.id, AccountPatch(limits=limits))
    # THEN only the limits change reconfigured the queues, with the new limits
    assert after_rename == provisioned_before
    assert provisioner.calls["provision"] == provisioned_before + 1
    assert provisioner.provisioned[(business.id, account.id)].limits == limits


# AccountService: sandbox accounts only where allowed ------------------------------------------------------------
def test_a_sandbox_account_is_refused_where_sandbox_accounts_are_not_allowed(
    business_store: FakeBusinessStore,
    account_store: FakeAccountStore,
    queue_store: FakeQueueStore,
    secret_store: FakeSecretStore,
    provisioner: FakeQueueProvisioner,
    business: Business,
) -> None:
    # GIVEN the service as AWS wires it: sandbox accounts not allowed
    service = AccountService(
        business_store, account_store, queue_store, secret_store, allow_sandbox=False, provisioner=provisioner
    )

    # WHEN a sandbox account is created
    with pytest.raises(InvalidInputError) as refused:
        service.create(business.id, _sandbox(950))

    # THEN it is refused naming the provider, and nothing was stored or provisioned
    assert refused.value.field == "provider"
    assert service.list(business.id, 10, None).items == []
    assert provisioner.provisioned == {}


# AccountService: metrics ---------------------------------------------------------------------------------------
def test_an_account_turning_red_is_counted_once(
    make_account: AccountFactory,
    business_store: FakeBusinessStore,
    account_store: FakeAccountStore,
    queue_store: FakeQueueStore,
    secret_store: FakeSecretStore,
    business: Business,
) -> None:
    # GIVEN an account service that records metrics, and a GREEN account
    metrics = FakeMetrics()
    service = AccountService(
        business_store, account_store, queue_store, secret_store, allow_sandbox=False, metrics=metrics
    )
    account = make_account(quality_rating=QualityRating.GREEN)
    # WHEN its quality is written as RED, then RED again, then YELLOW
    for rating in (QualityRating.RED, QualityRating.RED, QualityRating.YELLOW):
        service.update(business.id, account.id, AccountPatch(quality_rating=rating))
    # THEN only the turn to RED is counted, for that account
    assert [(p.name, p.value, p.account_id) for p in metrics.points] == [("AccountQualityRed", 1, account.id)]
