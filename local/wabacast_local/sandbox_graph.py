"""The sandbox's Graph API reads: a phone number's health and a WABA's message templates, as Meta answers them.

Sandbox accounts use their account id as both the phone number id and the WABA id, so one id names one number and
its own template catalogue:

- `GET /{version}/{id}?fields=...`: `id`, `display_phone_number`, `verified_name`, `quality_rating`, `status`,
  `throughput` (`{"level": ...}`), `whatsapp_business_manager_messaging_limit` (and the deprecated
  `messaging_limit_tier`); only the fields asked for, as Graph does.
- `GET /{version}/{id}/message_templates?limit=&after=`: `{"data": [...], "paging": {"cursors", "next"}}`.

A number starts GREEN, CONNECTED, TIER_UNLIMITED (so local campaigns are not held for a day by the messaging
limit; set a tier with POST /numbers/{id}), STANDARD throughput; a catalogue starts with DEFAULT_TEMPLATES (the
templates the local demo and the end-to-end tests send, APPROVED). A template that is not in the catalogue is
merely unknown: the send path never refuses it. A catalogue template that is PAUSED or DISABLED is refused as Meta
refuses it (132015 / 132016).

Control (the sandbox's own API, beside `/config`): `GET|POST /numbers/{id}` reads or changes a number
(`qualityRating`, `status`, `messagingTier`, `throughput`, `displayPhoneNumber`, `verifiedName`, optional `event`);
`GET /templates?wabaId=...` lists a catalogue, `POST /templates` adds a template or changes one (`wabaId`, `name`,
`language`, `category`, `status`, optional `reason`). A change posts Meta's signed `phone_number_quality_update` or
`message_template_status_update` notification when the sandbox's callbacks are on.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from wabacast_local.sandbox_callbacks import display_phone_number

QUALITY_RATINGS = ("GREEN", "YELLOW", "RED", "UNKNOWN")
# Meta's phone number `status` values.
NUMBER_STATUSES = (
    "CONNECTED",
    "PENDING",
    "FLAGGED",
    "RESTRICTED",
    "RATE_LIMITED",
    "MIGRATED",
    "DISCONNECTED",
    "BANNED",
    "DELETED",
    "UNVERIFIED",
)
MESSAGING_TIERS = ("TIER_50", "TIER_250", "TIER_1K", "TIER_2K", "TIER_10K", "TIER_100K", "TIER_UNLIMITED")
TIER_SIZES = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1_000,
    "TIER_2K": 2_000,
    "TIER_10K": 10_000,
    "TIER_100K": 100_000,
    "TIER_UNLIMITED": -1,
}
THROUGHPUT_LEVELS = ("STANDARD", "HIGH", "NOT_APPLICABLE")
TEMPLATE_CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
TEMPLATE_STATUSES = (
    "APPROVED",
    "PENDING",
    "REJECTED",
    "PAUSED",
    "DISABLED",
    "IN_APPEAL",
    "PENDING_DELETION",
    "DELETED",
    "LIMIT_EXCEEDED",
    "ARCHIVED",
)
# Meta's send errors for a template in these states.
REFUSING_STATUSES = {"PAUSED": 132015, "DISABLED": 132016}
QUALITY_EVENTS = ("FLAGGED", "UNFLAGGED", "DOWNGRADE", "UPGRADE", "ONBOARDING", "THROUGHPUT_UPGRADE")
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 25

# (name, language, category): what `make run`'s demo and the end-to-end tests send.
DEFAULT_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("hello_world", "en_US", "UTILITY"),
    ("welcome", "en_US", "UTILITY"),
    ("spring_promo", "en_US", "MARKETING"),
    ("spring_sale", "en_US", "MARKETING"),
    ("reminder", "en", "UTILITY"),
    ("order_update", "en_US", "UTILITY"),
    ("preview", "en_US", "MARKETING"),
    ("contract", "en_US", "MARKETING"),
    ("bench", "en_US", "MARKETING"),
    ("login_code", "en_US", "AUTHENTICATION"),
)


class SandboxGraphError(ValueError):
    """A control call with a bad value; the message names the field and the rule."""


@dataclass(frozen=True)
class NumberHealth:
    quality_rating: str = "GREEN"
    status: str = "CONNECTED"
    messaging_tier: str = "TIER_UNLIMITED"
    throughput: str = "STANDARD"
    display_phone_number: str | None = None
    verified_name: str = "Sandbox Business"

    def graph(self, phone_number_id: str) -> dict[str, Any]:
        """Every field Graph can answer for this number."""
        return {
            "id": phone_number_id,
            "display_phone_number": self.display_phone_number or f"+{display_phone_number(phone_number_id)}",
            "verified_name": self.verified_name,
            "quality_rating": self.quality_rating,
            "status": self.status,
            "throughput": {"level": self.throughput},
            "whatsapp_business_manager_messaging_limit": self.messaging_tier,
            "messaging_limit_tier": self.messaging_tier,
        }

    def to_json(self, phone_number_id: str) -> dict[str, Any]:
        return {
            "phoneNumberId": phone_number_id,
            "qualityRating": self.quality_rating,
            "status": self.status,
            "messagingTier": self.messaging_tier,
            "throughput": self.throughput,
            "displayPhoneNumber": self.graph(phone_number_id)["display_phone_number"],
            "verifiedName": self.verified_name,
        }


@dataclass(frozen=True)
class CatalogueTemplate:
    name: str
    language: str
    category: str
    status: str = "APPROVED"
    reason: str | None = None

    @property
    def template_id(self) -> str:
        """A stable numeric id, as Meta's template ids are."""
        return str(int(hashlib.sha256(f"{self.name}/{self.language}".encode()).hexdigest()[:13], 16))

    def graph(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": self.template_id,
            "name": self.name,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "components": [{"type": "BODY", "text": f"Sandbox template {self.name}"}],
        }
        if self.reason:
            item["rejected_reason"] = self.reason
        return item

    def to_json(self, waba_id: str) -> dict[str, Any]:
        return {
            "wabaId": waba_id,
            "id": self.template_id,
            "name": self.name,
            "language": self.language,
            "category": self.category,
            "status": self.status,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Notification:
    """A Meta account webhook to post: its `field` and the whole signed body."""

    field: str
    body: dict[str, Any]


def _choice(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().upper() not in allowed:
        raise SandboxGraphError(f"{field} must be one of {', '.join(allowed)}")
    return value.strip().upper()


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 512:
        raise SandboxGraphError(f"{field} must be a non-empty string of at most 512 characters")
    return value.strip()


def _account_notification(waba_id: str, field: str, value: dict[str, Any], timestamp: int) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "time": timestamp, "changes": [{"value": value, "field": field}]}],
    }


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"sbx:{index}".encode()).decode().rstrip("=")


