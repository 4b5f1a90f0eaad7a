"""Account health through the API on moto: ownership proof, POST .../sync, GET .../templates, template checks at
process. The provider is a scripted reader in place of wabacast.providers.account_readers (no network)."""

from __future__ import annotations

from dataclasses import dataclass, field

import boto3
import pytest

from tests.integration.conftest import (
    META_CREDENTIALS,
    ApiClient,
    account_body,
    create_queue,
    new_api_client,
    new_business,
    set_queue_status,
)
from wabacast.account_health_wiring import LazyProviderReaders
from wabacast.bootstrap import issue_admin_key
from wabacast.domain.health import (
    AccountReadError,
    AccountSnapshot,
    PhoneNumberHealth,
    ProviderTemplate,
    TemplateStatus,
)
from wabacast.domain.models import Account, MessagingTier, QualityRating, QueueStatus, TemplateCategory
from wabacast.settings import Settings

NUMBER = "+14155550123"


@dataclass
class ScriptedProvider:
    """What the provider answers each account's reader, by account phone number; an error to raise instead."""

    phone: PhoneNumberHealth = field(default_factory=lambda: PhoneNumberHealth(display_phone_number=NUMBER))
    templates: tuple[ProviderTemplate, ...] | None = ()
    error: AccountReadError | None = None
    reads: list[str] = field(default_factory=list)

    def for_account(self, account: Account, secret_name: str) -> ScriptedReader:
        return ScriptedReader(self, account)


@dataclass
class ScriptedReader:
    provider: ScriptedProvider
    account: Account

    def read(self, *, include_templates: bool = True) -> AccountSnapshot:
        self.provider.reads.append(self.account.id)
        if self.provider.error is not None:
            raise self.provider.error
        return AccountSnapshot(phone=self.provider.phone, templates=self.provider.templates)


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> ScriptedProvider:
    scripted = ScriptedProvider()
    monkeypatch.setattr(
        LazyProviderReaders, "for_account", lambda _self, account, secret_name: scripted.for_account(account, "")
    )
    return scripted


@pytest.fixture
def business(settings: Settings) -> ApiClient:
    admin = new_api_client(issue_admin_key(settings, "tests"))
    return new_business(admin, "Acme")


def new_meta_account(business: ApiClient, number: str = NUMBER) -> dict[str, object]:
    response = business.post("/api/whatsapp/accounts", account_body(number, "meta", status="ACTIVE"))
    assert response.status == 201, response.body
    return response.body  # type: ignore[no-any-return]


def template(name: str, status: TemplateStatus, category: TemplateCategory | None = None) -> ProviderTemplate:
    return ProviderTemplate(
        name=name,
        language="en_US",
        status=status,
        category=category,
        provider_template_id=f"id-{name}",
        components=({"type": "BODY", "text": "Hello {{1}}"},),
    )


def test_a_new_meta_account_is_pending_whatever_status_was_asked(business: ApiClient) -> None:
    # WHEN a Meta account is created asking for ACTIVE
    account = new_meta_account(business)

    # THEN it is PENDING, awaiting its ownership check, and it says whose WABA it claims
    assert account["status"] == "PENDING"
    assert account["statusReason"] == "awaiting ownership check"
    assert account["ownershipVerifiedAt"] is None
    assert account["wabaId"] == META_CREDENTIALS["wabaId"]


def test_an_unverified_account_cannot_be_made_active(business: ApiClient) -> None:
    # GIVEN an unverified Meta account
    account = new_meta_account(business)

    # WHEN the tenant sets it ACTIVE
    response = business.put(f"/api/whatsapp/accounts/{account['id']}", {"status": "ACTIVE"})

    # THEN 409 names the rule and the field
    assert response.status == 409
    assert response.body["error"]["field"] == "status"
    assert "sync" in response.body["error"]["message"]


