"""Builds the provider for an account: credentials read once through a secrets getter, one provider per account.

Lives for a Lambda execution environment. A provider is rebuilt when the account changes (its `updated_at` moves
whenever its credentials are replaced) or after `invalidate(account_id)`, e.g. once the sender saw a PAUSE_QUEUE
error for it. The provider modules (with httpx, or Twilio's client) are imported when the first provider of their
kind is built, so a cold start loads only what the accounts it serves use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from pydantic.alias_generators import to_snake

from wabacast.domain.models import Account, MetaCredentials, TwilioCredentials
from wabacast.domain.models import Provider as ProviderKind
from wabacast.providers.base import Provider
from wabacast.providers.errors import local_error
from wabacast.settings import Settings

if TYPE_CHECKING:
    import httpx

SecretsGetter = Callable[[str], dict[str, Any]]
C = TypeVar("C", MetaCredentials, TwilioCredentials)

# How long Powertools keeps a secret in memory: a rotated token is picked up within this many seconds.
SECRET_MAX_AGE_S = 300
SANDBOX_ACCESS_TOKEN = "sandbox"  # noqa: S105 - not a secret: the sandbox accepts any bearer token


def powertools_secret_getter(name: str) -> dict[str, Any]:
    """Production secrets getter: Secrets Manager through Powertools' cached parameters utility."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name, transform="json", max_age=SECRET_MAX_AGE_S)
    if not isinstance(value, dict):
        raise ValueError(f"secret {name} is not a JSON object")
    return value


class ProviderFactory:
    def __init__(
        self, settings: Settings, secrets_getter: SecretsGetter, http_client: httpx.Client | None = None
    ) -> None:
        """`http_client`: shared by the Meta and sandbox providers; None: one is made for the first of them."""
        self._settings = settings
        self._secrets_getter = secrets_getter
        self._http_client = http_client
        self._cache: dict[str, tuple[datetime, Provider]] = {}
        self._lock = threading.Lock()

    def for_account(self, account: Account, secret_name: str) -> Provider:
        """The account's provider, built on first use. Raises ProviderError (PAUSE_QUEUE) when it cannot be built.

        Errors of the secrets getter itself (throttling, network) propagate unchanged: they say nothing about the
        account and the caller's ordinary retry applies.
        """
        with self._lock:
            cached = self._cache.get(account.id)
            if cached is not None and cached[0] == account.updated_at:
                return cached[1]
        provider = self._build(account, secret_name)
        with self._lock:
            self._cache[account.id] = (account.updated_at, provider)
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

    def _build(self, account: Account, secret_name: str) -> Provider:
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

            meta = self._credentials(MetaCredentials, account, secret_name)
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

            twilio = self._credentials(TwilioCredentials, account, secret_name)
            callback = (
                f"{settings.public_base_url.rstrip('/')}/api/webhooks/twilio/{account.id}"
                if settings.public_base_url
                else None
            )
            return TwilioProvider(twilio, timeout_s=settings.provider_timeout_s, status_callback_url=callback)
        raise local_error("PROVIDER_CONFIG", f"unknown provider {account.provider!r}")

    def _credentials(self, model: type[C], account: Account, secret_name: str) -> C:
        raw = self._secrets_getter(secret_name)
        try:
            return model.model_validate(raw)
        except ValidationError as error:
            # Name the fields, never the values: they may be tokens.
            fields = sorted({".".join(to_snake(str(part)) for part in item["loc"]) for item in error.errors()})
            raise local_error(
                "PROVIDER_CONFIG", f"stored {account.provider.value} credentials are invalid ({', '.join(fields)})"
            ) from None
