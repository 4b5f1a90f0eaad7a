"""HTTP input and output models: camelCase JSON, owned by the API (the domain stays snake_case)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from wabacast.domain.health import AccountTemplate, TemplateStatus
from wabacast.domain.models import (
    Account,
    AccountLimits,
    AccountStatus,
    ActiveHours,
    ApiKey,
    Attributes,
    Audience,
    Business,
    Contact,
    CredentialsSummary,
    MessagingTier,
    OptOut,
    OptOutScope,
    OptOutSource,
    Provider,
    QualityRating,
    Queue,
    QueueCounters,
    QueueStatus,
    Recipient,
    RunStatus,
    Tag,
    Template,
    TemplateCategory,
    TimeZoneName,
    Variables,
    VerificationStatus,
)
from wabacast.domain.replies import DEFAULT_START_KEYWORDS, DEFAULT_STOP_KEYWORDS, Keywords, ReplyAction
from wabacast.domain.webhooks import InboundMessage
from wabacast.phone import PhoneNumber
from wabacast.pricing import default_price_table, format_micros
from wabacast.text import check_plain_text

# Free text: printable, no control or invisible formatting characters (wabacast.text).
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_plain_text)]
Label = Annotated[str, Field(max_length=100), AfterValidator(check_plain_text)]
Reason = Annotated[str, Field(max_length=500), AfterValidator(check_plain_text)]
ContactName = Annotated[str, Field(max_length=200), AfterValidator(check_plain_text)]
# An id a client sends in a body: bounded well below DynamoDB's key limits, like the ids in paths.
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
# Numbers and booleans are strict: "5" and true are not a priority, "true" and 1 not a boolean.
StrictFlag = Annotated[bool, Field(strict=True)]


class ApiModel(BaseModel):
    # defer_build: built on first use (a route's models when it is first called), not at every cold start.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True)


# Errors ------------------------------------------------------------------------------------------------------
class ErrorDetail(ApiModel):
    field: str | None = None
    message: str


class ErrorBody(ApiModel):
    code: str = Field(examples=["VALIDATION_ERROR"])
    message: str
    field: str | None = Field(default=None, description="The input at fault, as a dotted path")
    details: list[ErrorDetail] | None = Field(default=None, description="Every problem found, when several")


class ErrorResponse(ApiModel):
    error: ErrorBody


# Businesses and keys (admin) ---------------------------------------------------------------------------------
_STOP_DOC = "Whole-reply keywords that opt the sender out (case, accents and spaces ignored); absent: the defaults"
_START_DOC = "Whole-reply keywords that opt the sender back in; absent: the defaults"


class BusinessCreateIn(ApiModel):
    name: Name
    timezone: TimeZoneName = "UTC"
    stop_keywords: Keywords | None = Field(default=None, description=_STOP_DOC)
    start_keywords: Keywords | None = Field(default=None, description=_START_DOC)


class BusinessKeywordsIn(ApiModel):
    """The business's reply keywords, replaced as a whole: an absent or null list goes back to the defaults."""

    stop_keywords: Keywords | None = Field(default=None, description=_STOP_DOC)
    start_keywords: Keywords | None = Field(default=None, description=_START_DOC)


class BusinessOut(ApiModel):
    id: str
    name: str
    timezone: str
    primary_account_id: str | None
    default_account_id: str | None
    created_at: datetime
    stop_keywords: list[str] = Field(description="The keywords in force (the defaults when none were set)")
    start_keywords: list[str] = Field(description="The keywords in force (the defaults when none were set)")

    @classmethod
    def of(cls, business: Business) -> BusinessOut:
        data = business.model_dump()
        data["stop_keywords"] = business.stop_keywords or list(DEFAULT_STOP_KEYWORDS)
        data["start_keywords"] = business.start_keywords or list(DEFAULT_START_KEYWORDS)
        return cls.model_validate(data)


class BusinessCreatedOut(BusinessOut):
    api_key: str = Field(description="Shown once; only its hash is stored")
    key_id: str


class BusinessListOut(ApiModel):
    items: list[BusinessOut]
    next_token: str | None


class KeyCreateIn(ApiModel):
    label: Label | None = None


class KeyOut(ApiModel):
    key_id: str
    label: str | None
    created_at: datetime

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(key_id=key.key_id, label=key.label, created_at=key.created_at)


class KeyCreatedOut(KeyOut):
    api_key: str = Field(description="Shown once; only its hash is stored")


class KeyListOut(ApiModel):
    items: list[KeyOut]
    next_token: str | None


# Accounts ----------------------------------------------------------------------------------------------------
_CREDENTIALS_DOC = (
    "Write-only. twilio: {accountSid, authToken, messagingServiceSid?}; "
    "meta: {phoneNumberId, wabaId, accessToken, appSecret}; sandbox: none."
)
# Credentials fields are repr=False: Powertools logs the parsed body at DEBUG ("Calling API Route Handler").