def _index(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    number = text.removeprefix("sbx:")
    return int(number) if text.startswith("sbx:") and number.isdigit() else None


class SandboxGraph:
    """Numbers and template catalogues by id; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers: dict[str, NumberHealth] = {}
        self._catalogues: dict[str, dict[tuple[str, str], CatalogueTemplate]] = {}

    # -- reads ------------------------------------------------------------------------------------------------
    def number(self, phone_number_id: str) -> NumberHealth:
        with self._lock:
            return self._numbers.get(phone_number_id, NumberHealth())

    def phone_node(self, phone_number_id: str, fields: str | None) -> dict[str, Any]:
        """Graph's answer to `GET /{version}/{id}?fields=...`: the fields asked for that it knows, and `id`."""
        node = self.number(phone_number_id).graph(phone_number_id)
        if not fields:
            return node
        wanted = {name.strip() for name in fields.split(",") if name.strip()}
        return {key: value for key, value in node.items() if key in wanted or key == "id"}

    def templates(self, waba_id: str) -> list[CatalogueTemplate]:
        with self._lock:
            return list(self._catalogue(waba_id).values())

    def template_page(
        self, waba_id: str, *, limit: str | None, after: str | None, next_base: str, access_token: str | None
    ) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of `GET /{version}/{waba_id}/message_templates`; `next_base` is the URL of this
        listing, to which the next page's query is appended (with the token, as Graph's next links carry it)."""
        size = int(limit) if limit and limit.isdigit() else DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            return 400, {"error": {"message": f"(#100) limit must be between 1 and {MAX_PAGE_SIZE}", "code": 100}}
        start = 0
        if after:
            index = _index(after)
            if index is None:
                return 400, {"error": {"message": "(#100) Invalid cursor", "code": 100}}
            start = index + 1
        items = self.templates(waba_id)
        page = items[start : start + size]
        body: dict[str, Any] = {"data": [template.graph() for template in page]}
        if page:
            paging: dict[str, Any] = {"cursors": {"before": _cursor(start), "after": _cursor(start + len(page) - 1)}}
            if start + len(page) < len(items):
                query = {"limit": str(size), "after": _cursor(start + len(page) - 1)}
                if access_token:
                    query["access_token"] = access_token
                paging["next"] = f"{next_base}?{urlencode(query)}"
            body["paging"] = paging
        return 200, body

    def send_check(self, waba_id: str, name: str, language: str) -> tuple[str, int | None]:
        """(pricing category in lower case, Meta error code or None) for a send of this template. A template the
        catalogue does not have is billed as marketing and sent; a PAUSED or DISABLED one is refused."""
        with self._lock:
            catalogue = self._catalogue(waba_id)
            template = catalogue.get((name, language))
            if template is None:
                template = next((t for (n, _), t in catalogue.items() if n == name), None)
        if template is None:
            return "marketing", None
        refused = (
            REFUSING_STATUSES.get(template.status) if (template.name, template.language) == (name, language) else None
        )
        return template.category.lower(), refused

    # -- control ----------------------------------------------------------------------------------------------
    def update_number(
        self, phone_number_id: str, changes: dict[str, Any], timestamp: int
    ) -> tuple[NumberHealth, Notification | None]:
        """Apply a control call's changes; the `phone_number_quality_update` a real number would get for them
        (None when neither quality nor tier changed and no `event` was given)."""
        known = {
            "qualityRating",
            "status",
            "messagingTier",
            "throughput",
            "displayPhoneNumber",
            "verifiedName",
            "event",
        }
        unknown = sorted(set(changes) - known)
        if unknown:
            raise SandboxGraphError(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values: dict[str, Any] = {}
        if "qualityRating" in changes:
            values["quality_rating"] = _choice("qualityRating", changes["qualityRating"], QUALITY_RATINGS)
        if "status" in changes:
            values["status"] = _choice("status", changes["status"], NUMBER_STATUSES)
        if "messagingTier" in changes:
            values["messaging_tier"] = _choice("messagingTier", changes["messagingTier"], MESSAGING_TIERS)
        if "throughput" in changes:
            values["throughput"] = _choice("throughput", changes["throughput"], THROUGHPUT_LEVELS)
        if "displayPhoneNumber" in changes:
            values["display_phone_number"] = _text("displayPhoneNumber", changes["displayPhoneNumber"])
        if "verifiedName" in changes:
            values["verified_name"] = _text("verifiedName", changes["verifiedName"])
        event = _choice("event", changes["event"], QUALITY_EVENTS) if "event" in changes else None
        with self._lock:
            before = self._numbers.get(phone_number_id, NumberHealth())
            after = replace(before, **values)
            self._numbers[phone_number_id] = after
        event = event or self._quality_event(before, after)
        if event is None:
            return after, None
        value: dict[str, Any] = {
            "display_phone_number": after.graph(phone_number_id)["display_phone_number"].lstrip("+").replace(" ", ""),
            "event": event,
            "current_limit": after.messaging_tier,
            "max_daily_conversations_per_business": after.messaging_tier,
        }
        if after.messaging_tier != before.messaging_tier:
            value["old_limit"] = before.messaging_tier
        field = "phone_number_quality_update"
        return after, Notification(field, _account_notification(phone_number_id, field, value, timestamp))

    @staticmethod
    def _quality_event(before: NumberHealth, after: NumberHealth) -> str | None:
        if TIER_SIZES[after.messaging_tier] != TIER_SIZES[before.messaging_tier]:
            grew = after.messaging_tier == "TIER_UNLIMITED" or (
                before.messaging_tier != "TIER_UNLIMITED"
                and TIER_SIZES[after.messaging_tier] > TIER_SIZES[before.messaging_tier]
            )
            return "UPGRADE" if grew else "DOWNGRADE"
        if after.quality_rating != before.quality_rating:
            return "UNFLAGGED" if after.quality_rating == "GREEN" else "FLAGGED"
        return None

    def put_template(
        self, changes: dict[str, Any], timestamp: int
    ) -> tuple[str, CatalogueTemplate, Notification | None]:
        """Add a template to a WABA's catalogue or change one; the `message_template_status_update` Meta sends
        when its status is new or changed."""
        known = {"wabaId", "name", "language", "category", "status", "reason"}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise SandboxGraphError(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        waba_id = _text("wabaId", changes.get("wabaId"))
        name = _text("name", changes.get("name"))
        language = _text("language", changes.get("language"))
        reason = _text("reason", changes["reason"]) if changes.get("reason") is not None else None
        with self._lock:
            catalogue = self._catalogue(waba_id)
            before = catalogue.get((name, language))
            category = (
                _choice("category", changes.get("category"), TEMPLATE_CATEGORIES)
                if "category" in changes or before is None
                else before.category
            )
            status = (
                _choice("status", changes["status"], TEMPLATE_STATUSES)
                if "status" in changes
                else (before.status if before is not None else "APPROVED")
            )
            after = CatalogueTemplate(name=name, language=language, category=category, status=status, reason=reason)
            catalogue[(name, language)] = after
        if before is not None and before.status == after.status:
            return waba_id, after, None
        value = {
            "event": after.status,
            "message_template_id": int(after.template_id),
            "message_template_name": after.name,
            "message_template_language": after.language,
            "reason": after.reason or "NONE",
        }
        field = "message_template_status_update"
        return waba_id, after, Notification(field, _account_notification(waba_id, field, value, timestamp))

    def _catalogue(self, waba_id: str) -> dict[tuple[str, str], CatalogueTemplate]:
        """Under the lock: the WABA's catalogue, started from DEFAULT_TEMPLATES on first use."""
        catalogue = self._catalogues.get(waba_id)
        if catalogue is None:
            catalogue = {
                (name, language): CatalogueTemplate(name, language, category)
                for name, language, category in DEFAULT_TEMPLATES
            }
            self._catalogues[waba_id] = catalogue
        return catalogue
