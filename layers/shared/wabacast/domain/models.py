"""Domain models: what wabacast knows about businesses, accounts, queues, contacts and opt-outs.

Plain snake_case pydantic models, independent of HTTP (see wabacast.api.models) and of DynamoDB
(see wabacast.adapters.dynamodb). Rules that hold everywhere a value enters live here as annotated types.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator
from pydantic.alias_generators import to_camel

from wabacast.domain.replies import Keywords
from wabacast.phone import FROM_STORAGE, PhoneNumber
from wabacast.text import check_plain_text


class Provider(StrEnum):
    TWILIO = "twilio"
    META = "meta"
    SANDBOX = "sandbox"


class AccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    PENDING = "PENDING"


class QualityRating(StrEnum):
    GREEN = "GREEN"
    YELLOW = "YELLOW"
    RED = "RED"
    UNKNOWN = "UNKNOWN"


class VerificationStatus(StrEnum):
    VERIFIED = "VERIFIED"
    NOT_VERIFIED = "NOT_VERIFIED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"


class MessagingTier(StrEnum):
    """Meta's business-initiated conversation limits per 24 h."""

    TIER_50 = "TIER_50"
    TIER_250 = "TIER_250"
    TIER_1K = "TIER_1K"
    # Meta's tier between 1K and 10K since 2025.
    TIER_2K = "TIER_2K"
    TIER_10K = "TIER_10K"
    TIER_100K = "TIER_100K"
    TIER_UNLIMITED = "TIER_UNLIMITED"


