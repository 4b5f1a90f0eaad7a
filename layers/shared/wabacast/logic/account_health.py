"""Account health (decision 29): what a sync of the provider, or one of Meta's account webhooks, changes.

- Proof of ownership: a Twilio or Meta account is created PENDING ("awaiting ownership check") and becomes ACTIVE
  only when a sync, made with the account's own credentials, reads the provider saying that its number id is this
  phone number. A mismatch or refused credentials leave it PENDING with the reason. Sandbox accounts need no proof.
- Standing: quality rating, messaging tier, throughput and the provider's phone number status. A ban, restriction
  or disconnection suspends the account (`suspended_by_provider`), and a later sync that finds it reinstated lifts
  that; FLAGGED stops sending (Account.can_send) until UNFLAGGED.
- Templates: stored per account (one item per name and language), replaced on each sync.
- Protection: when an account stops being able to send (RED, FLAGGED, suspended, ownership lost) each of its
  PROCESSING queues is paused with the reason, unless the planner's fallback to the business's default account
  applies (that account can send and its copy of the queue's template is not known to be unusable): then it is
  left PROCESSING and counted (QueuesFallingBack). A template turning PAUSED or DISABLED pauses the account's
  PROCESSING queues that send it: the planner routes whole accounts, not single queues, so it has no fallback.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from wabacast.clock import Clock, utc_now
from wabacast.domain.health import (
    TEMPLATE_STATUSES_STOPPING,
    AccountReadError,
    AccountSnapshot,
    AccountTemplate,
    AccountUpdate,
    QualityUpdate,
    SyncReport,
    TemplateStatus,
    TemplateStatusUpdate,
)
from wabacast.domain.models import (
    Account,
    AccountStatus,
    Business,
    Page,
    Provider,
    QualityRating,
    Queue,
    QueueStatus,
)
from wabacast.domain.webhooks import WebhookAccount
from wabacast.errors import ConcurrentModificationError, NotFoundError
from wabacast.logic.accounts import AWAITING_OWNERSHIP, MAX_ATTEMPTS, count_quality_change, later_than
from wabacast.logic.ports import AccountReaders, AccountStore, BusinessStore, MetricsSink, QueueStore, TemplateStore

LOGGER = logging.getLogger(__name__)

# Meta phone number statuses (and Twilio sender statuses) under which nothing may be sent: the account is suspended
# until a sync reads another status.
SUSPENDING_PROVIDER_STATUSES = frozenset({"BANNED", "RESTRICTED", "DISCONNECTED", "DELETED", "MIGRATED", "OFFLINE"})
FLAGGED = "FLAGGED"
# Meta account_update events that stop the WABA's numbers, and the ban states of DISABLED_UPDATE.
_SUSPENDING_ACCOUNT_EVENTS = frozenset({"ACCOUNT_DELETED", "ACCOUNT_BANNED", "ACCOUNT_RESTRICTION"})
_DISABLE_BAN_STATES = frozenset({"DISABLE"})
_REINSTATE_BAN_STATES = frozenset({"REINSTATE"})
_PAGE = 100
REASON_LIMIT = 500


class HealthQueuePauser(Protocol):
    """The queue lifecycle's status move (wabacast.adapters.dynamodb.lifecycle), the one the API's pause uses."""

    def transition(
        self,
        queue: Queue,
        *,
        allowed_from: Sequence[QueueStatus],
        to: QueueStatus,
        now: datetime,
        reason: str | None = None,
        register: bool | None = None,
        paused_from: QueueStatus | None = None,
    ) -> bool: ...


class WabaDirectory(Protocol):
    def accounts_of_waba(self, waba_id: str) -> list[WebhookAccount]: ...


class SecretNames(Protocol):
    def name_for_account(self, business_id: str, account_id: str) -> str: ...


class LogSink(Protocol):
    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...


@dataclass(frozen=True)
class _Stop:
    """Why queues must stop: the account can no longer send, or one template (name, language) became unusable."""

    reason: str
    template: tuple[str, str] | None = None


def digits(phone_number: str | None) -> str:
    """ "+1 555-078-3881", "15550783881", "whatsapp:+15550783881" -> "15550783881"."""
    return re.sub(r"\D", "", phone_number or "")


class AccountHealthService:
    def __init__(
        self,
        *,
        businesses: BusinessStore,
        accounts: AccountStore,
        queues: QueueStore,
        templates: TemplateStore,
        readers: AccountReaders,
        secrets: SecretNames,
        pauser: HealthQueuePauser,
        metrics: MetricsSink,
        wabas: WabaDirectory | None = None,
        clock: Clock = utc_now,
        wall_time: Callable[[], float] = time.time,
        logger: LogSink = LOGGER,
    ) -> None:
        self._businesses = businesses
        self._accounts = accounts
        self._queues = queues
        self._templates = templates
        self._readers = readers
        self._secrets = secrets
        self._pauser = pauser
        self._metrics = metrics
        self._wabas = wabas
        self._clock = clock
        self._wall_time = wall_time
        self._log = logger

    # Reading -------------------------------------------------------------------------------------------------
    def templates(self, business_id: str, account_id: str, limit: int, next_token: str | None) -> Page[AccountTemplate]:
        business = self._business(business_id)
        self._account(business, account_id)
        return self._templates.list(business_id, account_id, limit, next_token)

    def template_of(self, business_id: str, account_id: str, name: str, language: str) -> AccountTemplate | None:
        """The synced template a queue names, None when no sync or webhook reported it."""
        return self._templates.get(business_id, account_id, name, language)

    # Syncing -------------------------------------------------------------------------------------------------
    def sync(self, business_id: str, account_id: str) -> Account:
        """On demand (POST /api/whatsapp/accounts/{id}/sync): read the provider now. A provider that cannot be
        read is not an error of the request: the account records it (syncError, and statusReason while its
        ownership is unproven)."""
        business = self._business(business_id)
        return self._sync(business, self._account(business, account_id), SyncReport())

    def sync_all(self, *, deadline: float | None) -> SyncReport:
        """Every account of every business (the periodic sync), least recently synced first, so a pass cut short
        leaves the accounts it reached for the next pass's end. `deadline`: wall time (epoch seconds, `time.time()`);
        no account is started after it, so the pass ends cleanly before the invocation does (`stopped_early`)."""
        report = SyncReport()
        everyone = [
            (business, account) for business in self._all_businesses() for account in self._all_accounts(business)
        ]
        # Listing is cheap (one Query per business); reading a provider is what takes time.
        everyone.sort(
            key=lambda pair: (pair[1].last_synced_at is not None, pair[1].last_synced_at or pair[1].created_at)
        )
        for business, account in everyone:
            if deadline is not None and self._wall_time() >= deadline:
                report.stopped_early = True
                return report
            try:
                self._sync(business, account, report)
            except (NotFoundError, ConcurrentModificationError) as error:
                # Deleted meanwhile, or kept changing: the next pass sees it as it is then.
                report.accounts_failed += 1
                report.errors[account.id] = error.code
        return report

    def _sync(self, business: Business, account: Account, report: SyncReport) -> Account:
        reader = self._readers.for_account(account, self._secrets.name_for_account(business.id, account.id))
        try:
            snapshot = reader.read(include_templates=True)
        except AccountReadError as read_error:
            error = read_error
            report.accounts_failed += 1
            report.errors[account.id] = error.code
            self._log.warning(
                "account sync failed",
                extra={"business_id": business.id, "account_id": account.id, "code": error.code},
            )
            now = self._clock()
            before, after = self._change(business, account.id, lambda current: _after_failed_read(current, error, now))
            self._protect_if_stopped(business, before, after, report)
            return after
        now = self._clock()
        before, after = self._change(business, account.id, lambda current: _after_snapshot(current, snapshot, now))
        report.accounts_synced += 1
        if before.ownership_verified_at is None and after.ownership_verified_at is not None:
            report.accounts_verified += 1
            self._metrics.add("AccountsVerified", 1, account_id=account.id)
            self._log.info("account ownership verified", extra={"business_id": business.id, "account_id": account.id})
        stopped: list[AccountTemplate] = []
        if snapshot.templates is not None:
            stopped = self._store_templates(business.id, after, snapshot, now)
        self._protect_if_stopped(business, before, after, report)
        for template in stopped:
            self._protect(business, after, _template_stop(template), report)
        return after

    def _store_templates(
        self, business_id: str, account: Account, snapshot: AccountSnapshot, now: datetime
    ) -> list[AccountTemplate]:
        """Replace the stored templates with the snapshot's; returns those that became PAUSED or DISABLED."""
        assert snapshot.templates is not None
        stored = {template.key: template for template in self._templates.all(business_id, account.id)}
        read: dict[tuple[str, str], AccountTemplate] = {}
        for provided in snapshot.templates:
            template = AccountTemplate.of(account.id, provided, now)
            read[template.key] = template
        changed = [t for key, t in read.items() if key not in stored or not stored[key].same_content(t)]
        vanished = [t for key, t in stored.items() if key not in read]
        if changed or vanished:
            self._templates.replace(business_id, changed, vanished)
        return [t for t in changed if _newly_stopping(stored.get(t.key), t.status)]

    # Meta's account webhooks ---------------------------------------------------------------------------------
    def apply_quality(self, update: QualityUpdate, *, among: Sequence[WebhookAccount] | None = None) -> int:
        """`phone_number_quality_update`: FLAGGED / UNFLAGGED and the new messaging tier of the number it names.
        `among`: the WABA's accounts whose signature was verified (None: every account of the WABA). Returns how
        many accounts changed."""

        def decide(current: Account) -> Account | None:
            if _stale(current, update.occurred_at):
                return None
            changes: dict[str, Any] = {}
            event = update.event.upper()
            if event == FLAGGED:
                changes["flagged"] = True
            elif event == "UNFLAGGED":
                changes["flagged"] = False
            if update.messaging_tier is not None:
                changes["messaging_tier"] = update.messaging_tier
            return current.model_copy(update=changes) if changes else None

        changed = 0
        for business, account in self._webhook_targets(update.waba_id, update.display_phone_number, among):
            changed += self._apply(business, account, decide, event=f"quality {update.event}")
        return changed

    def apply_account_update(self, update: AccountUpdate, *, among: Sequence[WebhookAccount] | None = None) -> int:
        """`account_update`: a ban, restriction or deletion suspends the WABA's numbers (or the one it names); a
        reinstatement lifts a suspension the provider caused. Other events change nothing (they are counted)."""
        event = update.event.upper()
        ban_state = (update.ban_state or "").upper()
        suspend = event in _SUSPENDING_ACCOUNT_EVENTS or (
            event == "DISABLED_UPDATE" and ban_state in _DISABLE_BAN_STATES
        )
        reinstate = event == "DISABLED_UPDATE" and ban_state in _REINSTATE_BAN_STATES
        if not suspend and not reinstate:
            return 0
        detail = f"{event} {ban_state}".strip()

        def decide(current: Account) -> Account | None:
            if suspend:
                return _suspended(current, f"Meta account_update: {detail}")
            return _reinstated(current)

        changed = 0
        for business, account in self._webhook_targets(update.waba_id, update.phone_number, among):
            changed += self._apply(business, account, decide, event=f"account_update {detail}")
        return changed

    def apply_template_status(
        self, update: TemplateStatusUpdate, *, among: Sequence[WebhookAccount] | None = None
    ) -> int:
        """`message_template_status_update`: the template's new review state for every account of the WABA; a
        PAUSED or DISABLED one pauses the queues sending it. Returns how many accounts' templates changed."""
        now = self._clock()
        changed = 0
        for business, account in self._webhook_targets(update.waba_id, None, among):
            before = self._templates.get(business.id, account.id, update.name, update.language)
            if before is not None and (before.status, before.reason) == (update.status, update.reason):
                continue  # Meta repeats notifications: nothing new, nothing written
            recorded = AccountTemplate(
                account_id=account.id,
                name=update.name,
                language=update.language,
                status=update.status,
                category=before.category if before else None,
                updated_at=update.occurred_at or now,
                provider_template_id=update.provider_template_id,
                reason=update.reason,
            )
            if not self._templates.record_status(business.id, recorded):
                continue
            changed += 1
            self._metrics.add("TemplateStatusChanges", 1, account_id=account.id, status=update.status.value)
            if _newly_stopping(before, update.status):
                self._protect(business, account, _template_stop(recorded), SyncReport())
        return changed

    def _webhook_targets(
        self, waba_id: str, phone_number: str | None, among: Sequence[WebhookAccount] | None
    ) -> Iterator[tuple[Business, Account]]:
        """The WABA's accounts an event is about: proven owners only (an unproven account's WABA id is only the
        tenant's claim), and the number it names when it names one."""
        candidates = among if among is not None else (self._wabas.accounts_of_waba(waba_id) if self._wabas else [])
        for entry in candidates:
            business = self._businesses.get(entry.business_id)
            account = self._accounts.get(business, entry.account_id) if business else None
            if business is None or account is None or account.waba_id != waba_id or account.needs_ownership_proof:
                continue
            if phone_number is not None and digits(phone_number) != digits(account.phone_number):
                continue
            yield business, account

    def _apply(
        self, business: Business, account: Account, decide: Callable[[Account], Account | None], *, event: str
    ) -> int:
        def decided(current: Account) -> Account:
            after = decide(current)
            if after is None or after == current:
                raise _NothingToChangeError  # a repeated or stale event writes nothing
            return after

        try:
            before, after = self._change(business, account.id, decided)
        except _NothingToChangeError:
            return 0
        self._log.info(
            "account health event applied",
            extra={"business_id": business.id, "account_id": account.id, "event": event},
        )
        self._protect_if_stopped(business, before, after, SyncReport())
        return 1

    # Protection ----------------------------------------------------------------------------------------------
    def account_changed(self, before: Account, after: Account) -> SyncReport:
        """A change written elsewhere (the tenant's PUT setting RED or SUSPENDED): protect its queues the same way."""
        report = SyncReport()
        if before.can_send and not after.can_send:
            self._protect(self._business(after.business_id), after, _Stop(reason=_why_stopped(after)), report)
        return report

    def _protect_if_stopped(self, business: Business, before: Account, after: Account, report: SyncReport) -> None:
        if before.can_send and not after.can_send:
            self._protect(business, after, _Stop(reason=_why_stopped(after)), report)

    def _protect(self, business: Business, account: Account, stop: _Stop, report: SyncReport) -> None:
        """Each PROCESSING queue of the account that the stop concerns: paused with the reason, or left to the
        planner's fallback to the default account where that account may carry it."""
        fallback = self._fallback_account(business, account) if stop.template is None else None
        for queue in self._processing_queues(business.id, account.id):
            template = (queue.template.name, queue.template.language)
            if stop.template is not None and template != stop.template:
                continue
            ids = {"business_id": business.id, "queue_id": queue.id, "account_id": account.id}
            if fallback is not None and self._template_usable(business.id, fallback.id, queue):
                report.queues_falling_back += 1
                self._metrics.add("QueuesFallingBack", 1, account_id=account.id)
                self._log.warning(
                    "queue falls back to the default account", extra={**ids, "fallback_account_id": fallback.id}
                )
                continue
            reason = f"paused by account health: {stop.reason}"[:REASON_LIMIT]
            if self._pauser.transition(
                queue,
                allowed_from=(QueueStatus.PROCESSING,),
                to=QueueStatus.PAUSED,
                now=self._clock(),
                reason=reason,
                register=False,
                paused_from=QueueStatus.PROCESSING,
            ):
                report.queues_paused += 1
                self._metrics.add("QueuesPausedByHealth", 1, account_id=account.id)
                self._log.warning("queue paused by account health", extra={**ids, "reason": reason})

    def _fallback_account(self, business: Business, account: Account) -> Account | None:
        """The planner's rule (logic.planner `_sending_account`): the business's default account, when it is
        another account and can send."""
        if not business.default_account_id or business.default_account_id == account.id:
            return None
        fallback = self._accounts.get(business, business.default_account_id)
        return fallback if fallback is not None and fallback.can_send else None

    def _template_usable(self, business_id: str, account_id: str, queue: Queue) -> bool:
        known = self._templates.get(business_id, account_id, queue.template.name, queue.template.language)
        return known is None or known.usable

    def _processing_queues(self, business_id: str, account_id: str) -> Iterator[Queue]:
        token: str | None = None
        while True:
            page = self._queues.list(
                business_id, status=QueueStatus.PROCESSING, account_id=account_id, limit=_PAGE, next_token=token
            )
            yield from page.items
            token = page.next_token
            if token is None:
                return

    # Helpers -------------------------------------------------------------------------------------------------
    def _change(
        self, business: Business, account_id: str, decide: Callable[[Account], Account]
    ) -> tuple[Account, Account]:
        """Read, decide, write with the optimistic lock (updated_at), again from a fresh read when it moved (the
        business too: the write also checks its primary/default pointers)."""
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                business = self._business(business.id)
            before = self._account(business, account_id)
            after = decide(before)
            after = Account.model_validate(
                after.model_copy(update={"updated_at": later_than(before.updated_at, self._clock())}).model_dump()
            )
            try:
                self._accounts.update(before, after, business)
            except ConcurrentModificationError:
                continue
            count_quality_change(self._metrics, before, after)
            return before, after
        raise ConcurrentModificationError("too many concurrent changes to this account; retry")

    def _all_businesses(self) -> Iterator[Business]:
        token: str | None = None
        while True:
            page = self._businesses.list(_PAGE, token)
            yield from page.items
            token = page.next_token
            if token is None:
                return

    def _all_accounts(self, business: Business) -> Iterator[Account]:
        token: str | None = None
        while True:
            page = self._accounts.list(business, _PAGE, token)
            yield from page.items
            token = page.next_token
            if token is None:
                return

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


