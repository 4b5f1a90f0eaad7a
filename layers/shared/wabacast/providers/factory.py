"""Builds the provider for an account: credentials read through a secrets source, one provider per account.

Lives for a Lambda execution environment. A provider is rebuilt when the account changes (its `updated_at` moves
whenever the API replaces its credentials: the secret is then read at once, not from a cache), when the secret's
version changes (a rotation outside the API: `VersionedSecrets` looks at most every `SECRET_VERSION_CHECK_S`), or
after `invalidate(account_id)`. The provider modules (with httpx, or Twilio's client) are imported when the first
provider of their kind is built, so a cold start loads only what the accounts it serves use.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from pydantic import ValidationError
from pydantic.alias_generators import to_snake

from wabacast.domain.models import Account, MetaCredentials, TwilioCredentials
from wabacast.domain.models import Provider as ProviderKind
from wabacast.providers.base import Provider
from wabacast.providers.errors import local_error
from wabacast.settings import Settings

if TYPE_CHECKING:
    import httpx
    from mypy_boto3_secretsmanager import SecretsManagerClient

SecretsGetter = Callable[[str], dict[str, Any]]
C = TypeVar("C", MetaCredentials, TwilioCredentials)

# How long Powertools keeps a secret in memory (the plain getter, kept for tools and tests).
SECRET_MAX_AGE_S = 300
# How often a warm sender asks Secrets Manager for an account secret's current version: a credential rotated
# outside the API reaches it within this many seconds. One GetSecretValue per secret and execution environment
# per period, never one per message.
SECRET_VERSION_CHECK_S = 30.0
SANDBOX_ACCESS_TOKEN = "sandbox"  # noqa: S105 - not a secret: the sandbox accepts any bearer token


def powertools_secret_getter(name: str) -> dict[str, Any]:
    """Production secrets getter: Secrets Manager through Powertools' cached parameters utility."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name, transform="json", max_age=SECRET_MAX_AGE_S)
    if not isinstance(value, dict):
        raise ValueError(f"secret {name} is not a JSON object")
    return value


@dataclass(frozen=True)
class SecretVersion:
    value: dict[str, Any]
    version_id: str | None


@runtime_checkable
class VersionedSecrets(Protocol):
    def current(self, name: str) -> SecretVersion:
        """The secret as last seen, read again when it was seen more than a short while ago."""
        ...

    def fresh(self, name: str) -> SecretVersion:
        """The secret read now."""
        ...