class QueueStatus(StrEnum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    PROCESSING = "PROCESSING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


# A queue in one of these states may send soon: its account must stay.
QUEUE_STATUSES_HOLDING_ACCOUNT = (QueueStatus.SCHEDULED, QueueStatus.PROCESSING, QueueStatus.PAUSED)
QUEUE_STATUSES_FINISHED = (QueueStatus.COMPLETED, QueueStatus.CANCELLED, QueueStatus.FAILED)


class Weekday(StrEnum):
    MON = "MON"
    TUE = "TUE"
    WED = "WED"
    THU = "THU"
    FRI = "FRI"
    SAT = "SAT"
    SUN = "SUN"


class ApiKeyRole(StrEnum):
    ADMIN = "admin"
    BUSINESS = "business"


def _check_timezone(name: str) -> str:
    # ZoneInfo accepts file paths like "../../etc/passwd"-ish keys poorly; checking the catalogue is exact.
    # Files of the system's zoneinfo directory that are not zones ("localtime" follows the machine's setting).
    if name not in _timezone_names() or name in {"localtime", "posixrules", "Factory"}:
        raise ValueError("must be an IANA time zone name such as 'Europe/Madrid' or 'UTC'")
    try:
        ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise ValueError("must be an IANA time zone name such as 'Europe/Madrid' or 'UTC'") from None
    return name


_TIMEZONES: frozenset[str] = frozenset()


def _timezone_names() -> frozenset[str]:
    # Computed once, lazily: available_timezones() walks the whole tz database.
    global _TIMEZONES
    if not _TIMEZONES:
        _TIMEZONES = frozenset(available_timezones())
    return _TIMEZONES


TimeZoneName = Annotated[str, Field(examples=["Europe/Madrid"]), AfterValidator(_check_timezone)]

_TEMPLATE_NAME = r"^[a-z0-9_]{1,512}$"
_LANGUAGE = r"^[a-z]{2,3}(_[A-Z]{2,4})?$"
_CONTENT_SID = r"^HX[0-9a-fA-F]{32}$"
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Tag = Annotated[str, Field(pattern=TAG_PATTERN, examples=["vip"])]
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_VARIABLE_KEY = r"^[A-Za-z0-9_]{1,64}$"

# "{{contact.name}}", "{{contact.phoneNumber}}", "{{contact.attributes.city}}" or the short "{{contact.city}}".
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_PLACEHOLDER_PATH = re.compile(
    r"^contact\.(name|phoneNumber|attributes\.[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_]*)$"
)


def _check_variable_value(value: str) -> str:
    for match in _PLACEHOLDER.finditer(value):
        if not _PLACEHOLDER_PATH.match(match.group(1)):
            raise ValueError(
                f"placeholder '{match.group(0)}' is not supported; use {{{{contact.name}}}}, "
                "{{contact.phoneNumber}} or {{contact.attributes.<name>}}"
            )
    if "{{" in _PLACEHOLDER.sub("", value) or "}}" in _PLACEHOLDER.sub("", value):
        raise ValueError("has an unbalanced '{{' or '}}'")
    return value


VariableValue = Annotated[
    str, Field(max_length=1024), AfterValidator(check_plain_text), AfterValidator(_check_variable_value)
]
Variables = Annotated[
    dict[Annotated[str, Field(pattern=_VARIABLE_KEY)], VariableValue],
    Field(max_length=100, description="Template variables by position or name; values may hold {{contact.*}}"),
]


def _check_attributes(value: dict[str, str | int | float | bool]) -> dict[str, str | int | float | bool]:
    for name, item in value.items():
        if not _ATTRIBUTE_NAME.match(name):
            raise ValueError(f"attribute name '{name}' must match {_ATTRIBUTE_NAME.pattern}")
        if isinstance(item, str) and len(item) > 1024:
            raise ValueError(f"attribute '{name}' is longer than 1024 characters")
        if isinstance(item, str):
            try:
                check_plain_text(item)
            except ValueError as error:
                raise ValueError(f"attribute '{name}' {error}") from None
    return value


Attributes = Annotated[dict[str, str | int | float | bool], Field(max_length=50), AfterValidator(_check_attributes)]


class DomainModel(BaseModel):
    # camelCase aliases so the API can embed domain value objects as they are; storage dumps snake_case names.
    # defer_build: a model's validator is built on its first use, so a cold start pays only for the models it uses.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )


class Business(DomainModel):
    id: str
    name: str
    timezone: str
    primary_account_id: str | None = None
    default_account_id: str | None = None
    created_at: datetime
    # Reply keywords (wabacast.domain.replies); None: the defaults.
    stop_keywords: Keywords | None = None
    start_keywords: Keywords | None = None


class ApiKey(DomainModel):
    key_id: str
    role: ApiKeyRole
    business_id: str | None = None
    label: str | None = None
    created_at: datetime


class AccountLimits(DomainModel):
    # strict: "80" and true are not rates (the API passes the JSON values as they are).
    messages_per_second: int = Field(default=80, ge=1, le=1000, strict=True)
    daily_recipient_limit: int = Field(default=1000, ge=1, le=10_000_000, strict=True)


class CredentialsSummary(DomainModel):
    """What may be shown about stored credentials: never the secret itself."""

    configured: bool
    hint: str | None = None


class TwilioCredentials(DomainModel):
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: str = Field(pattern=r"^[0-9a-fA-F]{32}$", repr=False)
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")

    def hint(self) -> str:
        return f"{self.account_sid[:2]}...{self.account_sid[-4:]}"


class MetaCredentials(DomainModel):
    phone_number_id: str = Field(pattern=r"^[0-9]{5,32}$")
    waba_id: str = Field(pattern=r"^[0-9]{5,32}$")
    access_token: str = Field(min_length=20, max_length=4096, repr=False)
    app_secret: str = Field(pattern=r"^[0-9a-fA-F]{32}$", repr=False)

    def hint(self) -> str:
        return f"...{self.phone_number_id[-4:]}"


ProviderCredentials = TwilioCredentials | MetaCredentials


class Account(DomainModel):
    id: str
    business_id: str
    display_name: str
    phone_number: str
    provider: Provider
    status: AccountStatus
    is_primary: bool
    is_default: bool
    limits: AccountLimits
    verification_status: VerificationStatus
    quality_rating: QualityRating
    messaging_tier: MessagingTier
    credentials: CredentialsSummary
    # Meta's phone number id (the sandbox's: the account id): what a Meta webhook names the account by. Not secret.
    provider_number_id: str | None = None
    # True once the account's SQS queue, dead-letter queue and mappings exist (see AccountService.create).
    delivery_ready: bool = False
    created_at: datetime
    updated_at: datetime
    # Account health (wabacast.logic.account_health, decision 29). Items stored before it load with the defaults.
    # Why the status is what it is, when it is not the tenant's own choice ("awaiting ownership check", a ban, ...).
    status_reason: str | None = None
    # When a sync confirmed, with the account's own credentials, that the provider knows this number as this
    # account's; None: never (a new Twilio/Meta account stays PENDING until then). Sandbox accounts need no proof.
    ownership_verified_at: datetime | None = None
    last_synced_at: datetime | None = None
    # The last sync's failure ("<code>: <message>"), None once a sync succeeds.
    sync_error: str | None = None
    # The phone number's status as the provider reports it (Meta: CONNECTED, FLAGGED, BANNED, ...).
    provider_status: str | None = None
    # Meta's throughput level (STANDARD, HIGH, NOT_APPLICABLE).
    throughput: str | None = None
    # Meta flagged the number for low quality (phone_number_quality_update FLAGGED, or status FLAGGED): no sending.
    flagged: bool = False
    # The status is SUSPENDED because the provider banned, restricted or disconnected the number (not the tenant):
    # a later sync that finds it reinstated makes it ACTIVE again.
    suspended_by_provider: bool = False
    # Meta's WhatsApp Business Account id (from the credentials; not secret): what Meta's account webhooks name.
    waba_id: str | None = None

    @property
    def can_send(self) -> bool:
        """The one rule for whether messages may go out through this account: ACTIVE, not rated RED and not FLAGGED
        by Meta (sending on such a number is how numbers get blocked)."""
        return self.status == AccountStatus.ACTIVE and self.quality_rating != QualityRating.RED and not self.flagged

    @property
    def needs_ownership_proof(self) -> bool:
        """A Twilio or Meta account whose number no sync has confirmed yet (sandbox numbers exist only locally)."""
        return self.provider != Provider.SANDBOX and self.ownership_verified_at is None


class TemplateCategory(StrEnum):
    """Meta's template categories. Opt-outs of marketing (Meta 131050) do not stop utility or authentication ones."""

    MARKETING = "marketing"
    UTILITY = "utility"
    AUTHENTICATION = "authentication"


class HeaderType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    DOCUMENT = "document"
    VIDEO = "video"


_MEDIA_LINK = r"^https://[^\s]{1,2040}$"
# Meta's limits: a header text parameter of the 60-character header, a quick-reply payload, a URL button's suffix.
HeaderText = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(check_plain_text)]
ButtonText = Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(check_plain_text)]