class _NothingToChangeError(Exception):
    """An event that changes nothing for this account: nothing is written."""


# Pure decisions ------------------------------------------------------------------------------------------------
def _after_snapshot(current: Account, snapshot: AccountSnapshot, now: datetime) -> Account:
    phone = snapshot.phone
    changes: dict[str, Any] = {
        "last_synced_at": now,
        "sync_error": None,
        "provider_status": phone.provider_status,
        "throughput": phone.throughput,
    }
    if phone.quality_rating != QualityRating.UNKNOWN:
        changes["quality_rating"] = phone.quality_rating
    if phone.messaging_tier is not None:
        changes["messaging_tier"] = phone.messaging_tier
    if current.provider != Provider.SANDBOX:
        read = digits(phone.display_phone_number)
        if read != digits(current.phone_number):
            said = f"+{read}" if read else "no number"
            return current.model_copy(
                update={
                    **changes,
                    "status": AccountStatus.PENDING,
                    "status_reason": f"ownership check failed: {current.provider.value} says this account's number "
                    f"is {said}, not {current.phone_number}",
                    "ownership_verified_at": None,
                    "suspended_by_provider": False,
                }
            )
        if current.ownership_verified_at is None:
            changes["ownership_verified_at"] = now
            if current.status == AccountStatus.PENDING:
                changes["status"] = AccountStatus.ACTIVE
                changes["status_reason"] = None
    provider_status = (phone.provider_status or "").upper()
    changes["flagged"] = provider_status == FLAGGED
    after = current.model_copy(update=changes)
    if provider_status in SUSPENDING_PROVIDER_STATUSES:
        return _suspended(after, f"{current.provider.value} reports the number {provider_status}")
    return _reinstated(after)