class SecretsManagerVersions:
    """Account secrets with their Secrets Manager VersionId (Powertools' parameters utility returns the value
    only). GetSecretValue answers both the value and the VersionId, so checking the version and reading the new
    value is one call, with the read permission the senders already have."""

    def __init__(
        self,
        client: SecretsManagerClient,
        *,
        check_every_s: float = SECRET_VERSION_CHECK_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._check_every_s = check_every_s
        self._monotonic = monotonic
        self._seen: dict[str, tuple[float, SecretVersion]] = {}
        self._lock = threading.Lock()

    def current(self, name: str) -> SecretVersion:
        with self._lock:
            seen = self._seen.get(name)
        if seen is not None and self._monotonic() - seen[0] < self._check_every_s:
            return seen[1]
        return self.fresh(name)

    def fresh(self, name: str) -> SecretVersion:
        answer = self._client.get_secret_value(SecretId=name)
        value = json.loads(answer.get("SecretString") or "null")
        if not isinstance(value, dict):
            raise ValueError(f"secret {name} is not a JSON object")
        version = SecretVersion(value=value, version_id=answer.get("VersionId"))
        with self._lock:
            self._seen[name] = (self._monotonic(), version)
        return version


@dataclass(frozen=True)
class _Cached:
    updated_at: datetime
    version_id: str | None
    provider: Provider


class ProviderFactory:
    def __init__(
        self,
        settings: Settings,
        secrets: SecretsGetter | VersionedSecrets,
        http_client: httpx.Client | None = None,
    ) -> None:
        """`secrets`: a `VersionedSecrets` (Lambda: `SecretsManagerVersions`), whose version changes rebuild the
        provider, or a plain getter (name -> value), whose values are used until the account changes.
        `http_client`: shared by the Meta and sandbox providers; None: one is made for the first of them."""
        self._settings = settings
        self._versions = secrets if isinstance(secrets, VersionedSecrets) else None
        if isinstance(secrets, VersionedSecrets):
            versions = secrets
            self._secrets_getter: SecretsGetter = lambda name: versions.fresh(name).value
        else:
            self._secrets_getter = secrets
        self._http_client = http_client
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def for_account(self, account: Account, secret_name: str) -> Provider:
        """The account's provider, built on first use. Raises ProviderError (PAUSE_QUEUE) when it cannot be built.

        Errors of the secrets source itself (throttling, network) propagate unchanged: they say nothing about the
        account and the caller's ordinary retry applies.
        """
        with self._lock:
            cached = self._cache.get(account.id)
        secret: SecretVersion | None = None
        if cached is not None and cached.updated_at == account.updated_at:
            if self._versions is None or account.provider is ProviderKind.SANDBOX:
                return cached.provider
            secret = self._versions.current(secret_name)
            if secret.version_id == cached.version_id:
                return cached.provider
        elif self._versions is not None and account.provider is not ProviderKind.SANDBOX:
            # New to this environment, or changed (credentials replaced through the API): read it now.
            secret = self._versions.fresh(secret_name)
        provider = self._build(account, secret_name, secret.value if secret is not None else None)
        with self._lock:
            self._cache[account.id] = _Cached(account.updated_at, secret.version_id if secret else None, provider)
        return provider

    def invalidate(self, account_id: str) -> None:
        with self._lock:
            self._cache.pop(account_id, None)

    def _shared_http_client(self) -> httpx.Client:
        with self._lock:
            if self._http_client is None:
                import httpx

                self._http_client = httpx.Client(timeout=self._settings.provider_timeout_s)
            return self._http_client

    def _build(self, account: Account, secret_name: str, raw: dict[str, Any] | None) -> Provider:
        settings = self._settings
        if account.provider is ProviderKind.SANDBOX:
            from wabacast.providers.meta import MetaCloudProvider

            if not settings.sandbox_base_url:
                raise local_error("PROVIDER_CONFIG", "sandbox accounts need SANDBOX_BASE_URL")
            return MetaCloudProvider(
                base_url=settings.sandbox_base_url,
                api_version=settings.meta_api_version,
                phone_number_id=account.id,
                access_token=SANDBOX_ACCESS_TOKEN,
                client=self._shared_http_client(),
                timeout_s=settings.provider_timeout_s,
                provider_name="sandbox",
            )
        if account.provider is ProviderKind.META:
            from wabacast.providers.meta import MetaCloudProvider

            meta = self._credentials(MetaCredentials, account, secret_name, raw)
            return MetaCloudProvider(
                base_url=settings.meta_base_url,
                api_version=settings.meta_api_version,
                phone_number_id=meta.phone_number_id,
                access_token=meta.access_token,
                client=self._shared_http_client(),
                timeout_s=settings.provider_timeout_s,
            )
        if account.provider is ProviderKind.TWILIO:
            from wabacast.providers.twilio import TwilioProvider

            twilio = self._credentials(TwilioCredentials, account, secret_name, raw)
            callback = (
                f"{settings.public_base_url.rstrip('/')}/api/webhooks/twilio/{account.id}"
                if settings.public_base_url
                else None
            )
            return TwilioProvider(twilio, timeout_s=settings.provider_timeout_s, status_callback_url=callback)
        raise local_error("PROVIDER_CONFIG", f"unknown provider {account.provider!r}")

    def _credentials(self, model: type[C], account: Account, secret_name: str, raw: dict[str, Any] | None) -> C:
        if raw is None:
            raw = self._secrets_getter(secret_name)
        try:
            return model.model_validate(raw)
        except ValidationError as error:
            # Name the fields, never the values: they may be tokens.
            fields = sorted({".".join(to_snake(str(part)) for part in item["loc"]) for item in error.errors()})
            raise local_error(
                "PROVIDER_CONFIG", f"stored {account.provider.value} credentials are invalid ({', '.join(fields)})"
            ) from None