class AccountCreateIn(ApiModel):
    display_name: Name
    phone_number: PhoneNumber
    provider: Provider
    credentials: dict[str, str] | None = Field(default=None, description=_CREDENTIALS_DOC, repr=False)
    status: AccountStatus = AccountStatus.ACTIVE
    is_primary: StrictFlag = False
    is_default: StrictFlag = False
    limits: AccountLimits = Field(default_factory=AccountLimits)
    verification_status: VerificationStatus = VerificationStatus.UNKNOWN
    quality_rating: QualityRating = QualityRating.UNKNOWN
    messaging_tier: MessagingTier = MessagingTier.TIER_1K


class AccountUpdateIn(ApiModel):
    """Partial update: only the fields sent change. The provider cannot change."""

    display_name: Name | None = None
    phone_number: PhoneNumber | None = None
    credentials: dict[str, str] | None = Field(default=None, description=_CREDENTIALS_DOC, repr=False)
    status: AccountStatus | None = None
    is_primary: StrictFlag | None = None
    is_default: StrictFlag | None = None
    limits: AccountLimits | None = None
    verification_status: VerificationStatus | None = None
    quality_rating: QualityRating | None = None
    messaging_tier: MessagingTier | None = None

    @field_validator("*")
    @classmethod
    def _no_nulls(cls, value: Any, info: ValidationInfo) -> Any:
        # A field validator (not a model one) so the error names the field.
        if value is None and info.field_name != "credentials":
            raise ValueError("cannot be null; leave it out to keep the stored value")
        return value


class MessagingLimitOut(ApiModel):
    limit: int = Field(
        description="Unique recipients allowed per rolling 24 h: the tier's, capped by limits.dailyRecipientLimit"
    )
    used: int = Field(description="Unique recipients messaged in the last 24 h (counted in 15-minute steps)")
    resets_at: datetime | None = Field(description="When room returns (UTC) while none is left; null otherwise")


class AccountOut(ApiModel):
    id: str
    display_name: str
    phone_number: str
    provider: Provider
    credentials: CredentialsSummary
    status: AccountStatus
    is_primary: bool
    is_default: bool
    limits: AccountLimits
    verification_status: VerificationStatus
    quality_rating: QualityRating
    messaging_tier: MessagingTier
    delivery_ready: bool = Field(description="The account's delivery queues exist; a retried create completes them")
    created_at: datetime
    updated_at: datetime
    status_reason: str | None = Field(
        default=None,
        description="Why the status is what it is when the tenant did not choose it: `awaiting ownership check`, "
        "a failed ownership check, a ban or restriction the provider reported",
    )
    ownership_verified_at: datetime | None = Field(
        default=None,
        description="When a sync confirmed, with the account's own credentials, that the provider knows this number "
        "(Twilio and Meta accounts stay PENDING until then); null for sandbox accounts",
    )
    last_synced_at: datetime | None = Field(default=None, description="The last sync that read the provider")
    sync_error: str | None = Field(default=None, description="Why the last sync could not read the provider")
    provider_status: str | None = Field(
        default=None, description="The number's status at the provider (Meta: CONNECTED, FLAGGED, BANNED, ...)"
    )
    throughput: str | None = Field(default=None, description="Meta's throughput level (STANDARD, HIGH, ...)")
    flagged: bool = Field(default=False, description="Meta flagged the number for low quality: it does not send")
    suspended_by_provider: bool = Field(
        default=False,
        description="SUSPENDED because the provider stopped the number; a sync that finds it back lifts it",
    )
    waba_id: str | None = Field(default=None, description="Meta's WhatsApp Business Account id")
    cost: CostOut | None = Field(
        default=None, description="What its messages cost so far (docs/pricing.md); null in listings"
    )
    messaging_limit: MessagingLimitOut | None = Field(
        default=None, description="Its messaging limit and how much of it the last 24 h used; null in listings"
    )

    @classmethod
    def of(
        cls, account: Account, *, cost: CostOut | None = None, messaging_limit: MessagingLimitOut | None = None
    ) -> AccountOut:
        data = account.model_dump(exclude={"business_id", "provider_number_id"})
        if cost is not None:
            data["cost"] = cost
        if messaging_limit is not None:
            data["messaging_limit"] = messaging_limit
        return cls.model_validate(data)


class AccountListOut(ApiModel):
    items: list[AccountOut]
    next_token: str | None


