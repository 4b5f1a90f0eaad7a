"""WhatsApp sender accounts: hierarchy (one primary, at most one default), credentials, deletion rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from wabacast.clock import Clock, utc_now
from wabacast.domain.models import (
    Account,
    AccountLimits,
    AccountStatus,
    Business,
    CredentialsSummary,
    MessagingTier,
    MetaCredentials,
    Page,
    Provider,
    ProviderCredentials,
    QualityRating,
    TwilioCredentials,
    VerificationStatus,
)
from wabacast.errors import ConcurrentModificationError, ConflictError, InvalidInputError, NotFoundError
from wabacast.ids import new_id
from wabacast.logic.ports import (
    AccountStore,
    BusinessStore,
    MetricsSink,
    QueueProvisioner,
    QueueStore,
    SecretStore,
    TemplateStore,
)

# Optimistic writes retry this many times when a concurrent request moved the business's pointers.
MAX_ATTEMPTS = 4
# The status reason of a Twilio or Meta account no sync has confirmed yet (decision 29).
AWAITING_OWNERSHIP = "awaiting ownership check"


class AccountDraft(BaseModel):
    model_config = ConfigDict(frozen=True)

    display_name: str
    phone_number: str
    provider: Provider
    credentials: dict[str, Any] | None = None
    status: AccountStatus = AccountStatus.ACTIVE
    is_primary: bool = False
    is_default: bool = False
    limits: AccountLimits = Field(default_factory=AccountLimits)
    verification_status: VerificationStatus = VerificationStatus.UNKNOWN
    quality_rating: QualityRating = QualityRating.UNKNOWN
    messaging_tier: MessagingTier = MessagingTier.TIER_1K


class AccountPatch(BaseModel):
    """Only the fields that were sent are applied (`model_fields_set`)."""

    model_config = ConfigDict(frozen=True)

    display_name: str | None = None
    phone_number: str | None = None
    credentials: dict[str, Any] | None = None
    status: AccountStatus | None = None
    is_primary: bool | None = None
    is_default: bool | None = None
    limits: AccountLimits | None = None
    verification_status: VerificationStatus | None = None
    quality_rating: QualityRating | None = None
    messaging_tier: MessagingTier | None = None


_CREDENTIAL_MODELS: dict[Provider, type[TwilioCredentials] | type[MetaCredentials]] = {
    Provider.TWILIO: TwilioCredentials,
    Provider.META: MetaCredentials,
}


def parse_credentials(provider: Provider, raw: dict[str, Any] | None) -> ProviderCredentials | None:
    """Validate credentials against the provider's shape; errors name the field as the client sent it."""
    model = _CREDENTIAL_MODELS.get(provider)
    if model is None:
        if raw:
            raise InvalidInputError("credentials: sandbox accounts take no credentials", field="credentials")
        return None
    if raw is None:
        raise InvalidInputError(f"credentials: required for {provider.value} accounts", field="credentials")
    camel_fields = {to_camel(name): name for name in model.model_fields}
    unknown = sorted(set(raw) - set(camel_fields))
    if unknown:
        raise InvalidInputError(
            f"credentials.{unknown[0]}: not a {provider.value} credential field "
            f"(expected {', '.join(sorted(camel_fields))})",
            field=f"credentials.{unknown[0]}",
        )
    try:
        return model.model_validate({camel_fields[key]: value for key, value in raw.items()})
    except ValidationError as error:
        first = error.errors(include_input=False)[0]
        name = to_camel(str(first["loc"][0])) if first["loc"] else ""
        field = f"credentials.{name}" if name else "credentials"
        # Never echo the value: it may be a token.
        raise InvalidInputError(f"{field}: {first['msg']}", field=field) from None


def _summary(credentials: ProviderCredentials | None) -> CredentialsSummary:
    if credentials is None:
        return CredentialsSummary(configured=False)
    return CredentialsSummary(configured=True, hint=credentials.hint())


def _provider_number_id(provider: Provider, credentials: ProviderCredentials | None, account_id: str) -> str | None:
    """What Meta's webhooks name the account by: its phone number id (the sandbox speaks Meta with the account id)."""
    if isinstance(credentials, MetaCredentials):
        return credentials.phone_number_id
    return account_id if provider is Provider.SANDBOX else None


def _waba_id(provider: Provider, credentials: ProviderCredentials | None, account_id: str) -> str | None:
    """What Meta's account webhooks name the account by (with a display number): its WABA id. Not secret. The
    sandbox's Graph emulation uses the account id as the WABA id, as it does for the phone number id."""
    if isinstance(credentials, MetaCredentials):
        return credentials.waba_id
    return account_id if provider is Provider.SANDBOX else None


def later_than(previous: datetime, now: datetime) -> datetime:
    """A timestamp strictly later than `previous`: updated_at doubles as the optimistic-lock version."""
    return now if now > previous else previous + timedelta(microseconds=1)


