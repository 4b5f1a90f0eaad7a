"""The HTTP side of the account readers (wabacast.providers.account_readers): Meta's Graph API and Twilio's REST API.

Imported by the first read, never at a handler's import (it loads httpx). Credentials travel in the Authorization
header only: never in a URL we build, a log line or an error message. Meta's `paging.next` URLs carry the access
token in their query; the reader drops it (the header carries the token) and follows a next URL only on the host
it was configured with, so a token is never sent anywhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from wabacast.domain.health import AccountReadError, AccountSnapshot, PhoneNumberHealth, ProviderTemplate
from wabacast.domain.models import TwilioCredentials
from wabacast.providers.account_readers import (
    messaging_tier_of,
    quality_rating_of,
    template_category_of,
    template_status_of,
    twilio_messaging_tier_of,
)

LOGGER = logging.getLogger(__name__)

# Meta's phone number fields. `whatsapp_business_manager_messaging_limit` replaced the deprecated
# `messaging_limit_tier` (Meta's messaging limits page); Graph answers #100 for a field it does not know, so only
# the current one is asked for, and either is accepted in the answer.
META_PHONE_FIELDS = (
    "id,display_phone_number,verified_name,quality_rating,status,throughput,whatsapp_business_manager_messaging_limit"
)
META_TEMPLATE_FIELDS = "id,name,status,category,language,components,rejected_reason"
META_TEMPLATE_PAGE_SIZE = 100
# A WABA holds at most 6,000 templates (a verified business): 60 pages of 100. More pages than this means a next
# link that never ends, not a bigger catalogue.
MAX_TEMPLATE_PAGES = 100
# Meta's "invalid or expired access token" code.
META_TOKEN_CODE = "190"  # noqa: S105 - an error code, not a credential
# Twilio's "authentication failed" code.
TWILIO_AUTH_CODE = "20003"
TWILIO_PAGE_SIZE = 500
MAX_TWILIO_PAGES = 50
MAX_MESSAGE = 300


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _short(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class _JsonGetter:
    """GET a JSON object, mapping every failure to AccountReadError; `what` names the read in its messages."""

    def __init__(
        self,
        client: httpx.Client,
        timeout_s: float,
        headers: dict[str, str],
        *,
        auth: httpx.BasicAuth | None = None,
        error_of: Callable[[httpx.Response], AccountReadError],
    ) -> None:
        self._client = client
        self._timeout = httpx.Timeout(timeout_s)
        self._headers = {"Accept": "application/json", **headers}
        self._auth = auth
        self._error_of = error_of

    def get(self, url: str, params: dict[str, str] | None = None, *, what: str) -> dict[str, Any]:
        try:
            if self._auth is not None:
                response = self._client.get(
                    url, params=params, headers=self._headers, timeout=self._timeout, auth=self._auth
                )
            else:
                response = self._client.get(url, params=params, headers=self._headers, timeout=self._timeout)
        except httpx.TimeoutException:
            raise AccountReadError("TIMEOUT", f"{what}: no answer within the timeout") from None
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            # The exception's text may name the URL; its type says enough.
            raise AccountReadError("UNREACHABLE", f"{what}: {type(error).__name__}") from None
        if not response.is_success:
            raise self._error_of(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise AccountReadError("INVALID_RESPONSE", f"{what}: HTTP {response.status_code} without a JSON object")
        return body


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _error_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _http_code(status: int) -> str:
    return f"HTTP_{status}"


def meta_read_error(response: httpx.Response) -> AccountReadError:
    """Graph's `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}` as an AccountReadError: the
    code is Meta's (subcode in the message), or HTTP_<status> without one."""
    status = response.status_code
    body = _error_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    code: str | None = None
    text = f"HTTP {status}"
    if isinstance(error, dict):
        if error.get("code") is not None:
            code = str(error["code"])
        if error.get("message"):
            text = str(error["message"])
        if error.get("error_subcode") is not None:
            text = f"{text} (subcode {error['error_subcode']})"
    refused = status in (401, 403) or code == META_TOKEN_CODE
    return AccountReadError(code or _http_code(status), _short(text), credentials_refused=refused)


def twilio_read_error(response: httpx.Response) -> AccountReadError:
    """Twilio's `{"code", "message", "more_info", "status"}` as an AccountReadError."""
    status = response.status_code
    body = _error_body(response)
    code: str | None = None
    text = f"HTTP {status}"
    if isinstance(body, dict):
        if body.get("code") is not None:
            code = str(body["code"])
        if body.get("message"):
            text = str(body["message"])
    refused = status in (401, 403) or code == TWILIO_AUTH_CODE
    return AccountReadError(code or _http_code(status), _short(text), credentials_refused=refused)


