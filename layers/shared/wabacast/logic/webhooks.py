"""Inbound provider webhooks: the Meta subscription handshake, then signed status receipts applied to jobs.

Nothing is read from a payload before its signature is checked, except what finds the key to check it with (the
phone number ids of a Meta payload). A request that cannot be verified changes nothing (InvalidSignatureError:
403). A verified receipt is answered 200 whatever it is about: a message wabacast does not know is counted
(WebhookUnknownMessages), never an error, because the providers retry errors for days.

Cost per receipt (decision 26): the job is found from the reference the send gave the provider, with one
consistent read (no lookup item, no index); a receipt that changes nothing writes nothing; one that does writes
the job and one counter shard in one transaction (wabacast.adapters.dynamodb.jobs settle). The receipts of one
notification that change different jobs of a queue share that transaction and its one counter-shard write.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from pydantic import ValidationError

from wabacast.clock import Clock, utc_now
from wabacast.domain.health import AccountUpdate, QualityUpdate, TemplateStatusUpdate
from wabacast.domain.jobs import ErrorClass, Job, JobMove, JobStatus
from wabacast.domain.models import MetaCredentials, Provider, Queue, QueueStatus, TwilioCredentials
from wabacast.domain.receipts import Receipt, ReceiptStatus, apply_receipt, parse_job_reference
from wabacast.domain.webhooks import (
    META_ROUTE,
    TWILIO_ROUTE,
    InboundMessage,
    StackWebhookSecrets,
    WebhookAccount,
)
from wabacast.errors import InvalidInputError, InvalidSignatureError
from wabacast.logic.fates import FailureFates, OptOutWriter, QueuePauser, deferral
from wabacast.logic.ports import MetricsSink
from wabacast.logic.replies import ReplyKeywordHandler
from wabacast.logic.scheduling import ScheduleKeeper
from wabacast.pricing import MICROS_PER_UNIT, PriceTable, default_price_table
from wabacast.providers.webhooks import (
    MetaAccountEvent,
    MetaNotification,
    TwilioCallback,
    meta_account_event,
    meta_inbound_text,
    meta_inbound_time,
    meta_receipt,
    meta_signature_valid,
    twilio_receipt,
    twilio_signature_valid,
    whatsapp_number,
)

# A receipt whose job changed between its read and its write is read again and decided again, this many times.
MAX_RECEIPT_ATTEMPTS = 5
# A late "not now" (RETRY_LATER) re-feeds the job only while the planner still feeds its queue (now, or on resume);
# a queue that completed, was cancelled or is gone cannot send it again, so the job fails with the error instead.
DEFERRABLE_QUEUE_STATUSES = frozenset({QueueStatus.PROCESSING, QueueStatus.PAUSED})


class WebhookDirectory(Protocol):
    def webhook_account(self, route: str, key: str) -> WebhookAccount | None:
        """One GetItem: the account registered under (route, key), e.g. ("meta", phone number id)."""
        ...


class WabaDirectory(Protocol):
    def accounts_of_waba(self, waba_id: str) -> list[WebhookAccount]:
        """One Query: every account registered with this WABA id."""
        ...


class AccountHealth(Protocol):
    """wabacast.logic.account_health.AccountHealthService, as the webhooks use it."""

    def apply_quality(self, update: QualityUpdate, *, among: Sequence[WebhookAccount] | None = None) -> int: ...
    def apply_template_status(
        self, update: TemplateStatusUpdate, *, among: Sequence[WebhookAccount] | None = None
    ) -> int: ...
    def apply_account_update(self, update: AccountUpdate, *, among: Sequence[WebhookAccount] | None = None) -> int: ...


class WebhookSecrets(Protocol):
    def stack(self) -> StackWebhookSecrets: ...
    def account_credentials(self, business_id: str, account_id: str) -> dict[str, Any]: ...


class ReceiptJobs(Protocol):
    def get_jobs(self, refs: Iterable[tuple[str, str]]) -> dict[str, Job]:
        """Strongly consistent: a receipt decides from the job as it stands."""
        ...

    def settle(self, moves: Sequence[JobMove]) -> list[JobMove]: ...


class InboundStore(Protocol):
    def record(self, messages: Sequence[InboundMessage]) -> None: ...


class QueueReader(QueuePauser, Protocol):
    def read_queue(self, business_id: str, queue_id: str) -> Queue | None: ...


@dataclass
class WebhookResult:
    """What one request came to, for the logs and the tests."""

    applied: int = 0
    unchanged: int = 0
    unknown: int = 0
    ignored: int = 0
    inbound: int = 0
    events: int = 0
    # Accounts (or their templates) an account event changed.
    health_changes: int = 0
    moves: list[JobMove] = field(default_factory=list)


class WebhookService:
    def __init__(
        self,
        *,
        directory: WebhookDirectory,
        secrets: WebhookSecrets,
        jobs: ReceiptJobs,
        lifecycle: QueueReader,
        contacts: OptOutWriter,
        inbound: InboundStore,
        replies: ReplyKeywordHandler,
        metrics: MetricsSink,
        clock: Clock = utc_now,
        prices: PriceTable | None = None,
        schedules: ScheduleKeeper | None = None,
        wabas: WabaDirectory | None = None,
        health: AccountHealth | None = None,
    ) -> None:
        self._directory = directory
        # Meta's account fields name the WABA: its accounts (lookup items) and what acts on the events.
        self._wabas = wabas
        self._health = health
        self._secrets = secrets
        self._jobs = jobs
        self._lifecycle = lifecycle
        self._contacts = contacts
        self._fates = FailureFates(contacts=contacts, lifecycle=lifecycle, clock=clock, schedules=schedules)
        self._inbound = inbound
        self._replies = replies
        self._metrics = metrics
        self._clock = clock
        self._prices = prices or default_price_table()

    # Meta ------------------------------------------------------------------------------------------------------
    def meta_challenge(self, mode: str | None, verify_token: str | None, challenge: str | None) -> str:
        """The subscription handshake: the challenge back when mode and token are right."""
        expected = self._secrets.stack().meta_verify_token
        if (
            mode != "subscribe"
            or not verify_token
            or not expected
            or not hmac.compare_digest(verify_token.encode(), expected.encode())
        ):
            raise InvalidSignatureError("hub.mode must be 'subscribe' and hub.verify_token the stack's verify token")
        if not challenge:
            raise InvalidInputError("hub.challenge: is required", field="hub.challenge")
        return challenge

    def receive_meta(self, raw_body: bytes, signature: str | None) -> WebhookResult:
        started = time.perf_counter()
        try:
            return self._receive_meta(raw_body, signature)
        finally:
            self._latency(META_ROUTE, started)

    def _receive_meta(self, raw_body: bytes, signature: str | None) -> WebhookResult:
        stack_secret = self._secrets.stack().meta_app_secret
        if stack_secret and not meta_signature_valid(raw_body, signature, stack_secret):
            self._refused(META_ROUTE)
        notification = self._parse_meta(raw_body)
        accounts: dict[str, WebhookAccount | None] = {}
        for number_id in sorted(notification.phone_number_ids()):
            account = self._directory.webhook_account(META_ROUTE, number_id)
            if not stack_secret and (account is None or not self._meta_secret_valid(account, raw_body, signature)):
                # Only the account's own app secret can vouch for its payload.
                self._refused(META_ROUTE)
            accounts[number_id] = account
        waba_accounts: dict[str, list[WebhookAccount]] = {}
        for waba_id in sorted(notification.account_event_waba_ids()):
            registered = self._wabas.accounts_of_waba(waba_id) if self._wabas is not None else []
            if stack_secret:
                waba_accounts[waba_id] = registered
                continue
            # Without the stack's secret, the event acts only for the accounts whose own app secret signed it.
            vouched = [account for account in registered if self._meta_secret_valid(account, raw_body, signature)]
            if not vouched:
                self._refused(META_ROUTE)
            waba_accounts[waba_id] = vouched
        if not accounts and not waba_accounts and not stack_secret:
            self._refused(META_ROUTE)

        result = WebhookResult()
        received_at = self._clock()
        for entry in notification.entry:
            for change in entry.changes:
                value = change.value
                account = accounts.get(value.metadata.phone_number_id) if value.metadata else None
                if change.field != "messages":
                    # account_update, phone_number_quality_update, message_template_status_update: counted, and
                    # acted on by account health (decision 29); other fields are only counted.
                    result.events += 1
                    self._metrics.add("WebhookAccountEvents", 1, account_id=None, field=change.field[:64])
                    event = meta_account_event(entry, change)
                    if event is not None and self._health is not None:
                        result.health_changes += self._act(event, waba_accounts.get(entry.id, []))
                    continue
                if value.messages and account is not None:
                    # Stop/start keywords act on the opt-outs; every message is kept for the account (30 days).
                    result.inbound += len(value.messages)
                    self._receive_inbound(
                        [
                            InboundMessage(
                                business_id=account.business_id,
                                account_id=account.account_id,
                                provider_message_id=message.id,
                                from_number=whatsapp_number(message.from_),
                                kind=message.type or "unknown",
                                text=meta_inbound_text(message),
                                received_at=meta_inbound_time(message, received_at),
                            )
                            for message in value.messages
                        ]
                    )
                    self._metrics.add("InboundMessages", len(value.messages), account_id=account.account_id)
                receipts = []
                for status in value.statuses:
                    receipt = meta_receipt(status, received_at)
                    if receipt is None:
                        result.ignored += 1
                        continue
                    receipts.append((status.biz_opaque_callback_data, receipt))
                self._record(account, receipts, result)
        return result

    def _act(self, event: MetaAccountEvent, among: list[WebhookAccount]) -> int:
        assert self._health is not None
        if isinstance(event, QualityUpdate):
            return self._health.apply_quality(event, among=among)
        if isinstance(event, TemplateStatusUpdate):
            return self._health.apply_template_status(event, among=among)
        return self._health.apply_account_update(event, among=among)

    def _parse_meta(self, raw_body: bytes) -> MetaNotification:
        try:
            return MetaNotification.model_validate(json.loads(raw_body))
        except (ValueError, ValidationError):
            # json.JSONDecodeError and UnicodeDecodeError are ValueErrors: a body Meta would never sign.
            raise InvalidSignatureError("the body is not a signed WhatsApp Business notification") from None

    def _meta_secret_valid(self, account: WebhookAccount, raw_body: bytes, signature: str | None) -> bool:
        if account.provider != Provider.META:
            return False  # sandbox accounts have no app secret: their payloads need the stack's
        raw = self._secrets.account_credentials(account.business_id, account.account_id)
        try:
            app_secret = MetaCredentials.model_validate(raw).app_secret
        except ValidationError:
            return False
        return meta_signature_valid(raw_body, signature, app_secret)

    # Twilio ----------------------------------------------------------------------------------------------------
    def receive_twilio(
        self, account_id: str, url: str, params: dict[str, str], signature: str | None, reference: str | None
    ) -> WebhookResult:
        """`url`: the URL as Twilio requested it (scheme, host, path and query); `params`: the form fields."""
        started = time.perf_counter()
        try:
            return self._receive_twilio(account_id, url, params, signature, reference)
        finally:
            self._latency(TWILIO_ROUTE, started)

    def _receive_twilio(
        self, account_id: str, url: str, params: dict[str, str], signature: str | None, reference: str | None
    ) -> WebhookResult:
        account = self._directory.webhook_account(TWILIO_ROUTE, account_id)
        if account is None or account.provider != Provider.TWILIO:
            self._refused(TWILIO_ROUTE)
        raw = self._secrets.account_credentials(account.business_id, account.account_id)
        try:
            auth_token = TwilioCredentials.model_validate(raw).auth_token
        except ValidationError:
            auth_token = ""
        if not twilio_signature_valid(url, params, signature, auth_token):
            self._refused(TWILIO_ROUTE)
        callback = TwilioCallback.model_validate(params)
        result = WebhookResult()
        if callback.message_status is None and callback.body is not None:
            result.inbound += 1
            self._receive_inbound(
                [
                    InboundMessage(
                        business_id=account.business_id,
                        account_id=account.account_id,
                        provider_message_id=callback.sid or "",
                        from_number=whatsapp_number(callback.from_ or ""),
                        kind="text",
                        text=callback.body,
                        received_at=self._clock(),
                    )
                ]
            )
            self._metrics.add("InboundMessages", 1, account_id=account.account_id)
            return result
        receipt = twilio_receipt(callback, self._clock(), self._prices.currency)
        if receipt is None:
            result.ignored += 1
            return result
        self._record(account, [(reference, receipt)], result)
        return result

    def _receive_inbound(self, messages: list[InboundMessage]) -> None:
        # The opt-out is written before the message that asked for it: a failure in between is retried by the
        # provider, and both writes are idempotent.
        self._inbound.record(self._replies.act(messages))

    # Receipts --------------------------------------------------------------------------------------------------
    def _record(
        self, account: WebhookAccount | None, receipts: list[tuple[str | None, Receipt]], result: WebhookResult
    ) -> None:
        """Apply a notification's receipts. Receipts of different jobs are written together (one transaction per
        queue and 25 jobs, with one counter-shard ADD: jobs.settle); a job's second receipt in the same
        notification waits for the next round, since one transaction may not touch an item twice."""
        refs = {ref for reference, _ in receipts if (ref := parse_job_reference(reference)) is not None}
        jobs = self._jobs.get_jobs(sorted(refs)) if refs and account is not None else {}
        known: list[tuple[str, Receipt]] = []
        queues = _QueueReads(self._lifecycle)
        for reference, receipt in receipts:
            self._metrics.add("StatusesReceived", 1, account_id=account.account_id if account else None)
            ref = parse_job_reference(reference)
            job = jobs.get(ref[1]) if ref else None
            if (
                account is None
                or job is None
                or not _belongs(job, account, receipt)
                or (ref and job.queue_id != ref[0])
            ):
                result.unknown += 1
                self._metrics.add("WebhookUnknownMessages", 1, account_id=account.account_id if account else None)
                continue
            known.append((job.id, receipt))
        if account is None:
            return
        provider = account.provider.value
        while known:
            this_round: dict[str, Receipt] = {}
            later: list[tuple[str, Receipt]] = []
            for job_id, receipt in known:
                if job_id in this_round:
                    later.append((job_id, receipt))
                else:
                    this_round[job_id] = receipt
            moves: list[tuple[JobMove, Receipt]] = []
            for job_id, receipt in this_round.items():
                move = self._decide(jobs[job_id], receipt, queues)
                if move is None:
                    self._unchanged(jobs[job_id], result)
                else:
                    moves.append((move, receipt))
            written = {move.job.id for move in self._jobs.settle([move for move, _ in moves])} if moves else set()
            for move, receipt in moves:
                if move.job.id in written:
                    self._applied(move, receipt, result, queues, provider=provider)
                    jobs[move.job.id] = move.job
                else:
                    # The job changed between its read and the write: read it again and decide again, alone.
                    fresh = self._jobs.get_jobs([(move.job.queue_id, move.job.id)]).get(move.job.id)
                    moved = self._apply(fresh, receipt, result, queues, provider=provider)
                    if moved is not None:
                        jobs[moved.id] = moved
            known = later

    def _decide(self, job: Job, receipt: Receipt, queues: _QueueReads) -> JobMove | None:
        move = apply_receipt(
            job, receipt, now=self._clock(), prices=self._prices, category=self._category(job, receipt, queues)
        )
        return self._deferred_instead(move, queues) if move is not None else None

    def _unchanged(self, job: Job, result: WebhookResult) -> None:
        result.unchanged += 1
        self._metrics.add("WebhookDuplicates", 1, account_id=job.account_id)

    def _applied(
        self, move: JobMove, receipt: Receipt, result: WebhookResult, queues: _QueueReads, *, provider: str
    ) -> None:
        result.applied += 1
        result.moves.append(move)
        self._metrics.add("WebhookReceipts", 1, account_id=move.job.account_id, status=receipt.status.value)
        if move.job.cost_micros is not None and move.before.cost_micros is None:
            # In the table's currency (a float for the dashboard only; stored amounts are micro-units).
            self._metrics.add(
                "MessageCost", move.job.cost_micros / MICROS_PER_UNIT, account_id=move.job.account_id, unit="None"
            )
        if move.job.status == JobStatus.PENDING:
            self._metrics.add("MessagesDeferred", 1, account_id=move.job.account_id)
        elif receipt.status == ReceiptStatus.FAILED and move.error is not None:
            self._after_failure(move, provider, queues)

    def _apply(
        self, job: Job | None, receipt: Receipt, result: WebhookResult, queues: _QueueReads, *, provider: str
    ) -> Job | None:
        """Apply one receipt to its job, deciding again from a fresh read when the job changed meanwhile."""
        current = job
        for _ in range(MAX_RECEIPT_ATTEMPTS):
            if current is None:
                return None
            move = self._decide(current, receipt, queues)
            if move is None:
                self._unchanged(current, result)
                return current
            if self._jobs.settle([move]):
                self._applied(move, receipt, result, queues, provider=provider)
                return move.job
            current = self._jobs.get_jobs([(current.queue_id, current.id)]).get(current.id)
        raise RuntimeError(f"job {current.id if current else '?'}: its receipt kept meeting concurrent changes")

    def _deferred_instead(self, move: JobMove, queues: _QueueReads) -> JobMove:
        """A late failure the provider means as "not now" (RETRY_LATER) gets the fate it gets at send time: the
        delayed re-feed (decision 27), while the job has re-feeds left and its queue is still fed. Anything else is
        `move` as it is. The queue is read only for such an error."""
        error = move.error
        if move.job.status != JobStatus.FAILED or error is None or error.error_class != ErrorClass.RETRY_LATER:
            return move
        job = move.before
        queue = queues.get(job.business_id, job.queue_id)
        if queue is None or queue.status not in DEFERRABLE_QUEUE_STATUSES:
            return move
        return deferral(job, error, now=move.job.updated_at) or move

    def _category(self, job: Job, receipt: Receipt, queues: _QueueReads) -> str | None:
        """The queue's template category, read only for a receipt the table must price without a category of its
        own (Twilio's, the sandbox's without pricing): one GetItem per queue and notification."""
        pricing = receipt.pricing
        if (
            pricing is None
            or pricing.category
            or pricing.amount_micros is not None
            or not pricing.billable
            or job.cost_micros is not None
        ):
            return None
        queue = queues.get(job.business_id, job.queue_id)
        return queue.template.category.value if queue is not None else None

    def _after_failure(self, move: JobMove, provider: str, queues: _QueueReads) -> None:
        assert move.error is not None
        job = move.job
        queue = queues.get(job.business_id, job.queue_id)
        self._fates.apply(job, queue, move.error, provider=provider)

    def _latency(self, route: str, started: float) -> None:
        """WebhookLatency: the time from a verified-or-refused request's start to its answer, what the providers'
        timeouts are measured against."""
        elapsed_ms = (time.perf_counter() - started) * 1000
        self._metrics.add("WebhookLatency", elapsed_ms, account_id=None, unit="Milliseconds", route=route)

    def _refused(self, route: str) -> NoReturn:
        self._metrics.add("WebhookRefused", 1, account_id=None, route=route)
        raise InvalidSignatureError("the webhook signature is missing or does not match")


class _QueueReads:
    """The queues one notification's receipts need (to price, defer or pause), each read once per request, as the
    sender reads a batch's queues once: a notification of 25 failures of one queue is one GetItem, not 50. The fates'
    writes are conditional, so a queue paused by an earlier receipt of the same notification is not paused twice."""

    def __init__(self, lifecycle: QueueReader) -> None:
        self._lifecycle = lifecycle
        self._read: dict[tuple[str, str], Queue | None] = {}

    def get(self, business_id: str, queue_id: str) -> Queue | None:
        key = (business_id, queue_id)
        if key not in self._read:
            self._read[key] = self._lifecycle.read_queue(business_id, queue_id)
        return self._read[key]


def _belongs(job: Job, account: WebhookAccount, receipt: Receipt) -> bool:
    """The job was sent through this account (whose signature was checked), as this provider message."""
    if job.business_id != account.business_id or job.account_id != account.account_id:
        return False
    return job.provider_message_id is None or job.provider_message_id == receipt.provider_message_id