class TemplateOut(ApiModel):
    """One template of the account, as the last sync (or a later template webhook) reported it."""

    name: str
    language: str
    status: TemplateStatus = Field(description="Meta's review state; queues send APPROVED templates only")
    category: TemplateCategory | None = Field(description="The provider's category; it wins over a queue's own")
    provider_template_id: str | None
    components: list[dict[str, Any]] = Field(description="The template's components as the provider lists them")
    reason: str | None = Field(description="The provider's reason for a rejection or pause")
    updated_at: datetime

    @classmethod
    def of(cls, template: AccountTemplate) -> TemplateOut:
        return cls(
            name=template.name,
            language=template.language,
            status=template.status,
            category=template.category,
            provider_template_id=template.provider_template_id,
            components=[dict(component) for component in template.components],
            reason=template.reason,
            updated_at=template.updated_at,
        )


class TemplateListOut(ApiModel):
    items: list[TemplateOut]
    next_token: str | None


class InboundOut(ApiModel):
    from_: str = Field(alias="from", description="The sender, E.164")
    text: str
    type: str = Field(description="As the provider names it: text, button, ...")
    received_at: datetime
    action: ReplyAction | None = Field(description="What the reply's keyword did: optedOut, optedIn or null")

    @classmethod
    def of(cls, message: InboundMessage) -> InboundOut:
        return cls.model_validate(
            {
                "from": message.from_number,
                "text": message.text,
                "type": message.kind,
                "received_at": message.received_at,
                "action": message.action,
            }
        )


class InboundListOut(ApiModel):
    items: list[InboundOut]
    next_token: str | None


# Queues ------------------------------------------------------------------------------------------------------
class ScheduleIn(ApiModel):
    start_at: datetime | None = Field(
        default=None, description="ISO 8601; without an offset it is read in the schedule's time zone"
    )
    timezone: TimeZoneName | None = Field(default=None, description="IANA name; default: the business's")
    active_hours: ActiveHours | None = Field(
        default=None, description="Daily sending window, wall-clock time in `timezone` (or each recipient's zone)"
    )
    end_at: datetime | None = Field(
        default=None,
        description="ISO 8601 (without an offset: in `timezone`). Jobs still pending then are skipped as `expired` "
        "and the queue completes; for a recurring queue, no run starts after it",
    )
    recipient_local_time: bool = Field(
        default=False,
        strict=True,
        description="Apply `activeHours` in each recipient's time zone: the contact's `timezone`, else the zone of "
        "the number when it has exactly one, else `timezone`",
    )
    recurrence: str | None = Field(
        default=None,
        min_length=9,
        max_length=100,
        description="5-field cron expression in `timezone` (minute hour day-of-month month day-of-week), e.g. "
        "`0 9 * * MON`: each occurrence starts a fresh run",
        examples=["0 9 * * MON"],
    )


class QueueCreateIn(ApiModel):
    name: Name
    account_id: Identifier | None = Field(
        default=None, description="Default: the business's default, else primary account"
    )
    template: Template
    variables: Variables = Field(default_factory=dict)
    audience: Audience
    priority: int = Field(default=5, ge=1, le=10, strict=True, description="10 is the most urgent")
    schedule: ScheduleIn = Field(default_factory=ScheduleIn)
    max_attempts: int = Field(default=3, ge=1, le=10, strict=True)


class QueueUpdateIn(ApiModel):
    """Partial update: each field sent replaces the stored one whole."""

    name: Name | None = None
    account_id: Identifier | None = None
    template: Template | None = None
    variables: Variables | None = None
    audience: Audience | None = None
    priority: int | None = Field(default=None, ge=1, le=10, strict=True)
    schedule: ScheduleIn | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=10, strict=True)

    @field_validator("*")
    @classmethod
    def _no_nulls(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            raise ValueError("cannot be null; leave it out to keep the stored value")
        return value


class AudienceOut(ApiModel):
    recipients: list[Recipient] | None = Field(description="Inline recipients; omitted from listings")
    contact_tags: list[str]
    recipient_count: int


class ScheduleOut(ApiModel):
    start_at: datetime | None
    timezone: str
    active_hours: ActiveHours | None
    end_at: datetime | None
    recipient_local_time: bool
    recurrence: str | None


class QueueOut(ApiModel):
    id: str
    name: str
    account_id: str
    template: Template
    variables: dict[str, str]
    audience: AudienceOut
    priority: int
    schedule: ScheduleOut
    max_attempts: int
    status: QueueStatus
    status_reason: str | None
    counters: QueueCounters
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    run_number: int = Field(description="Runs started so far (a recurring queue starts one per occurrence)")
    run_scheduled_for: datetime | None = Field(description="The occurrence the current or last run started for")
    run_started_at: datetime | None
    cost: CostOut | None = Field(default=None, description="What its messages cost so far (docs/pricing.md)")

    @classmethod
    def of(cls, queue: Queue, *, with_recipients: bool = True) -> QueueOut:
        data: dict[str, Any] = queue.model_dump(exclude={"business_id", "audience", "paused_from"})
        # From its counters (live on a GET, the planner's snapshot in listings), in the price table's currency.
        data["cost"] = CostOut(currency=default_price_table().currency, total=format_micros(queue.counters.cost_micros))
        data["audience"] = AudienceOut(
            recipients=queue.audience.recipients if with_recipients else None,
            contact_tags=queue.audience.contact_tags,
            recipient_count=queue.audience.recipient_count,
        )
        return cls.model_validate(data)


class QueueListOut(ApiModel):
    items: list[QueueOut]
    next_token: str | None


# Contacts and opt-outs ---------------------------------------------------------------------------------------
class ContactIn(ApiModel):
    phone_number: PhoneNumber
    name: ContactName | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    attributes: Attributes | None = None
    timezone: TimeZoneName | None = None


class ContactsUpsertIn(ApiModel):
    contacts: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=1000,
        description="Rows shaped like ContactIn (phoneNumber, name?, tags?, attributes?, timezone?); "
        "each row is validated on its own and rejected rows are reported, not fatal",
    )


