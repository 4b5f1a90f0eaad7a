"""Who an inbound webhook is for, and the stack's own webhook secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wabacast.domain.models import Provider
from wabacast.domain.replies import ReplyAction

META_ROUTE = "meta"
TWILIO_ROUTE = "twilio"


@dataclass(frozen=True)
class WebhookAccount:
    """The account a webhook route key (Meta phone number id, or Twilio account id) belongs to."""

    business_id: str
    account_id: str
    provider: Provider


@dataclass(frozen=True)
class StackWebhookSecrets:
    meta_verify_token: str | None = None
    # When set, it verifies every Meta webhook (one Meta app for every account) instead of the accounts' own.
    meta_app_secret: str | None = None


# Inbound messages are kept this long (then DynamoDB's TTL removes them).
INBOUND_RETENTION_DAYS = 30


@dataclass(frozen=True)
class InboundMessage:
    """A message a recipient sent to an account's number (a reply, a button press), as the provider reported it."""

    business_id: str
    account_id: str
    provider_message_id: str
    from_number: str
    kind: str  # "text", "button", ... as the provider names it
    text: str
    received_at: datetime
    # What its keyword did (wabacast.domain.replies); None: no keyword, or no change.
    action: ReplyAction | None = None
