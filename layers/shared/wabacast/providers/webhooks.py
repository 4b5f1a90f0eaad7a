"""Inbound webhooks as the providers send them: signature checks and the payload models, parsed at the edge.

Meta (WhatsApp Cloud API): a JSON body `{"object": "whatsapp_business_account", "entry": [{"id", "changes":
[{"field", "value"}]}]}` signed with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, key: the app
secret>`. Twilio: a form-encoded status callback signed with `X-Twilio-Signature` (HMAC-SHA1 of the URL and the
sorted parameters, key: the auth token), checked with Twilio's own RequestValidator.

The models accept fields they do not name (providers add fields without notice) and name only what wabacast reads.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from wabacast.domain.health import AccountUpdate, QualityUpdate, TemplateStatus, TemplateStatusUpdate
from wabacast.domain.jobs import JobError
from wabacast.domain.models import MessagingTier
from wabacast.domain.receipts import Receipt, ReceiptPricing, ReceiptStatus
from wabacast.pricing import twilio_price_micros
from wabacast.providers.errors import classify

META_SIGNATURE_HEADER = "x-hub-signature-256"
TWILIO_SIGNATURE_HEADER = "x-twilio-signature"
_SHA256_PREFIX = "sha256="
MAX_ERROR_MESSAGE = 480


def meta_signature(raw_body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `raw_body`."""
    digest = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return f"{_SHA256_PREFIX}{digest}"


def meta_signature_valid(raw_body: bytes, header: str | None, app_secret: str) -> bool:
    """Constant-time comparison of the header with the HMAC of the raw body (never of a re-serialized one)."""
    if not header or not app_secret:
        return False
    return hmac.compare_digest(meta_signature(raw_body, app_secret).encode(), header.strip().lower().encode())


def twilio_signature_valid(url: str, params: dict[str, str], header: str | None, auth_token: str) -> bool:
    if not header or not auth_token:
        return False
    # Imported here: the Twilio package is large and only Twilio callbacks need it.
    from twilio.request_validator import RequestValidator

    return bool(RequestValidator(auth_token).validate(url, params, header))


class _Tolerant(BaseModel):
    # defer_build: validators are built on the first webhook, not on every API cold start (decision 19).
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


# Meta ------------------------------------------------------------------------------------------------------------
class MetaErrorData(_Tolerant):
    details: str | None = None


class MetaError(_Tolerant):
    code: int | str
    title: str | None = None
    message: str | None = None
    error_data: MetaErrorData | None = None


class MetaPricing(_Tolerant):
    billable: bool | None = None
    pricing_model: str | None = None
    category: str | None = None


class MetaConversationOrigin(_Tolerant):
    type: str | None = None


class MetaConversation(_Tolerant):
    id: str | None = None
    origin: MetaConversationOrigin | None = None
    expiration_timestamp: str | None = None


class MetaStatus(_Tolerant):
    id: str = Field(min_length=1)
    status: str
    timestamp: str | None = None
    recipient_id: str | None = None
    # Echoed from the send (wabacast sets "<queue id>/<job id>"): finds the job with one keyed read.
    biz_opaque_callback_data: str | None = None
    errors: list[MetaError] = Field(default_factory=list)
    pricing: MetaPricing | None = None
    conversation: MetaConversation | None = None


class MetaText(_Tolerant):
    body: str = ""


class MetaButton(_Tolerant):
    text: str | None = None
    payload: str | None = None


class MetaInboundMessage(_Tolerant):
    id: str
    from_: str = Field(alias="from")
    timestamp: str | None = None
    type: str | None = None
    text: MetaText | None = None
    button: MetaButton | None = None


class MetaMetadata(_Tolerant):
    display_phone_number: str | None = None
    phone_number_id: str = Field(min_length=1)


class MetaBanInfo(_Tolerant):
    waba_ban_state: list[str] | str | None = None
    waba_ban_date: str | None = None


class MetaChangeValue(_Tolerant):
    messaging_product: str | None = None
    metadata: MetaMetadata | None = None
    statuses: list[MetaStatus] = Field(default_factory=list)
    messages: list[MetaInboundMessage] = Field(default_factory=list)
    # account_update, phone_number_quality_update, message_template_status_update
    event: str | None = None
    current_limit: str | None = None
    message_template_id: int | str | None = None
    message_template_name: str | None = None
    message_template_language: str | None = None
    reason: str | None = None
    display_phone_number: str | None = None
    phone_number: str | int | None = None
    ban_info: MetaBanInfo | None = None