class TemplateHeader(DomainModel):
    """The header parameter a template with a variable or media header needs at send time."""

    type: HeaderType
    text: HeaderText | None = Field(default=None, description="For a `text` header: its parameter")
    link: str | None = Field(
        default=None, pattern=_MEDIA_LINK, description="For `image`, `document`, `video`: a public https URL"
    )
    filename: str | None = Field(
        default=None, min_length=1, max_length=240, description="For `document`: the file name shown"
    )

    @model_validator(mode="after")
    def _fits_its_type(self) -> TemplateHeader:
        if self.type == HeaderType.TEXT:
            if self.text is None:
                raise ValueError("text is required for a text header")
            if self.link is not None or self.filename is not None:
                raise ValueError("link and filename are only for media headers")
        else:
            if self.link is None:
                raise ValueError(f"link is required for a {self.type.value} header")
            if self.text is not None:
                raise ValueError("text is only for a text header")
            if self.filename is not None and self.type != HeaderType.DOCUMENT:
                raise ValueError("filename is only for a document header")
        return self


class ButtonSubType(StrEnum):
    QUICK_REPLY = "quick_reply"
    URL = "url"


class TemplateButton(DomainModel):
    """A button parameter: a quick reply's payload, or the suffix of a dynamic URL button."""

    sub_type: ButtonSubType
    index: int = Field(ge=0, le=9, strict=True, description="The button's position in the template, 0-9")
    payload: ButtonText | None = Field(default=None, description="For `quick_reply`: returned when tapped")
    url_suffix: ButtonText | None = Field(default=None, description="For `url`: appended to the button's URL")

    @model_validator(mode="after")
    def _fits_its_sub_type(self) -> TemplateButton:
        if self.sub_type == ButtonSubType.QUICK_REPLY and (self.payload is None or self.url_suffix is not None):
            raise ValueError("a quick_reply button takes payload (and no urlSuffix)")
        if self.sub_type == ButtonSubType.URL and (self.url_suffix is None or self.payload is not None):
            raise ValueError("a url button takes urlSuffix (and no payload)")
        return self


