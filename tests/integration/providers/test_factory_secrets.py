"""ProviderFactory with the production secrets getter (Powertools) on moto's Secrets Manager, sending for real."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities.parameters.base import clear_caches
from moto import mock_aws

from tests.support.fake_providers import FakeMetaServer
from wabacast.adapters.secrets import SecretsManagerStore
from wabacast.domain.models import (
    Account,
    AccountLimits,
    AccountStatus,
    CredentialsSummary,
    MessagingTier,
    MetaCredentials,
    Provider,
    QualityRating,
    VerificationStatus,
)
from wabacast.providers.base import OutboundMessage
from wabacast.providers.factory import (
    SECRET_VERSION_CHECK_S,
    ProviderFactory,
    SecretsManagerVersions,
    powertools_secret_getter,
)
from wabacast.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def secrets_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretsManagerStore]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    clear_caches()  # type: ignore[no-untyped-call]
    with mock_aws():
        yield SecretsManagerStore(boto3.client("secretsmanager", region_name="us-east-1"), "wabacast")
    clear_caches()  # type: ignore[no-untyped-call]


def meta_account(account_id: str) -> Account:
    return Account(
        id=account_id,
        business_id="biz_1",
        display_name="Sender",
        phone_number="+34900000000",
        provider=Provider.META,
        status=AccountStatus.ACTIVE,
        is_primary=True,
        is_default=False,
        limits=AccountLimits(),
        verification_status=VerificationStatus.UNKNOWN,
        quality_rating=QualityRating.UNKNOWN,
        messaging_tier=MessagingTier.TIER_1K,
        credentials=CredentialsSummary(configured=True),
        created_at=T0,
        updated_at=T0,
    )


def test_meta_credentials_stored_by_the_api_drive_a_real_send(
    secrets_manager: SecretsManagerStore, fake_meta: FakeMetaServer, http_client: httpx.Client
) -> None:
    # GIVEN Meta credentials stored the way the accounts API stores them, and Graph pointed at a local fake
    account = meta_account(f"acc_{uuid.uuid4().hex[:8]}")
    credentials = MetaCredentials(
        phone_number_id="106540352242922",
        waba_id="102290129340398",
        access_token="EAAG-stored-token-0123456789",
        app_secret="0123456789abcdef0123456789abcdef",
    )
    name = secrets_manager.name_for_account(account.business_id, account.id)
    secrets_manager.put(name, credentials.model_dump(), {"businessId": account.business_id})
    settings = Settings(table_name="wabacast-test", meta_base_url=fake_meta.url, provider_timeout_s=5)
    factory = ProviderFactory(settings, powertools_secret_getter, http_client)

    # WHEN the account's provider sends a message
    receipt = factory.for_account(account, name).send(
        OutboundMessage(job_id="j", to="+34600000001", from_number="+34900000000", template_name="hi", language="en")
    )

    # THEN the request used the stored phone number id and token
    assert receipt.provider_message_id.startswith("wamid.")
    (request,) = fake_meta.requests
    assert request.path == "/v24.0/106540352242922/messages"
    assert request.headers["authorization"] == "Bearer EAAG-stored-token-0123456789"


def test_a_secret_that_is_not_a_json_object_is_refused(secrets_manager: SecretsManagerStore) -> None:
    # GIVEN a secret holding a JSON list
    name = f"wabacast/biz_1/accounts/acc_{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name=name, SecretString="[1, 2]")

    # WHEN it is read through the production getter
    # THEN it is refused as credentials
    with pytest.raises(ValueError, match="not a JSON object"):
        powertools_secret_getter(name)


class SteppedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_credential_update_reaches_a_warm_sender_by_the_secrets_version(
    secrets_manager: SecretsManagerStore, fake_meta: FakeMetaServer, http_client: httpx.Client
) -> None:
    # GIVEN a warm provider for a Meta account, built from version 1 of its secret
    account = meta_account(f"acc_{uuid.uuid4().hex[:8]}")
    first = MetaCredentials(
        phone_number_id="106540352242922",
        waba_id="102290129340398",
        access_token="EAAG-first-token-0123456789",
        app_secret="0123456789abcdef0123456789abcdef",
    )
    name = secrets_manager.name_for_account(account.business_id, account.id)
    secrets_manager.put(name, first.model_dump(), {"businessId": account.business_id})
    client = boto3.client("secretsmanager", region_name="us-east-1")
    clock = SteppedClock()
    versions = SecretsManagerVersions(client, check_every_s=SECRET_VERSION_CHECK_S, monotonic=clock)
    factory = ProviderFactory(
        Settings(table_name="wabacast-test", meta_base_url=fake_meta.url, provider_timeout_s=5), versions, http_client
    )
    message = OutboundMessage(
        job_id="j", to="+34600000001", from_number="+34900000000", template_name="hi", language="en"
    )
    factory.for_account(account, name).send(message)

    # WHEN the token is rotated outside the API (a new secret version; the account item does not move)
    rotated = first.model_copy(update={"access_token": "EAAG-rotated-token-987654321"})
    secrets_manager.put(name, rotated.model_dump(), {"businessId": account.business_id})
    clock.now += SECRET_VERSION_CHECK_S / 2
    factory.for_account(account, name).send(message)
    clock.now += SECRET_VERSION_CHECK_S
    factory.for_account(account, name).send(message)

    # THEN sends within the check period use the provider as built; the first after it uses the new version
    tokens = [request.headers["authorization"] for request in fake_meta.requests]
    assert tokens == [
        "Bearer EAAG-first-token-0123456789",
        "Bearer EAAG-first-token-0123456789",
        "Bearer EAAG-rotated-token-987654321",
    ]


def test_an_account_update_reads_the_secret_at_once_not_from_a_cache(
    secrets_manager: SecretsManagerStore, fake_meta: FakeMetaServer, http_client: httpx.Client
) -> None:
    # GIVEN a warm provider, and the account's credentials replaced through the API (the account's updatedAt moves)
    account = meta_account(f"acc_{uuid.uuid4().hex[:8]}")
    first = MetaCredentials(
        phone_number_id="106540352242922",
        waba_id="102290129340398",
        access_token="EAAG-first-token-0123456789",
        app_secret="0123456789abcdef0123456789abcdef",
    )
    name = secrets_manager.name_for_account(account.business_id, account.id)
    secrets_manager.put(name, first.model_dump(), {"businessId": account.business_id})
    versions = SecretsManagerVersions(boto3.client("secretsmanager", region_name="us-east-1"), monotonic=SteppedClock())
    factory = ProviderFactory(
        Settings(table_name="wabacast-test", meta_base_url=fake_meta.url, provider_timeout_s=5), versions, http_client
    )
    message = OutboundMessage(
        job_id="j", to="+34600000001", from_number="+34900000000", template_name="hi", language="en"
    )
    factory.for_account(account, name).send(message)
    replaced = first.model_copy(update={"access_token": "EAAG-replaced-token-55555555"})
    secrets_manager.put(name, replaced.model_dump(), {"businessId": account.business_id})
    updated = account.model_copy(update={"updated_at": account.updated_at + timedelta(seconds=1)})

    # WHEN the next send comes, well within the version check period
    factory.for_account(updated, name).send(message)

    # THEN it already uses the new token
    assert fake_meta.requests[-1].headers["authorization"] == "Bearer EAAG-replaced-token-55555555"