class MetaChange(_Tolerant):
    field: str
    value: MetaChangeValue


class MetaEntry(_Tolerant):
    # The WABA id (what the account fields name the account by).
    id: str
    time: int | None = None
    changes: list[MetaChange] = Field(default_factory=list)


class MetaNotification(_Tolerant):
    object: str
    entry: list[MetaEntry] = Field(default_factory=list)

    def phone_number_ids(self) -> set[str]:
        return {
            change.value.metadata.phone_number_id
            for entry in self.entry
            for change in entry.changes
            if change.value.metadata is not None
        }

    def account_event_waba_ids(self) -> set[str]:
        """The WABAs named by account fields (quality, template status, account update): what finds the key that
        checks their signature when there is no stack-wide app secret."""
        return {entry.id for entry in self.entry for change in entry.changes if change.field in META_ACCOUNT_FIELDS}


META_QUALITY_FIELD = "phone_number_quality_update"
META_TEMPLATE_FIELD = "message_template_status_update"
META_ACCOUNT_FIELD = "account_update"
META_ACCOUNT_FIELDS = frozenset({META_QUALITY_FIELD, META_TEMPLATE_FIELD, META_ACCOUNT_FIELD})

MetaAccountEvent = QualityUpdate | TemplateStatusUpdate | AccountUpdate


def meta_account_event(entry: MetaEntry, change: MetaChange) -> MetaAccountEvent | None:
    """The health update an account field means; None for other fields, or one too incomplete to act on."""
    value = change.value
    at = _epoch(str(entry.time)) if entry.time is not None else None
    if change.field == META_QUALITY_FIELD:
        if not value.display_phone_number or not value.event:
            return None
        tier = value.current_limit if value.current_limit in MessagingTier.__members__ else None
        return QualityUpdate(
            waba_id=entry.id,
            display_phone_number=value.display_phone_number,
            event=value.event,
            messaging_tier=MessagingTier(tier) if tier else None,
            occurred_at=at,
        )
    if change.field == META_TEMPLATE_FIELD:
        if not value.message_template_name or not value.message_template_language or not value.event:
            return None
        event = value.event.upper()
        status = TemplateStatus(event) if event in TemplateStatus.__members__ else TemplateStatus.UNKNOWN
        return TemplateStatusUpdate(
            waba_id=entry.id,
            name=value.message_template_name,
            language=value.message_template_language,
            status=status,
            provider_template_id=str(value.message_template_id) if value.message_template_id is not None else None,
            reason=value.reason if value.reason and value.reason.upper() != "NONE" else None,
            occurred_at=at,
        )
    if change.field == META_ACCOUNT_FIELD:
        if not value.event:
            return None
        ban_state = value.ban_info.waba_ban_state if value.ban_info else None
        if isinstance(ban_state, list):
            ban_state = ban_state[0] if ban_state else None
        return AccountUpdate(
            waba_id=entry.id,
            event=value.event,
            phone_number=str(value.phone_number) if value.phone_number is not None else None,
            ban_state=ban_state,
            occurred_at=at,
        )
    return None


_META_STATUSES = {
    "sent": ReceiptStatus.SENT,
    "delivered": ReceiptStatus.DELIVERED,
    "read": ReceiptStatus.READ,
    "failed": ReceiptStatus.FAILED,
}


def _epoch(text: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(text), UTC) if text else None
    except (ValueError, OverflowError, OSError):
        return None


