"""ProviderFactory: which adapter an account gets, where its credentials come from, and caching."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from wabacast.domain.jobs import ErrorClass
from wabacast.domain.models import (
    Account,
    AccountLimits,
    AccountStatus,
    CredentialsSummary,
    MessagingTier,
    Provider,
    QualityRating,
    VerificationStatus,
)
from wabacast.providers.base import OutboundMessage, ProviderError
from wabacast.providers.factory import ProviderFactory
from wabacast.providers.meta import MetaCloudProvider
from wabacast.providers.twilio import TwilioProvider
from wabacast.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
META_SECRET = {
    "phone_number_id": "106540352242922",
    "waba_id": "102290129340398",
    "access_token": "EAAG-meta-access-token-0123456789",
    "app_secret": "0123456789abcdef0123456789abcdef",
}
TWILIO_SECRET = {"account_sid": "AC" + "a" * 32, "auth_token": "0123456789abcdef0123456789abcdef"}
MESSAGE = OutboundMessage(
    job_id="job_1", to="+34600000001", from_number="+34900000000", template_name="hello", language="en_US"
)


def account(provider: Provider, account_id: str = "acc_1", updated_at: datetime = T0) -> Account:
    return Account(
        id=account_id,
        business_id="biz_1",
        display_name="Sender",
        phone_number="+34900000000",
        provider=provider,
        status=AccountStatus.ACTIVE,
        is_primary=True,
        is_default=False,
        limits=AccountLimits(),
        verification_status=VerificationStatus.UNKNOWN,
        quality_rating=QualityRating.UNKNOWN,
        messaging_tier=MessagingTier.TIER_1K,
        credentials=CredentialsSummary(configured=provider is not Provider.SANDBOX),
        created_at=T0,
        updated_at=updated_at,
    )


class Secrets:
    def __init__(self, values: dict[str, dict[str, Any]]) -> None:
        self.values = values
        self.reads: list[str] = []

    def __call__(self, name: str) -> dict[str, Any]:
        self.reads.append(name)
        return self.values[name]


class Recorder:
    """An httpx transport that remembers requests and answers a wamid."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"messages": [{"id": "wamid.X"}]})


def settings(**overrides: Any) -> Settings:
    return Settings(table_name="wabacast-test", **overrides)


def factory(secrets: Secrets, recorder: Recorder | None = None, **overrides: Any) -> ProviderFactory:
    client = httpx.Client(transport=httpx.MockTransport(recorder or Recorder()))
    return ProviderFactory(settings(**overrides), secrets, client)


def test_a_sandbox_account_sends_to_the_sandbox_url_with_its_account_id() -> None:
    # GIVEN a sandbox URL and a sandbox account
    recorder = Recorder()
    secrets = Secrets({})
    providers = factory(secrets, recorder, sandbox_base_url="http://127.0.0.1:8081")

    # WHEN its provider sends
    provider = providers.for_account(account(Provider.SANDBOX, "acc_sbx"), "wabacast/biz_1/accounts/acc_sbx")
    provider.send(MESSAGE)

    # THEN the Meta API call went to the sandbox with the account id as phone number id; no secret was read
    assert isinstance(provider, MetaCloudProvider)
    assert str(recorder.requests[0].url) == "http://127.0.0.1:8081/v24.0/acc_sbx/messages"
    assert recorder.requests[0].headers["authorization"] == "Bearer sandbox"
    assert secrets.reads == []


def test_a_sandbox_account_without_a_sandbox_url_pauses_its_queue() -> None:
    # GIVEN no SANDBOX_BASE_URL
    providers = factory(Secrets({}))

    # WHEN a sandbox account's provider is asked for
    with pytest.raises(ProviderError) as caught:
        providers.for_account(account(Provider.SANDBOX), "unused")

    # THEN the error says what is missing and pauses the queue
    assert "sandbox accounts need SANDBOX_BASE_URL" in caught.value.message
    assert caught.value.error_class is ErrorClass.PAUSE_QUEUE


def test_a_meta_account_uses_its_stored_credentials_and_the_configured_graph_url() -> None:
    # GIVEN stored Meta credentials and a configured Graph URL and version
    recorder = Recorder()
    secrets = Secrets({"s/meta": META_SECRET})
    providers = factory(secrets, recorder, meta_base_url="https://graph.local", meta_api_version="v22.0")

    # WHEN its provider sends
    providers.for_account(account(Provider.META), "s/meta").send(MESSAGE)

    # THEN the call uses the stored phone number id and token
    request = recorder.requests[0]
    assert str(request.url) == "https://graph.local/v22.0/106540352242922/messages"
    assert request.headers["authorization"] == "Bearer EAAG-meta-access-token-0123456789"
    assert secrets.reads == ["s/meta"]


def test_camel_case_stored_credentials_are_read_too() -> None:
    # GIVEN credentials stored with camelCase keys
    camel = {
        "phoneNumberId": "106540352242922",
        "wabaId": "102290129340398",
        "accessToken": "EAAG-meta-access-token-0123456789",
        "appSecret": "0123456789abcdef0123456789abcdef",
    }
    providers = factory(Secrets({"s": camel}))

    # WHEN the provider is built
    # THEN it is a Meta provider
    assert isinstance(providers.for_account(account(Provider.META), "s"), MetaCloudProvider)


def test_a_twilio_account_gets_the_twilio_adapter() -> None:
    # GIVEN stored Twilio credentials
    providers = factory(Secrets({"s/tw": TWILIO_SECRET}))

    # WHEN the provider is built
    provider = providers.for_account(account(Provider.TWILIO), "s/tw")

    # THEN it is a Twilio provider that does not show its token
    assert isinstance(provider, TwilioProvider)
    assert TWILIO_SECRET["auth_token"] not in repr(provider)


