"""Reads an account's standing from its provider: the phone number's health and the templates it may send.

`ProviderAccountReaders.for_account(account, secret_name)` gives the account's reader, built the way
`ProviderFactory` builds providers (same settings, same secrets sources, one shared httpx client):

- Meta: Graph API `GET /{version}/{phone_number_id}?fields=...` and `GET /{version}/{waba_id}/message_templates`,
  with the account's own access token.
- Twilio: `IncomingPhoneNumbers` and the WhatsApp Senders API for the number, the Content API for templates, with
  the account's own SID and auth token (Basic auth).
- Sandbox: the Meta reader against `SANDBOX_BASE_URL`, the account id standing for both the phone number id and
  the WABA id (the sandbox answers both under that id).

Every read is a fresh one: credentials are read from the secrets source on each `read()`, so a sync always uses
the credentials stored now. Provider-side failures raise `AccountReadError` and nothing else; errors of the
secrets source itself (throttling, network) propagate unchanged, as in the factory. The HTTP readers
(wabacast.providers.health_readers, with httpx) are imported by the first read, so importing this module loads
no HTTP library.

`PhoneNumberHealth.display_phone_number` is always E.164 ("+15550783881"), whatever the provider's formatting, and
only set when the provider named the number with the account's credentials (Meta's node for the phone number id;
Twilio's WhatsApp sender or incoming number equal to the account's number).

The mapping of the providers' values to the domain's (tier, quality, template status and category) lives here,
free of I/O, so it is tested on its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError
from pydantic.alias_generators import to_snake

from wabacast.domain.health import AccountReadError, AccountSnapshot, TemplateStatus
from wabacast.domain.models import (
    Account,
    MessagingTier,
    MetaCredentials,
    QualityRating,
    TemplateCategory,
    TwilioCredentials,
)
from wabacast.domain.models import Provider as ProviderKind
from wabacast.providers.factory import SANDBOX_ACCESS_TOKEN, SecretsGetter, VersionedSecrets
from wabacast.settings import Settings

C = TypeVar("C", MetaCredentials, TwilioCredentials)

if TYPE_CHECKING:
    from datetime import datetime

    import httpx

    from wabacast.logic.ports import AccountReader

# Meta's messaging limit names (the phone number's `whatsapp_business_manager_messaging_limit`, formerly
# `messaging_limit_tier`, and the webhooks' `current_limit`), including the 2,000 tier Meta added in 2025.
_TIER_NAMES: dict[str, MessagingTier] = {
    "TIER_50": MessagingTier.TIER_50,
    "TIER_250": MessagingTier.TIER_250,
    "TIER_1K": MessagingTier.TIER_1K,
    "TIER_2K": MessagingTier.TIER_2K,
    "TIER_10K": MessagingTier.TIER_10K,
    "TIER_100K": MessagingTier.TIER_100K,
    "TIER_UNLIMITED": MessagingTier.TIER_UNLIMITED,
    "UNLIMITED": MessagingTier.TIER_UNLIMITED,
}
# The same limits as numbers of unique recipients per 24 h (Meta's `max_daily_conversations_per_business`, where
# -1 means unlimited), largest first: a number maps to the largest tier not above it.
_TIER_SIZES: tuple[tuple[int, MessagingTier], ...] = (
    (100_000, MessagingTier.TIER_100K),
    (10_000, MessagingTier.TIER_10K),
    (2_000, MessagingTier.TIER_2K),
    (1_000, MessagingTier.TIER_1K),
    (250, MessagingTier.TIER_250),
    (50, MessagingTier.TIER_50),
)


def messaging_tier_of(value: object) -> MessagingTier | None:
    """Meta's messaging limit as a tier: a name ("TIER_2K", "TIER_UNLIMITED") or a number of recipients (2000,
    -1 for unlimited). None when Meta has none to say ("TIER_NOT_SET", absent) or the value is not one we know."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip().upper()
        if text in _TIER_NAMES:
            return _TIER_NAMES[text]
        if not text.lstrip("-").isdigit():
            return None
        value = int(text)
    if isinstance(value, int | float):
        if value < 0:
            return MessagingTier.TIER_UNLIMITED
        for size, tier in _TIER_SIZES:
            if value >= size:
                return tier
    return None


def twilio_messaging_tier_of(value: object) -> MessagingTier | None:
    """Twilio's sender `messaging_limit` ("10K Customers/24hr", "Unlimited", "TIER_10K") as a tier."""
    if not isinstance(value, str) or not value.strip():
        return messaging_tier_of(value)
    text = value.strip().upper()
    if text.startswith("UNLIMITED"):
        return MessagingTier.TIER_UNLIMITED
    amount = text.split(" ", 1)[0].replace(",", "")
    multiplier = 1
    if amount.endswith("K"):
        amount, multiplier = amount[:-1], 1_000
    if amount.isdigit():
        return messaging_tier_of(int(amount) * multiplier)
    return messaging_tier_of(text)


# Meta's `quality_rating`: GREEN, YELLOW, RED, or NA/UNKNOWN for a number without enough messages yet.
# Twilio's sender `quality_rating` says HIGH/MEDIUM/LOW for the same three ratings.
_QUALITY_NAMES: dict[str, QualityRating] = {
    "GREEN": QualityRating.GREEN,
    "HIGH": QualityRating.GREEN,
    "YELLOW": QualityRating.YELLOW,
    "MEDIUM": QualityRating.YELLOW,
    "RED": QualityRating.RED,
    "LOW": QualityRating.RED,
}