class MetaAccountReader:
    """The phone number and the WABA's templates through the Graph API (Meta accounts and the sandbox)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_version: str,
        phone_number_id: str,
        waba_id: str,
        access_token: str,
        client: httpx.Client,
        timeout_s: float,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._root = f"{base_url.rstrip('/')}/{api_version.strip('/')}"
        self._origin = urlsplit(self._root)[:2]
        self._phone_number_id = phone_number_id
        self._waba_id = waba_id
        self._http = _JsonGetter(
            client, timeout_s, {"Authorization": f"Bearer {access_token}"}, error_of=meta_read_error
        )
        self._now = now or _utc_now

    def __repr__(self) -> str:
        return f"MetaAccountReader(root={self._root!r}, phone_number_id={self._phone_number_id!r})"

    def read(self, *, include_templates: bool = True) -> AccountSnapshot:
        read_at = self._now()
        phone = self._phone()
        templates = tuple(self._templates()) if include_templates else None
        return AccountSnapshot(phone=phone, templates=templates, read_at=read_at)

    def _phone(self) -> PhoneNumberHealth:
        body = self._http.get(
            f"{self._root}/{self._phone_number_id}", {"fields": META_PHONE_FIELDS}, what="phone number"
        )
        throughput = body.get("throughput")
        limit = body.get("whatsapp_business_manager_messaging_limit")
        if limit is None:
            limit = body.get("messaging_limit_tier")
        display = e164_of(body.get("display_phone_number"))
        status = body.get("status")
        name = body.get("verified_name")
        return PhoneNumberHealth(
            display_phone_number=display,
            quality_rating=quality_rating_of(body.get("quality_rating")),
            provider_status=str(status) if status else None,
            throughput=str(throughput["level"]) if isinstance(throughput, dict) and throughput.get("level") else None,
            messaging_tier=messaging_tier_of(limit),
            verified_name=str(name) if name else None,
        )

    def _templates(self) -> Iterator[ProviderTemplate]:
        url: str | None = f"{self._root}/{self._waba_id}/message_templates"
        params: dict[str, str] | None = {"fields": META_TEMPLATE_FIELDS, "limit": str(META_TEMPLATE_PAGE_SIZE)}
        seen: set[str] = set()
        for _ in range(MAX_TEMPLATE_PAGES):
            assert url is not None
            body = self._http.get(url, params, what="message templates")
            for item in body.get("data") or []:
                template = meta_template(item)
                if template is not None:
                    yield template
            url = self._next_url(body)
            if url is None:
                return
            if url in seen:
                raise AccountReadError("INVALID_RESPONSE", "message templates: the next page repeats an earlier one")
            seen.add(url)
            params = None  # the next URL carries them
        raise AccountReadError("INVALID_RESPONSE", f"message templates: more than {MAX_TEMPLATE_PAGES} pages")

    def _next_url(self, body: dict[str, Any]) -> str | None:
        paging = body.get("paging")
        next_url = paging.get("next") if isinstance(paging, dict) else None
        if not isinstance(next_url, str) or not next_url:
            return None
        parts = urlsplit(next_url)
        if parts[:2] != self._origin:
            # Never send the token to another host; the URL itself is not shown (its query holds a token).
            raise AccountReadError("INVALID_RESPONSE", "message templates: the next page is on another host")
        query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "access_token"]
        return urlunsplit(parts._replace(query=urlencode(query)))


def e164_of(display: Any) -> str | None:
    """Meta's `display_phone_number` ("+1 555-078-3881", "15550783881") in E.164 ("+15550783881"), the form of
    an account's phone number, so proving ownership is a plain comparison. None when it holds no digits."""
    if not isinstance(display, str | int) or isinstance(display, bool):
        return None
    digits = "".join(character for character in str(display) if character.isdigit())
    return f"+{digits}" if digits else None


def meta_template(item: Any) -> ProviderTemplate | None:
    """One entry of `message_templates.data`; None for an entry without a name or language."""
    if not isinstance(item, dict) or not item.get("name") or not item.get("language"):
        return None
    components = item.get("components")
    reason = item.get("rejected_reason")
    return ProviderTemplate(
        name=str(item["name"]),
        language=str(item["language"]),
        status=template_status_of(item.get("status")),
        category=template_category_of(item.get("category")),
        provider_template_id=str(item["id"]) if item.get("id") is not None else None,
        components=tuple(c for c in components if isinstance(c, dict)) if isinstance(components, list) else (),
        reason=str(reason) if reason and str(reason).upper() != "NONE" else None,
    )