class Template(DomainModel):
    name: str = Field(pattern=_TEMPLATE_NAME, description="Approved template name (lowercase, digits, _)")
    language: str = Field(pattern=_LANGUAGE, examples=["en_US"], description="Template language code")
    content_sid: str | None = Field(
        default=None, pattern=_CONTENT_SID, description="Twilio Content SID (HX...); required for Twilio accounts"
    )
    category: TemplateCategory = Field(
        default=TemplateCategory.MARKETING,
        description="The template's category at Meta; a number opted out of marketing only still gets the others",
    )
    header: TemplateHeader | None = Field(default=None, description="Header parameter (Meta accounts)")
    buttons: list[TemplateButton] = Field(
        default_factory=list, max_length=10, description="Button parameters (Meta accounts), one per index"
    )

    @model_validator(mode="after")
    def _one_parameter_per_button(self) -> Template:
        indexes = [button.index for button in self.buttons]
        if len(set(indexes)) != len(indexes):
            raise ValueError("buttons: each index may appear once")
        return self


class Recipient(DomainModel):
    phone_number: PhoneNumber
    variables: Variables = Field(default_factory=dict)


MAX_INLINE_RECIPIENTS = 1000


class Audience(DomainModel):
    recipients: list[Recipient] = Field(default_factory=list, max_length=MAX_INLINE_RECIPIENTS)
    contact_tags: list[Tag] = Field(default_factory=list, max_length=20)
    # How many inline recipients a stored queue has when it was read without them (listings).
    _stored_recipient_count: int | None = PrivateAttr(default=None)

    @property
    def stored_recipient_count(self) -> int | None:
        return self._stored_recipient_count

    @stored_recipient_count.setter
    def stored_recipient_count(self, count: int) -> None:
        self._stored_recipient_count = count

    @property
    def recipient_count(self) -> int:
        if self.recipients or self._stored_recipient_count is None:
            return len(self.recipients)
        return self._stored_recipient_count

    @model_validator(mode="after")
    def _not_empty(self, info: ValidationInfo) -> Audience:
        # A stored queue read without its recipients (listings, delivery reads) was checked on the way in.
        if isinstance(info.context, dict) and info.context.get(FROM_STORAGE):
            return self
        if not self.recipients and not self.contact_tags:
            raise ValueError("needs at least one of recipients or contactTags")
        return self


_HH_MM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class ActiveHours(DomainModel):
    """A daily sending window in the schedule's time zone; end before start means it runs past midnight."""

    start: str = Field(pattern=_HH_MM, examples=["09:00"])
    end: str = Field(pattern=_HH_MM, examples=["18:00"])
    days: list[Weekday] | None = Field(default=None, min_length=1, max_length=7)

    @model_validator(mode="after")
    def _valid_window(self) -> ActiveHours:
        if self.start == self.end:
            raise ValueError("start and end must differ (an empty window would never send)")
        if self.days is not None and len(set(self.days)) != len(self.days):
            raise ValueError("days must not repeat")
        return self

    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    def end_time(self) -> time:
        return time.fromisoformat(self.end)