def quality_rating_of(value: object) -> QualityRating:
    if not isinstance(value, str):
        return QualityRating.UNKNOWN
    return _QUALITY_NAMES.get(value.strip().upper(), QualityRating.UNKNOWN)


# Twilio's Content API approval states (lower case) that are not Meta's own names.
_TWILIO_TEMPLATE_STATUSES: dict[str, TemplateStatus] = {
    "RECEIVED": TemplateStatus.PENDING,
    "SUBMITTED": TemplateStatus.PENDING,
}


def template_status_of(value: object) -> TemplateStatus:
    if not isinstance(value, str):
        return TemplateStatus.UNKNOWN
    text = value.strip().upper()
    if text in _TWILIO_TEMPLATE_STATUSES:
        return _TWILIO_TEMPLATE_STATUSES[text]
    try:
        return TemplateStatus(text)
    except ValueError:
        return TemplateStatus.UNKNOWN


def template_category_of(value: object) -> TemplateCategory | None:
    if not isinstance(value, str):
        return None
    try:
        return TemplateCategory(value.strip().lower())
    except ValueError:
        return None


class ProviderAccountReaders:
    """`AccountReaders` over the real providers (and the sandbox). Lives for a Lambda execution environment."""

    def __init__(
        self,
        settings: Settings,
        secrets: SecretsGetter | VersionedSecrets,
        http_client: httpx.Client | None = None,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        """`secrets`: as for ProviderFactory; a `VersionedSecrets` is asked for the secret as it is now (`fresh`).
        `http_client`: shared by every reader; None: one is made by the first read. `now`: the snapshot's
        `read_at` clock (a datetime factory); None: the current UTC time."""
        self._settings = settings
        if isinstance(secrets, VersionedSecrets):
            versions = secrets
            self._secrets_getter: SecretsGetter = lambda name: versions.fresh(name).value
        else:
            self._secrets_getter = secrets
        self._http_client = http_client
        self._now = now
        self._lock = threading.Lock()

    def for_account(self, account: Account, secret_name: str) -> AccountReader:
        return _LazyReader(self, account, secret_name)

    # -- used by the readers ----------------------------------------------------------------------------------
    def shared_http_client(self) -> httpx.Client:
        with self._lock:
            if self._http_client is None:
                import httpx

                self._http_client = httpx.Client(timeout=self._settings.provider_timeout_s)
            return self._http_client

    def build(self, account: Account, secret_name: str) -> AccountReader:
        """The account's HTTP reader, with its credentials read now. Raises AccountReadError("PROVIDER_CONFIG")
        when the stored credentials or the settings cannot make one."""
        from wabacast.providers import health_readers

        settings = self._settings
        if account.provider is ProviderKind.SANDBOX:
            if not settings.sandbox_base_url:
                raise AccountReadError("PROVIDER_CONFIG", "sandbox accounts need SANDBOX_BASE_URL")
            return health_readers.MetaAccountReader(
                base_url=settings.sandbox_base_url,
                api_version=settings.meta_api_version,
                phone_number_id=account.id,
                waba_id=account.id,
                access_token=SANDBOX_ACCESS_TOKEN,
                client=self.shared_http_client(),
                timeout_s=settings.provider_timeout_s,
                now=self._now,
            )
        if account.provider is ProviderKind.META:
            meta = self._credentials(MetaCredentials, account, secret_name)
            return health_readers.MetaAccountReader(
                base_url=settings.meta_base_url,
                api_version=settings.meta_api_version,
                phone_number_id=meta.phone_number_id,
                waba_id=meta.waba_id,
                access_token=meta.access_token,
                client=self.shared_http_client(),
                timeout_s=settings.provider_timeout_s,
                now=self._now,
            )
        if account.provider is ProviderKind.TWILIO:
            twilio = self._credentials(TwilioCredentials, account, secret_name)
            return health_readers.TwilioAccountReader(
                credentials=twilio,
                phone_number=account.phone_number,
                api_base_url=settings.twilio_api_base_url,
                messaging_base_url=settings.twilio_messaging_base_url,
                content_base_url=settings.twilio_content_base_url,
                client=self.shared_http_client(),
                timeout_s=settings.provider_timeout_s,
                now=self._now,
            )
        raise AccountReadError("PROVIDER_CONFIG", f"unknown provider {account.provider!r}")

    def _credentials(self, model: type[C], account: Account, secret_name: str) -> C:
        raw = self._secrets_getter(secret_name)
        try:
            return model.model_validate(raw)
        except ValidationError as error:
            # Name the fields, never the values: they may be tokens.
            fields = sorted({".".join(to_snake(str(part)) for part in item["loc"]) for item in error.errors()})
            raise AccountReadError(
                "PROVIDER_CONFIG",
                f"stored {account.provider.value} credentials are invalid ({', '.join(fields)})",
            ) from None


class _LazyReader:
    """The reader `for_account` returns: nothing is read (secret, modules) until `read()`, so every failure to
    build the real reader surfaces where the contract says, as an AccountReadError of `read()`."""

    def __init__(self, readers: ProviderAccountReaders, account: Account, secret_name: str) -> None:
        self._readers = readers
        self._account = account
        self._secret_name = secret_name

    def __repr__(self) -> str:
        return f"AccountReader(account={self._account.id!r}, provider={self._account.provider.value!r})"

    def read(self, *, include_templates: bool = True) -> AccountSnapshot:
        reader = self._readers.build(self._account, self._secret_name)
        return reader.read(include_templates=include_templates)