def test_providers_are_cached_per_account_until_the_account_changes_or_is_invalidated() -> None:
    # GIVEN a factory and a Meta account
    secrets = Secrets({"s/meta": META_SECRET})
    providers = factory(secrets)
    first = providers.for_account(account(Provider.META), "s/meta")

    # WHEN the same account version is asked for again
    # THEN the cached provider is returned without reading the secret again
    assert providers.for_account(account(Provider.META), "s/meta") is first
    assert len(secrets.reads) == 1

    # WHEN the account changed (new credentials move updated_at)
    changed = providers.for_account(account(Provider.META, updated_at=T0 + timedelta(seconds=1)), "s/meta")
    # THEN the provider is rebuilt from a fresh read
    assert changed is not first
    assert len(secrets.reads) == 2

    # WHEN the account is invalidated (e.g. after a token error)
    providers.invalidate("acc_1")
    rebuilt = providers.for_account(account(Provider.META, updated_at=T0 + timedelta(seconds=1)), "s/meta")
    # THEN it is rebuilt again; another account has its own provider
    assert rebuilt is not changed
    assert len(secrets.reads) == 3
    other = providers.for_account(account(Provider.META, "acc_2"), "s/meta")
    assert other is not rebuilt


def test_invalid_stored_credentials_pause_the_queue_without_showing_values() -> None:
    # GIVEN stored Meta credentials with a bad token and a missing field
    broken = {"phone_number_id": "106540352242922", "access_token": "short-secret-x"}
    providers = factory(Secrets({"s": broken}))

    # WHEN the provider is built
    with pytest.raises(ProviderError) as caught:
        providers.for_account(account(Provider.META), "s")

    # THEN the queue pauses, the fields are named and the value is not shown
    assert caught.value.error_class is ErrorClass.PAUSE_QUEUE
    assert "access_token" in caught.value.message
    assert "waba_id" in caught.value.message
    assert "short-secret-x" not in str(caught.value)


def test_secrets_getter_failures_propagate_unchanged() -> None:
    # GIVEN a secrets getter that fails (throttled, network)
    def failing(name: str) -> dict[str, Any]:
        raise TimeoutError("secrets manager timed out")

    providers = ProviderFactory(settings(), failing, httpx.Client())

    # WHEN a provider is built
    # THEN the getter's own error reaches the caller, for its ordinary retry
    with pytest.raises(TimeoutError):
        providers.for_account(account(Provider.TWILIO), "s")


def test_settings_read_the_provider_fields_from_the_environment() -> None:
    # GIVEN provider variables in the environment, and none
    env = {"TABLE_NAME": "t-1", "META_BASE_URL": "http://127.0.0.1:9", "META_API_VERSION": "v22.0",
           "PROVIDER_TIMEOUT_S": "2.5", "SANDBOX_BASE_URL": "http://127.0.0.1:8081"}  # fmt: skip

    # WHEN settings are built
    configured = Settings.from_env(env)
    default = Settings.from_env({"TABLE_NAME": "t-1"})

    # THEN they carry the values, or the defaults
    assert (configured.meta_base_url, configured.meta_api_version, configured.provider_timeout_s) == (
        "http://127.0.0.1:9",
        "v22.0",
        2.5,
    )
    assert configured.sandbox_base_url == "http://127.0.0.1:8081"
    assert (default.meta_base_url, default.meta_api_version, default.provider_timeout_s) == (
        "https://graph.facebook.com",
        "v24.0",
        10.0,
    )
    assert default.sandbox_base_url is None


# Meta's versions changelog (checked 2026-11-29): the date each Graph API version stops working.
GRAPH_API_END_OF_LIFE = {
    "v21.0": date(2027, 1, 21),
    "v22.0": date(2027, 5, 20),
    "v23.0": date(2027, 10, 8),
    "v24.0": date(2028, 2, 18),
    "v25.0": date(2028, 7, 29),
}


def test_the_default_graph_api_version_is_supported_for_at_least_a_year() -> None:
    # GIVEN the default Graph API version and the day this default was chosen
    chosen_on = date(2026, 11, 29)
    version = Settings(table_name="t-1").meta_api_version
    # WHEN its end of life is looked up
    # THEN Meta supports it for at least a year from then
    assert GRAPH_API_END_OF_LIFE[version] >= chosen_on.replace(year=chosen_on.year + 1)


class CountingSecretsClient:
    """Secrets Manager's GetSecretValue: the stored value and its VersionId, counted."""

    def __init__(self, value: dict[str, str]) -> None:
        self.value = value
        self.version = "v1"
        self.calls = 0

    def get_secret_value(self, SecretId: str) -> dict[str, str]:  # noqa: N803 - boto3's parameter name
        self.calls += 1
        return {"SecretString": json.dumps(self.value), "VersionId": self.version}


def test_secret_versions_are_checked_once_per_period_not_per_message() -> None:
    # GIVEN a version-checking secrets source over a counting client, and a clock that does not move
    from wabacast.providers.factory import SECRET_VERSION_CHECK_S, SecretsManagerVersions

    client = CountingSecretsClient({"account_sid": "AC" + "0" * 32, "auth_token": "f" * 32})
    now = [0.0]
    versions = SecretsManagerVersions(client, monotonic=lambda: now[0])  # type: ignore[arg-type]

    # WHEN 100 messages ask for the secret within one period, and one more after it
    seen = {versions.current("s").version_id for _ in range(100)}
    client.version = "v2"
    now[0] += SECRET_VERSION_CHECK_S
    after = versions.current("s").version_id

    # THEN Secrets Manager was asked once per period, and the new version is seen after it
    assert (seen, after, client.calls) == ({"v1"}, "v2", 2)