def test_a_sync_that_confirms_the_number_activates_the_account_and_stores_its_templates(
    business: ApiClient, provider: ScriptedProvider
) -> None:
    # GIVEN an unverified Meta account, and a provider that knows its number, rated YELLOW, with two templates
    account = new_meta_account(business)
    provider.phone = PhoneNumberHealth(
        display_phone_number="+1 415-555-0123",
        quality_rating=QualityRating.YELLOW,
        provider_status="CONNECTED",
        throughput="STANDARD",
        messaging_tier=MessagingTier.TIER_10K,
    )
    provider.templates = (
        template("order_update", TemplateStatus.APPROVED, TemplateCategory.UTILITY),
        template("spring_sale", TemplateStatus.REJECTED, TemplateCategory.MARKETING),
    )

    # WHEN it is synced on demand
    response = business.post(f"/api/whatsapp/accounts/{account['id']}/sync")

    # THEN it is ACTIVE, verified, with the provider's standing
    assert response.status == 200, response.body
    synced = response.body
    assert synced["status"] == "ACTIVE"
    assert synced["statusReason"] is None
    assert synced["ownershipVerifiedAt"] is not None
    assert synced["lastSyncedAt"] is not None
    assert (synced["qualityRating"], synced["messagingTier"]) == ("YELLOW", "TIER_10K")
    assert (synced["providerStatus"], synced["throughput"]) == ("CONNECTED", "STANDARD")
    # AND its templates are listed a page at a time
    first = business.get(f"/api/whatsapp/accounts/{account['id']}/templates", limit=1)
    assert first.status == 200, first.body
    second = business.get(
        f"/api/whatsapp/accounts/{account['id']}/templates", limit=1, nextToken=first.body["nextToken"]
    )
    listed = first.body["items"] + second.body["items"]
    assert [(t["name"], t["status"], t["category"]) for t in listed] == [
        ("order_update", "APPROVED", "utility"),
        ("spring_sale", "REJECTED", "marketing"),
    ]
    assert listed[0]["components"] == [{"type": "BODY", "text": "Hello {{1}}"}]


def test_a_sync_that_finds_another_number_leaves_the_account_pending(
    business: ApiClient, provider: ScriptedProvider
) -> None:
    # GIVEN a Meta account claiming a number its credentials' phone number id is not
    account = new_meta_account(business)
    provider.phone = PhoneNumberHealth(display_phone_number="+14155550199")

    # WHEN it is synced
    response = business.post(f"/api/whatsapp/accounts/{account['id']}/sync")

    # THEN it stays PENDING and says why
    assert response.status == 200
    assert response.body["status"] == "PENDING"
    assert response.body["ownershipVerifiedAt"] is None
    assert "+14155550199" in response.body["statusReason"]


def test_refused_credentials_leave_the_account_pending_with_the_reason(
    business: ApiClient, provider: ScriptedProvider
) -> None:
    # GIVEN a provider refusing the account's token
    account = new_meta_account(business)
    provider.error = AccountReadError("190", "Invalid OAuth access token", credentials_refused=True)

    # WHEN it is synced
    response = business.post(f"/api/whatsapp/accounts/{account['id']}/sync")

    # THEN it stays PENDING, with the refusal as its reason and sync error
    assert response.status == 200
    assert response.body["status"] == "PENDING"
    assert "refused the account's credentials (190)" in response.body["statusReason"]
    assert response.body["syncError"].startswith("190:")


def test_another_tenant_cannot_sync_or_list_the_account(
    settings: Settings, business: ApiClient, provider: ScriptedProvider
) -> None:
    # GIVEN an account of another business
    account = new_meta_account(business)
    other = new_business(new_api_client(issue_admin_key(settings, "other")), "Other")

    # WHEN the other tenant syncs it or lists its templates
    synced = other.post(f"/api/whatsapp/accounts/{account['id']}/sync")
    listed = other.get(f"/api/whatsapp/accounts/{account['id']}/templates")

    # THEN both are 404 and the provider was never asked
    assert (synced.status, listed.status) == (404, 404)
    assert provider.reads == []


def test_a_queue_takes_the_category_of_the_synced_template(business: ApiClient, provider: ScriptedProvider) -> None:
    # GIVEN a verified account whose synced order_update template is a utility one
    account = new_meta_account(business)
    provider.templates = (template("order_update", TemplateStatus.APPROVED, TemplateCategory.UTILITY),)
    assert business.post(f"/api/whatsapp/accounts/{account['id']}/sync").body["status"] == "ACTIVE"

    # WHEN a queue states it is marketing
    queue = create_queue(
        business,
        accountId=account["id"],
        template={"name": "order_update", "language": "en_US", "category": "marketing"},
    )

    # THEN the provider's category wins
    assert queue["template"]["category"] == "utility"


def test_a_rejected_template_cannot_be_processed_but_an_unknown_one_can(
    business: ApiClient, provider: ScriptedProvider
) -> None:
    # GIVEN a verified account whose synced spring_sale template was REJECTED
    account = new_meta_account(business)
    provider.templates = (template("spring_sale", TemplateStatus.REJECTED, TemplateCategory.MARKETING),)
    assert business.post(f"/api/whatsapp/accounts/{account['id']}/sync").body["status"] == "ACTIVE"
    rejected = create_queue(business, accountId=account["id"])
    unknown = create_queue(business, accountId=account["id"], template={"name": "welcome", "language": "en_US"})

    # WHEN both queues are processed
    refused = business.post(f"/api/whatsapp/queue/{rejected['id']}/process")
    started = business.post(f"/api/whatsapp/queue/{unknown['id']}/process")

    # THEN the known, unapproved one is refused with its status; the one no sync knows starts as before
    assert refused.status == 409
    assert refused.body["error"]["code"] == "TEMPLATE_NOT_APPROVED"
    assert "REJECTED" in refused.body["error"]["message"]
    assert started.status == 202, started.body