def _after_failed_read(current: Account, error: AccountReadError, now: datetime) -> Account:
    changes: dict[str, Any] = {"sync_error": f"{error.code}: {error.message}"[:REASON_LIMIT]}
    if current.needs_ownership_proof:
        if error.credentials_refused:
            reason = (
                f"ownership check failed: {current.provider.value} refused the account's credentials ({error.code})"
            )
        else:
            reason = f"{AWAITING_OWNERSHIP}: the provider could not be read ({error.code})"
        changes.update(status=AccountStatus.PENDING, status_reason=reason[:REASON_LIMIT])
    return current.model_copy(update=changes)


def _suspended(account: Account, reason: str) -> Account:
    if account.status == AccountStatus.PENDING:
        return account  # not sending anyway; the ownership check decides first
    return account.model_copy(
        update={"status": AccountStatus.SUSPENDED, "suspended_by_provider": True, "status_reason": reason}
    )


def _reinstated(account: Account) -> Account:
    """Lift a suspension the provider caused (never one the tenant chose)."""
    if not account.suspended_by_provider:
        return account
    return account.model_copy(
        update={"status": AccountStatus.ACTIVE, "suspended_by_provider": False, "status_reason": None}
    )


def _stale(account: Account, occurred_at: datetime | None) -> bool:
    """An event older than the last sync, which read the state after it."""
    return occurred_at is not None and account.last_synced_at is not None and occurred_at < account.last_synced_at


def _newly_stopping(before: AccountTemplate | None, status: TemplateStatus) -> bool:
    return status in TEMPLATE_STATUSES_STOPPING and (before is None or before.status not in TEMPLATE_STATUSES_STOPPING)


def _template_stop(template: AccountTemplate) -> _Stop:
    return _Stop(
        reason=f"template {template.name} ({template.language}) is {template.status.value}",
        template=template.key,
    )


def _why_stopped(account: Account) -> str:
    """Worded as the planner's own pause (logic.planner), which reaches the same queues at its next tick."""
    if account.status != AccountStatus.ACTIVE:
        detail = account.status.value + (f": {account.status_reason}" if account.status_reason else "")
    elif account.flagged:
        detail = "number FLAGGED by Meta"
    else:
        detail = f"quality rating {account.quality_rating.value}"
    return f"account {account.id} cannot send ({detail}) and the business has no healthy default account"