class Schedule(DomainModel):
    """When a queue sends. `start_at`/`end_at` are UTC instants; `active_hours` is wall-clock time in `timezone`
    (or, with `recipient_local_time`, in each recipient's zone); `recurrence` is a 5-field cron expression in
    `timezone` whose every occurrence starts a fresh run (wabacast.domain.recurrence)."""

    start_at: datetime | None = None
    timezone: str
    active_hours: ActiveHours | None = None
    end_at: datetime | None = None
    recipient_local_time: bool = False
    recurrence: str | None = None

    @property
    def recurring(self) -> bool:
        return self.recurrence is not None


class QueueCounters(DomainModel):
    total: int = 0
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    opted_out: int = 0
    skipped: int = 0
    # Money, not jobs: what the settled jobs cost, in micro-units of the price table's currency (wabacast.pricing).
    cost_micros: int = 0


def counters_since(baseline: QueueCounters, now: QueueCounters) -> QueueCounters:
    """A run's counters: the queue's cumulative counters now, less those when the run started."""
    return QueueCounters(
        **{name: max(0, getattr(now, name) - getattr(baseline, name)) for name in QueueCounters.model_fields}
    )


class Queue(DomainModel):
    id: str
    business_id: str
    name: str
    account_id: str
    template: Template
    variables: dict[str, str]
    audience: Audience
    priority: int = Field(ge=1, le=10)
    schedule: Schedule
    max_attempts: int = Field(ge=1, le=10)
    status: QueueStatus
    status_reason: str | None = None
    counters: QueueCounters
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    # Runs: a one-time queue has one (number 1); a recurring queue one per occurrence of its recurrence.
    run_number: int = 0
    # The occurrence the current (or last) run was started for; None for a run started by request.
    run_scheduled_for: datetime | None = None
    run_started_at: datetime | None = None
    # The status a paused queue returns to on resume (SCHEDULED or PROCESSING).
    paused_from: QueueStatus | None = None


class RunStatus(StrEnum):
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    # An occurrence that found the previous run still going (or the queue paused): recorded, not started.
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


class QueueRun(DomainModel):
    """One run of a recurring queue. `baseline`: the queue's cumulative counters when the run started (the run's own
    counters are the difference); `counters`: the run's final counters, once it ended."""

    queue_id: str
    number: int
    status: RunStatus
    scheduled_for: datetime | None = None
    started_at: datetime
    completed_at: datetime | None = None
    reason: str | None = None
    baseline: QueueCounters = Field(default_factory=lambda: QueueCounters())
    counters: QueueCounters | None = None


class Contact(DomainModel):
    phone_number: str
    name: str | None = None
    tags: list[str] = Field(default_factory=list)
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict)
    timezone: str | None = None
    created_at: datetime
    updated_at: datetime


class OptOutSource(StrEnum):
    API = "api"
    STOP_REPLY = "stop_reply"
    PROVIDER = "provider"


class OptOutScope(StrEnum):
    ALL = "all"  # no template at all
    MARKETING = "marketing"  # no marketing template; utility and authentication templates still go


class OptOut(DomainModel):
    phone_number: str
    reason: str | None = None
    source: OptOutSource
    created_at: datetime
    # Items stored before scopes existed have none: they stop everything.
    scope: OptOutScope = OptOutScope.ALL

    def covers(self, category: TemplateCategory) -> bool:
        """Whether this opt-out stops a template of `category`."""
        return self.scope == OptOutScope.ALL or category == TemplateCategory.MARKETING


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing; `next_token` is opaque to callers and None on the last page."""

    items: list[T]
    next_token: str | None = None