def meta_receipt(status: MetaStatus, received_at: datetime) -> Receipt | None:
    """The receipt a Meta status means; None for statuses wabacast does not track (e.g. "deleted", "played")."""
    kind = _META_STATUSES.get(status.status.lower())
    if kind is None:
        return None
    error = None
    if kind == ReceiptStatus.FAILED:
        first = status.errors[0] if status.errors else None
        code = str(first.code) if first is not None else "FAILED"
        text = (first.message or first.title or "") if first is not None else "failed without an error"
        if first is not None and first.error_data is not None and first.error_data.details:
            text = f"{text} ({first.error_data.details})" if text else first.error_data.details
        error = JobError(
            code=code,
            message=text[:MAX_ERROR_MESSAGE],
            error_class=classify("meta", code if first is not None else None, None, recipient=status.recipient_id),
        )
    pricing = None
    if status.pricing is not None and kind != ReceiptStatus.FAILED:
        # billable missing: Meta bills it (the field is documented as always present on priced statuses).
        pricing = ReceiptPricing(
            billable=status.pricing.billable is not False, category=(status.pricing.category or None)
        )
    return Receipt(
        status=kind,
        provider_message_id=status.id,
        at=_epoch(status.timestamp) or received_at,
        error=error,
        pricing=pricing,
    )


def meta_inbound_text(message: MetaInboundMessage) -> str:
    """What the person wrote or pressed: a text's body, a quick-reply button's text (else its payload)."""
    if message.text is not None:
        return message.text.body
    if message.button is not None:
        return message.button.text or message.button.payload or ""
    return ""


def meta_inbound_time(message: MetaInboundMessage, received_at: datetime) -> datetime:
    return _epoch(message.timestamp) or received_at


def whatsapp_number(address: str) -> str:
    """ "whatsapp:+34600000001" (Twilio) or "34600000001" (Meta) -> "+34600000001"."""
    number = address.removeprefix("whatsapp:").strip()
    return number if number.startswith("+") else f"+{number}"


# Twilio ----------------------------------------------------------------------------------------------------------
class TwilioCallback(_Tolerant):
    """A status callback or an inbound message (form fields as Twilio names them)."""

    message_sid: str | None = Field(default=None, alias="MessageSid")
    sms_sid: str | None = Field(default=None, alias="SmsSid")
    account_sid: str | None = Field(default=None, alias="AccountSid")
    message_status: str | None = Field(default=None, alias="MessageStatus")
    error_code: str | None = Field(default=None, alias="ErrorCode")
    error_message: str | None = Field(default=None, alias="ErrorMessage")
    from_: str | None = Field(default=None, alias="From")
    to: str | None = Field(default=None, alias="To")
    body: str | None = Field(default=None, alias="Body")
    # What the message cost, when Twilio has priced it: negative (a charge), e.g. "-0.0050", in PriceUnit.
    price: str | None = Field(default=None, alias="Price")
    price_unit: str | None = Field(default=None, alias="PriceUnit")

    @property
    def sid(self) -> str | None:
        return self.message_sid or self.sms_sid


# queued / accepted / sending / scheduled come before the send is confirmed: nothing to record.
_TWILIO_STATUSES = {
    "sent": ReceiptStatus.SENT,
    "delivered": ReceiptStatus.DELIVERED,
    "read": ReceiptStatus.READ,
    "undelivered": ReceiptStatus.FAILED,
    "failed": ReceiptStatus.FAILED,
}


def twilio_pricing(callback: TwilioCallback, kind: ReceiptStatus, currency: str) -> ReceiptPricing | None:
    """Twilio's own Price when the callback carries one in the price table's currency; otherwise a delivery or read
    is priced from the table (with the queue's template category), and other statuses say nothing about cost."""
    if kind == ReceiptStatus.FAILED:
        return None
    amount = twilio_price_micros(callback.price)
    if amount is not None and (not callback.price_unit or callback.price_unit.upper() == currency.upper()):
        return ReceiptPricing(amount_micros=amount)
    if kind in (ReceiptStatus.DELIVERED, ReceiptStatus.READ):
        return ReceiptPricing()
    return None


def twilio_receipt(callback: TwilioCallback, received_at: datetime, currency: str = "USD") -> Receipt | None:
    kind = _TWILIO_STATUSES.get((callback.message_status or "").lower())
    if kind is None or not callback.sid:
        return None
    error = None
    if kind == ReceiptStatus.FAILED:
        code = callback.error_code or None
        error = JobError(
            code=code or callback.message_status or "FAILED",
            message=(callback.error_message or f"Twilio reported the message {callback.message_status}")[
                :MAX_ERROR_MESSAGE
            ],
            error_class=classify("twilio", code, None, recipient=callback.to),
        )
    return Receipt(
        status=kind,
        provider_message_id=callback.sid,
        at=received_at,
        error=error,
        pricing=twilio_pricing(callback, kind, currency),
    )