class TwilioAccountReader:
    """The number through Twilio's REST API, with the account's own SID and auth token.

    Ownership: the WhatsApp sender `whatsapp:<number>` (Senders API), or else the number among the account's
    IncomingPhoneNumbers. The sender also gives its status and, when Twilio has them, Meta's quality rating and
    messaging limit. Templates: the Content API's contents with their WhatsApp approval (name, status, category).
    """

    def __init__(
        self,
        *,
        credentials: TwilioCredentials,
        phone_number: str,
        api_base_url: str,
        messaging_base_url: str,
        content_base_url: str,
        client: httpx.Client,
        timeout_s: float,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._sid = credentials.account_sid
        self._hint = credentials.hint()
        self._phone_number = phone_number
        self._api = api_base_url.rstrip("/")
        self._messaging = messaging_base_url.rstrip("/")
        self._content = content_base_url.rstrip("/")
        self._http = _JsonGetter(
            client,
            timeout_s,
            {},
            auth=httpx.BasicAuth(credentials.account_sid, credentials.auth_token),
            error_of=twilio_read_error,
        )
        self._now = now or _utc_now

    def __repr__(self) -> str:
        return f"TwilioAccountReader(account={self._hint!r}, number={self._phone_number!r})"

    def read(self, *, include_templates: bool = True) -> AccountSnapshot:
        read_at = self._now()
        phone = self._phone()
        templates = tuple(self._templates()) if include_templates else None
        return AccountSnapshot(phone=phone, templates=templates, read_at=read_at)

    def _phone(self) -> PhoneNumberHealth:
        sender = self._whatsapp_sender()
        if sender is not None:
            properties = _object(sender.get("properties"))
            profile = _object(sender.get("profile"))
            status = sender.get("status")
            name = profile.get("name")
            return PhoneNumberHealth(
                display_phone_number=self._phone_number,
                quality_rating=quality_rating_of(properties.get("quality_rating")),
                provider_status=str(status) if status else None,
                messaging_tier=twilio_messaging_tier_of(properties.get("messaging_limit")),
                verified_name=str(name) if name else None,
            )
        owned = self._incoming_number()
        return PhoneNumberHealth(display_phone_number=self._phone_number if owned else None)

    def _whatsapp_sender(self) -> dict[str, Any] | None:
        """The account's sender for this number, or None (none, or the Senders API is not open to the account:
        a 404 there is not a failure of the sync; a refused credential still is)."""
        wanted = f"whatsapp:{self._phone_number}"
        try:
            for sender in self._pages(
                f"{self._messaging}/v2/Channels/Senders",
                {"Channel": "whatsapp", "PageSize": str(TWILIO_PAGE_SIZE)},
                "senders",
                what="WhatsApp senders",
            ):
                if str(sender.get("sender_id", "")).replace(" ", "") == wanted:
                    return sender
        except AccountReadError as error:
            if error.code in ("HTTP_404", "20404"):
                return None
            raise
        return None

    def _incoming_number(self) -> bool:
        body = self._http.get(
            f"{self._api}/2010-04-01/Accounts/{self._sid}/IncomingPhoneNumbers.json",
            {"PhoneNumber": self._phone_number},
            what="incoming phone numbers",
        )
        numbers = body.get("incoming_phone_numbers") or []
        return any(isinstance(n, dict) and n.get("phone_number") == self._phone_number for n in numbers)

    def _templates(self) -> Iterator[ProviderTemplate]:
        for content in self._pages(
            f"{self._content}/v1/ContentAndApprovals",
            {"PageSize": str(TWILIO_PAGE_SIZE)},
            "contents",
            what="content templates",
        ):
            template = twilio_template(content)
            if template is not None:
                yield template

    def _pages(self, url: str, params: dict[str, str], key: str, *, what: str) -> Iterator[dict[str, Any]]:
        """Items of a Twilio v1/v2 list (`{key: [...], "meta": {"next_page_url"}}`), following next pages on the
        same host (Basic auth goes only where it was meant to)."""
        origin = urlsplit(url)[:2]
        next_url: str | None = url
        next_params: dict[str, str] | None = params
        seen: set[str] = set()
        for _ in range(MAX_TWILIO_PAGES):
            assert next_url is not None
            body = self._http.get(next_url, next_params, what=what)
            for item in body.get(key) or []:
                if isinstance(item, dict):
                    yield item
            meta = body.get("meta")
            candidate = meta.get("next_page_url") if isinstance(meta, dict) else None
            if not isinstance(candidate, str) or not candidate:
                return
            if urlsplit(candidate)[:2] != origin or candidate in seen:
                raise AccountReadError("INVALID_RESPONSE", f"{what}: a next page that is not a new page of this list")
            seen.add(candidate)
            next_url, next_params = candidate, None
        raise AccountReadError("INVALID_RESPONSE", f"{what}: more than {MAX_TWILIO_PAGES} pages")


def twilio_template(content: dict[str, Any]) -> ProviderTemplate | None:
    """One Content API entry with its WhatsApp approval; None when it was never submitted to WhatsApp (it cannot
    start a conversation, so it is no template to check)."""
    approvals = content.get("approval_requests")
    whatsapp = approvals if isinstance(approvals, dict) else {}
    name = whatsapp.get("name") or content.get("friendly_name")
    language = content.get("language")
    status = whatsapp.get("status")
    if not name or not language or not status or str(status).lower() == "unsubmitted":
        return None
    reason = whatsapp.get("rejection_reason")
    return ProviderTemplate(
        name=str(name),
        language=str(language),
        status=template_status_of(status),
        category=template_category_of(whatsapp.get("category")),
        provider_template_id=str(content["sid"]) if content.get("sid") else None,
        reason=str(reason) if reason else None,
    )
