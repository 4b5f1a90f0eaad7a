"""Account health as the provider reports it: the phone number's standing and the WABA's templates.

Filled by a provider's account reader (wabacast.providers.account_readers: Meta's Graph API, Twilio's REST API,
the sandbox's Graph emulation) on a sync, and by Meta's account webhooks (`phone_number_quality_update`,
`message_template_status_update`, `account_update`). wabacast.logic.account_health decides what they change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from wabacast.domain.models import MessagingTier, QualityRating, TemplateCategory


class TemplateStatus(StrEnum):
    """Meta's template review states (message_templates `status`, webhook `event`)."""

    APPROVED = "APPROVED"
    PENDING = "PENDING"
    REJECTED = "REJECTED"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"
    IN_APPEAL = "IN_APPEAL"
    PENDING_DELETION = "PENDING_DELETION"
    DELETED = "DELETED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    ARCHIVED = "ARCHIVED"
    UNKNOWN = "UNKNOWN"


# A template in one of these states must stop every queue that sends it (protection).
TEMPLATE_STATUSES_STOPPING = frozenset({TemplateStatus.PAUSED, TemplateStatus.DISABLED})


@dataclass(frozen=True)
class ProviderTemplate:
    """One template of the account's WABA (Meta) or Content API (Twilio), as the provider lists it."""

    name: str
    language: str
    status: TemplateStatus
    category: TemplateCategory | None
    provider_template_id: str | None = None
    # Meta's `components` as returned (header/body/footer/buttons), kept for display; never interpreted here.
    components: tuple[dict[str, object], ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class PhoneNumberHealth:
    """The phone number as the provider sees it. `display_phone_number` is what proves ownership: the provider
    answered, with the account's own credentials, that this id is that number."""

    display_phone_number: str | None
    quality_rating: QualityRating = QualityRating.UNKNOWN
    # Meta's phone number `status` as sent (CONNECTED, FLAGGED, RESTRICTED, BANNED, ...); Twilio's sender status.
    provider_status: str | None = None
    # Meta's `throughput.level` (STANDARD, HIGH, NOT_APPLICABLE).
    throughput: str | None = None
    messaging_tier: MessagingTier | None = None
    verified_name: str | None = None


@dataclass(frozen=True)
class AccountSnapshot:
    """What one sync read. `templates` None: the provider offers no template listing (or it was not read)."""

    phone: PhoneNumberHealth
    templates: tuple[ProviderTemplate, ...] | None = None
    read_at: datetime | None = None


class AccountReadError(Exception):
    """A sync that could not read the provider. `code` is the provider's error code (or a local one such as
    "UNREACHABLE"); `message` never holds a credential. `credentials_refused`: the provider refused the
    credentials themselves (401/403, Meta 190), which matters to the ownership check."""

    def __init__(self, code: str, message: str, *, credentials_refused: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.credentials_refused = credentials_refused


@dataclass(frozen=True)
class QualityUpdate:
    """Meta `phone_number_quality_update` (and the quality side of `account_update`): the number named by its
    display number, as Meta sends it. `event`: FLAGGED, UNFLAGGED, DOWNGRADE, UPGRADE, ONBOARDING, ..."""

    waba_id: str
    display_phone_number: str
    event: str
    messaging_tier: MessagingTier | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class TemplateStatusUpdate:
    """Meta `message_template_status_update`: one template of one WABA changed review state."""

    waba_id: str
    name: str
    language: str
    status: TemplateStatus
    provider_template_id: str | None = None
    reason: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class AccountUpdate:
    """Meta `account_update`: the WABA (or one of its numbers) was verified, restricted, banned or disabled.
    `phone_number` is set when Meta names one number; otherwise the event is about the whole WABA."""

    waba_id: str
    event: str
    phone_number: str | None = None
    ban_state: str | None = None
    occurred_at: datetime | None = None


@dataclass
class SyncReport:
    """What one pass over the accounts did (the periodic sync's log line and metrics)."""

    accounts_synced: int = 0
    accounts_failed: int = 0
    accounts_verified: int = 0
    queues_paused: int = 0
    queues_falling_back: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # account id -> error code
    # The pass reached its deadline before every account: the next pass syncs the rest.
    stopped_early: bool = False


@dataclass(frozen=True)
class AccountTemplate:
    """A template as wabacast keeps it for one account (one stored item per name and language): what the last sync
    read, or a later `message_template_status_update` changed. `updated_at`: when that happened."""

    account_id: str
    name: str
    language: str
    status: TemplateStatus
    category: TemplateCategory | None
    updated_at: datetime
    provider_template_id: str | None = None
    components: tuple[dict[str, object], ...] = ()
    reason: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.language)

    @property
    def usable(self) -> bool:
        """Whether a queue may send it: APPROVED is the only state Meta sends a template in."""
        return self.status == TemplateStatus.APPROVED

    @classmethod
    def of(cls, account_id: str, template: ProviderTemplate, updated_at: datetime) -> AccountTemplate:
        return cls(
            account_id=account_id,
            name=template.name,
            language=template.language,
            status=template.status,
            category=template.category,
            updated_at=updated_at,
            provider_template_id=template.provider_template_id,
            components=template.components,
            reason=template.reason,
        )

    def same_content(self, other: AccountTemplate) -> bool:
        """Equal but for `updated_at`: a sync rewrites only templates that changed."""
        return (self.status, self.category, self.provider_template_id, self.components, self.reason) == (
            other.status,
            other.category,
            other.provider_template_id,
            other.components,
            other.reason,
        )