class RejectedRowOut(ApiModel):
    index: int
    phone_number: str | None
    field: str | None
    message: str


class ContactsUpsertOut(ApiModel):
    created: int
    updated: int
    rejected: list[RejectedRowOut]


class ContactOut(ApiModel):
    phone_number: str
    name: str | None
    tags: list[str]
    attributes: dict[str, str | int | float | bool]
    timezone: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, contact: Contact) -> ContactOut:
        return cls.model_validate(contact.model_dump())


class ContactListOut(ApiModel):
    items: list[ContactOut]
    next_token: str | None


class OptOutIn(ApiModel):
    phone_number: PhoneNumber
    reason: Reason | None = None
    scope: OptOutScope = Field(
        default=OptOutScope.ALL,
        description="`all`: no template reaches the number; `marketing`: utility and authentication templates still do",
    )


class OptOutOut(ApiModel):
    phone_number: str
    reason: str | None
    source: OptOutSource
    created_at: datetime
    scope: OptOutScope

    @classmethod
    def of(cls, opt_out: OptOut) -> OptOutOut:
        return cls.model_validate(opt_out.model_dump())


class OptOutListOut(ApiModel):
    items: list[OptOutOut]
    next_token: str | None


# Processing ----------------------------------------------------------------------------------------------------
class ErrorSummaryOut(ApiModel):
    code: str
    message: str
    count: int


class CostOut(ApiModel):
    currency: str = Field(description="The price table's currency (ISO 4217), e.g. USD")
    total: str = Field(description='Every run\'s messages, a decimal string with six places, e.g. "12.345600"')
    per_run: str | None = Field(
        default=None, description="The current run's messages (equal to `total` for a one-time queue)"
    )


class ProgressOut(ApiModel):
    queue_id: str
    status: QueueStatus
    status_reason: str | None
    counters: QueueCounters
    percent_done: float = Field(description="Share of the planned jobs that are settled")
    rate_per_second: float = Field(description="Jobs settled per second, measured over the last planner ticks")
    eta_seconds: float | None = Field(description="Pending jobs at the current rate; null while unknown")
    last_errors: list[ErrorSummaryOut] = Field(description="Most frequent provider errors, with counts")
    started_at: datetime | None
    completed_at: datetime | None
    waiting_for_window: bool = Field(description="Processing, but outside its sending window: nothing goes out now")
    next_window_at: datetime | None = Field(
        description="When the sending window next opens (with the zone's offset); null while it is open"
    )
    run_number: int = Field(description="The current (or last) run; 0 before the first")
    totals: QueueCounters = Field(description="Counters over every run (equal to `counters` for a one-time queue)")
    next_run_at: datetime | None = Field(description="A recurring queue's next occurrence; null otherwise")
    cost: CostOut | None = Field(
        default=None, description="What the messages cost so far (docs/pricing.md), from the providers' status reports"
    )
    limit_resets_at: datetime | None = Field(
        default=None,
        description="The account's messaging limit (unique recipients per rolling 24 h) holds the queue's jobs back "
        "until then (UTC); null while it does not",
    )


class RunOut(ApiModel):
    number: int
    status: RunStatus
    scheduled_for: datetime | None = Field(description="The occurrence that started it (null: started by request)")
    started_at: datetime
    completed_at: datetime | None
    reason: str | None
    counters: QueueCounters


class RunListOut(ApiModel):
    items: list[RunOut]
    next_token: str | None


class RetryFailedOut(ApiModel):
    requeued: int
    more: bool = Field(description="More retryable failures remain: call again")