def stored_keys(settings: Settings, prefix: str) -> list[str]:
    """The keys (PK/SK) of the items whose PK or SK starts with `prefix` (a scan: the test table is small)."""
    client = boto3.client("dynamodb", region_name=settings.region)
    items = client.scan(TableName=settings.table_name)["Items"]
    return sorted(
        f"{item['PK']['S']}|{item['SK']['S']}"
        for item in items
        if item["PK"]["S"].startswith(prefix) or item["SK"]["S"].startswith(prefix)
    )


def test_the_waba_lookup_follows_the_credentials_and_goes_with_the_account(
    settings: Settings, business: ApiClient, provider: ScriptedProvider
) -> None:
    # GIVEN a synced Meta account with a template
    account = new_meta_account(business)
    provider.templates = (template("order_update", TemplateStatus.APPROVED, TemplateCategory.UTILITY),)
    assert business.post(f"/api/whatsapp/accounts/{account['id']}/sync").status == 200
    assert stored_keys(settings, "WABA#") == [f"WABA#{META_CREDENTIALS['wabaId']}|ACCOUNT#{account['id']}"]
    assert len(stored_keys(settings, "TEMPLATE#")) == 1

    # WHEN its credentials move it to another WABA
    moved = business.put(
        f"/api/whatsapp/accounts/{account['id']}", {"credentials": {**META_CREDENTIALS, "wabaId": "309876543210"}}
    )

    # THEN the lookup names the new WABA only, and the account must prove its number again
    assert moved.status == 200, moved.body
    assert moved.body["status"] == "PENDING"
    assert stored_keys(settings, "WABA#") == [f"WABA#309876543210|ACCOUNT#{account['id']}"]

    # WHEN it is deleted
    assert business.delete(f"/api/whatsapp/accounts/{account['id']}").status == 204

    # THEN neither its lookup item nor its templates are left
    assert stored_keys(settings, "WABA#") == []
    assert stored_keys(settings, "TEMPLATE#") == []


def test_an_account_stored_before_account_health_still_loads(settings: Settings, business: ApiClient) -> None:
    # GIVEN a sandbox account whose item lacks every health attribute (as items written before them)
    created = business.post("/api/whatsapp/accounts", account_body("+14155550177", "sandbox"))
    assert created.status == 201, created.body
    client = boto3.client("dynamodb", region_name=settings.region)
    (key,) = [
        {"PK": item["PK"], "SK": item["SK"]}
        for item in client.scan(TableName=settings.table_name)["Items"]
        if item["SK"]["S"] == f"ACCOUNT#{created.body['id']}" and item["PK"]["S"].startswith("BIZ#")
    ]
    client.update_item(
        TableName=settings.table_name,
        Key=key,
        UpdateExpression="REMOVE flagged, suspended_by_provider",
    )

    # WHEN it is read
    response = business.get(f"/api/whatsapp/accounts/{created.body['id']}")

    # THEN it loads with the defaults
    assert response.status == 200, response.body
    assert (response.body["flagged"], response.body["suspendedByProvider"]) == (False, False)
    assert response.body["ownershipVerifiedAt"] is None


def test_a_tenant_setting_red_pauses_the_processing_queues(settings: Settings, business: ApiClient) -> None:
    # GIVEN a sandbox account (the business's only one) with a PROCESSING queue
    created = business.post("/api/whatsapp/accounts", account_body("+14155550188", "sandbox"))
    assert created.status == 201, created.body
    queue = create_queue(business, accountId=created.body["id"])
    set_queue_status(settings, business.business_id, queue["id"], QueueStatus.PROCESSING)  # type: ignore[attr-defined]

    # WHEN the tenant records a RED quality rating
    updated = business.put(f"/api/whatsapp/accounts/{created.body['id']}", {"qualityRating": "RED"})

    # THEN the queue is paused, saying why
    assert updated.status == 200, updated.body
    paused = business.get(f"/api/whatsapp/queue/{queue['id']}").body
    assert paused["status"] == "PAUSED"
    assert "cannot send (quality rating RED)" in paused["statusReason"]