def count_quality_change(metrics: MetricsSink | None, before: Account, after: Account) -> None:
    """AccountQualityRed: an account turned RED (it stops sending; an alarm watches the metric). The one place for
    it, whether a tenant's update or a sync (wabacast.logic.account_health) changed the rating."""
    turned_red = after.quality_rating == QualityRating.RED and before.quality_rating != QualityRating.RED
    if metrics is not None and turned_red:
        metrics.add("AccountQualityRed", 1, account_id=after.id)


def _ownership_reset(before: Account, patch: AccountPatch) -> dict[str, Any]:
    """A Twilio or Meta account whose number or credentials change must prove the new pair again: PENDING until a
    sync confirms it (otherwise a verified account could be pointed at someone else's number)."""
    if before.provider is Provider.SANDBOX:
        return {}
    number_changed = "phone_number" in patch.model_fields_set and patch.phone_number != before.phone_number
    if not number_changed and "credentials" not in patch.model_fields_set:
        return {}
    return {
        "status": AccountStatus.PENDING,
        "status_reason": AWAITING_OWNERSHIP,
        "ownership_verified_at": None,
        "suspended_by_provider": False,
    }


def _require_ownership(before: Account, proof: dict[str, Any]) -> None:
    unproven = before.needs_ownership_proof or "ownership_verified_at" in proof
    if unproven:
        raise ConflictError(
            f"status: a {before.provider.value} account becomes ACTIVE only once a sync has confirmed, with its own "
            "credentials, that the provider knows this phone number (POST /api/whatsapp/accounts/{id}/sync)",
            field="status",
        )


class AccountService:
    def __init__(
        self,
        businesses: BusinessStore,
        accounts: AccountStore,
        queues: QueueStore,
        secrets: SecretStore,
        clock: Clock = utc_now,
        *,
        allow_sandbox: bool,
        provisioner: QueueProvisioner | None = None,
        metrics: MetricsSink | None = None,
        templates: TemplateStore | None = None,
        on_change: Callable[[Account, Account], object] | None = None,
    ) -> None:
        self._businesses = businesses
        self._accounts = accounts
        self._queues = queues
        self._secrets = secrets
        self._clock = clock
        # Settings.allow_sandbox_accounts: true on the local stack only.
        self._allow_sandbox = allow_sandbox
        # Creates each account's delivery queues; None only where delivery is not wired (unit tests of hierarchy).
        self._provisioner = provisioner
        self._metrics = metrics
        # The accounts' synced templates, removed with their account.
        self._templates = templates
        # Told of every update (account health protects the queues of an account that can no longer send).
        self._on_change = on_change

    def list(self, business_id: str, limit: int, next_token: str | None) -> Page[Account]:
        business = self._business(business_id)
        return self._accounts.list(business, limit, next_token)

    def get(self, business_id: str, account_id: str) -> Account:
        return self._account(self._business(business_id), account_id)

    def create(self, business_id: str, draft: AccountDraft) -> Account:
        if draft.provider is Provider.SANDBOX and not self._allow_sandbox:
            raise InvalidInputError(
                "provider: sandbox accounts exist only on the local stack; use twilio or meta", field="provider"
            )
        credentials = parse_credentials(draft.provider, draft.credentials)
        account_id = new_id("acc")
        needs_proof = draft.provider is not Provider.SANDBOX
        secret_name = self._secrets.name_for_account(business_id, account_id)
        secret_written = False
        try:
            for _ in range(MAX_ATTEMPTS):
                business = self._business(business_id)
                now = self._clock()
                account = Account(
                    id=account_id,
                    business_id=business_id,
                    display_name=draft.display_name,
                    phone_number=draft.phone_number,
                    provider=draft.provider,
                    # A Twilio or Meta number is the tenant's claim until a sync proves it (decision 29): PENDING
                    # whatever was asked; the first sync that confirms it makes it ACTIVE.
                    status=AccountStatus.PENDING if needs_proof else draft.status,
                    status_reason=AWAITING_OWNERSHIP if needs_proof else None,
                    # The first account of a business becomes its primary, whatever was asked.
                    is_primary=draft.is_primary or business.primary_account_id is None,
                    is_default=draft.is_default,
                    limits=draft.limits,
                    verification_status=draft.verification_status,
                    quality_rating=draft.quality_rating,
                    messaging_tier=draft.messaging_tier,
                    credentials=_summary(credentials),
                    provider_number_id=_provider_number_id(draft.provider, credentials, account_id),
                    waba_id=_waba_id(draft.provider, credentials, account_id),
                    created_at=now,
                    updated_at=now,
                )
                if credentials is not None and not secret_written:
                    self._secrets.put(secret_name, credentials.model_dump(), self._tags(account))
                    secret_written = True
                try:
                    self._accounts.create(account, business)
                except ConcurrentModificationError:
                    continue
                except ConflictError as conflict:
                    resumed = self._resume_interrupted_create(business, draft, conflict)
                    if secret_written:
                        self._secrets.delete(secret_name)
                    return resumed
                secret_written = False  # the account owns it now
                return self._provision(account)
            raise ConcurrentModificationError("too many concurrent changes to this business's accounts; retry")
        except BaseException:
            if secret_written:
                self._secrets.delete(secret_name)
            raise

    def _resume_interrupted_create(self, business: Business, draft: AccountDraft, conflict: ConflictError) -> Account:
        """A create retried after a crash finds its own account half-provisioned and completes it."""
        if self._provisioner is None:
            raise conflict
        owner = self._accounts.owner_of_phone(draft.phone_number)
        if owner is None or owner[0] != business.id:
            raise conflict
        existing = self._accounts.get(business, owner[1])
        # Only the same request again: same number, provider and name, and its provisioning never finished.
        if (
            existing is None
            or existing.delivery_ready
            or existing.provider != draft.provider
            or existing.display_name != draft.display_name
        ):
            raise conflict
        return self._provision(existing)

    def _provision(self, account: Account) -> Account:
        """Create (or converge) the account's delivery queues, then mark it ready. Idempotent."""
        if self._provisioner is None:
            return account
        self._provisioner.provision(account)
        if not account.delivery_ready:
            self._accounts.mark_delivery_ready(account)
        return account.model_copy(update={"delivery_ready": True})

    def update(self, business_id: str, account_id: str, patch: AccountPatch) -> Account:
        # Values as they are (not dumped): model_copy does not validate, a dict in place of AccountLimits would warn.
        changes = {name: getattr(patch, name) for name in patch.model_fields_set - {"credentials"}}
        secret_written = False
        for _ in range(MAX_ATTEMPTS):
            business = self._business(business_id)
            before = self._account(business, account_id)
            if before.is_primary and changes.get("is_primary") is False:
                raise ConflictError(
                    "isPrimary: a business always has a primary account; make another account primary instead",
                    field="isPrimary",
                )
            summary = before.credentials
            proof = dict(_ownership_reset(before, patch))
            if "status" in changes:
                # The tenant's own choice: no reason of the provider's stands behind it any more.
                proof.setdefault("status_reason", None)
                proof.setdefault("suspended_by_provider", False)
                if changes["status"] == AccountStatus.ACTIVE and before.status != AccountStatus.ACTIVE:
                    _require_ownership(before, proof)
            if "credentials" in patch.model_fields_set:
                credentials = parse_credentials(before.provider, patch.credentials)
                summary = _summary(credentials)
                changes["provider_number_id"] = _provider_number_id(before.provider, credentials, account_id)
                changes["waba_id"] = _waba_id(before.provider, credentials, account_id)
                if credentials is not None and not secret_written:
                    name = self._secrets.name_for_account(business_id, account_id)
                    self._secrets.put(name, credentials.model_dump(), self._tags(before))
                    secret_written = True
            after = before.model_copy(
                update={
                    **changes,
                    **proof,
                    "credentials": summary,
                    "updated_at": later_than(before.updated_at, self._clock()),
                }
            )
            after = Account.model_validate(after.model_dump())
            try:
                self._accounts.update(before, after, business)
            except ConcurrentModificationError:
                continue
            count_quality_change(self._metrics, before, after)
            if self._on_change is not None:
                self._on_change(before, after)
            # Limits and status shape the sender mapping (concurrency, enabled); a half-provisioned account heals.
            if not after.delivery_ready or after.limits != before.limits or after.status != before.status:
                return self._provision(after)
            return after
        raise ConcurrentModificationError("too many concurrent changes to this account; retry")

    def delete(self, business_id: str, account_id: str) -> None:
        for _ in range(MAX_ATTEMPTS):
            business, account_count = self._businesses.get_with_account_count(business_id)
            account = self._account(business, account_id)
            if account.is_primary and account_count > 1:
                raise ConflictError(
                    "the primary account cannot be deleted while the business has other accounts; "
                    "make another account primary first",
                    field="isPrimary",
                )
            if self._queues.holds_account(business_id, account_id):
                raise ConflictError(
                    "the account is used by a queue that is SCHEDULED, PROCESSING or PAUSED; "
                    "cancel or finish those queues first",
                    field="accountId",
                )
            try:
                self._accounts.delete(account, business, account_count)
            except ConcurrentModificationError:
                continue
            if self._provisioner is not None:
                self._provisioner.teardown(account)
            if account.provider != Provider.SANDBOX:
                self._secrets.delete(self._secrets.name_for_account(business_id, account_id))
            if self._templates is not None:
                self._templates.delete_all(business_id, account_id)
            return
        raise ConcurrentModificationError("too many concurrent changes to this business's accounts; retry")

    def _business(self, business_id: str) -> Business:
        business = self._businesses.get(business_id)
        if business is None:
            raise NotFoundError("business not found")
        return business

    def _account(self, business: Business, account_id: str) -> Account:
        account = self._accounts.get(business, account_id)
        if account is None:
            raise NotFoundError("account not found")
        return account

    @staticmethod
    def _tags(account: Account) -> dict[str, str]:
        return {"wabacast:business": account.business_id, "wabacast:account": account.id}
