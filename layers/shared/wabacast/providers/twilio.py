"""The Twilio adapter: WhatsApp template messages through Programmable Messaging and Content Templates.

Uses the official client (`client.messages.create(..., content_sid=..., content_variables=...)`). The auth token
lives in the client only; it is never logged and never part of an error message.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from wabacast.domain.models import TwilioCredentials
from wabacast.providers.base import OutboundMessage, ProviderError, SendReceipt
from wabacast.providers.errors import classify, local_error

MAX_ERROR_MESSAGE = 480
DEFAULT_TIMEOUT_S = 10.0


def whatsapp_address(number: str) -> str:
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"


def status_callback(url: str, reference: str | None) -> str:
    """The StatusCallback of one message: the account's webhook, with the job reference in its query (decision 26;
    Twilio signs the whole URL, query included)."""
    return f"{url}?{urlencode({'ref': reference})}" if reference else url


class TwilioProvider:
    def __init__(
        self,
        credentials: TwilioCredentials,
        client: Client | None = None,
        base_url: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        status_callback_url: str | None = None,
    ) -> None:
        """`base_url` points the client at another host (a local fake in tests); None keeps api.twilio.com.
        `status_callback_url`: this account's webhook (POST /api/webhooks/twilio/{accountId}); None: no callbacks."""
        self._credentials = credentials
        self._status_callback_url = status_callback_url
        if client is None:
            # requests' default adapter never retries a request on its own, so nothing is sent twice behind our back.
            client = Client(
                credentials.account_sid,
                credentials.auth_token,
                http_client=TwilioHttpClient(timeout=timeout_s),
            )
        if base_url is not None:
            client.api.base_url = base_url.rstrip("/")
        self._client = client

    def __repr__(self) -> str:
        return f"TwilioProvider(account={self._credentials.hint()!r})"

    def send(self, message: OutboundMessage) -> SendReceipt:
        if not message.content_sid:
            raise local_error("MISSING_CONTENT_SID", f"template {message.template_name!r} ({message.language})")
        arguments: dict[str, Any] = {
            "to": whatsapp_address(message.to),
            "content_sid": message.content_sid,
        }
        if self._credentials.messaging_service_sid:
            arguments["messaging_service_sid"] = self._credentials.messaging_service_sid
        else:
            arguments["from_"] = whatsapp_address(message.from_number)
        if self._status_callback_url:
            arguments["status_callback"] = status_callback(self._status_callback_url, message.callback_reference)
        if message.variables:
            arguments["content_variables"] = json.dumps(message.variables, separators=(",", ":"))
        try:
            created = self._client.messages.create(**arguments)
        except TwilioRestException as error:
            raise self._rest_error(error.code, error.status, str(error.msg), message.to) from None
        except TwilioServiceException as error:
            raise self._rest_error(error.code, error.status, str(error.detail or error.title), message.to) from None
        except requests.RequestException as error:
            raise self._transport_error(error) from None
        except (TwilioException, ValueError) as error:
            # Client-side failures after the call started (e.g. a 2xx body that is not JSON): outcome unknown.
            raise local_error("REQUEST_ERROR", self._scrub(f"{type(error).__name__}: {error}")) from None
        sid = getattr(created, "sid", None)
        if not isinstance(sid, str) or not sid:
            raise local_error("INVALID_RESPONSE", "no message sid in Twilio's answer")
        return SendReceipt(provider_message_id=sid)

    def _rest_error(self, code: object, status: object, text: str, recipient: str) -> ProviderError:
        http_status = status if isinstance(status, int) else None
        code_value = code if isinstance(code, int | str) and str(code) else None
        error_class = classify("twilio", code_value, http_status, recipient=recipient)
        shown = str(code_value if code_value is not None else http_status)
        return ProviderError(shown, self._scrub(text), error_class, http_status=http_status)

    def _transport_error(self, error: requests.RequestException) -> ProviderError:
        detail = self._scrub(f"{type(error).__name__}: {error}")
        if isinstance(error, requests.ConnectTimeout):
            return local_error("CONNECT_TIMEOUT", detail)
        if isinstance(error, requests.ReadTimeout):
            return local_error("READ_TIMEOUT", detail)
        if isinstance(error, requests.exceptions.SSLError | requests.exceptions.ProxyError):
            return local_error("CONNECT_ERROR", detail)
        if isinstance(error, requests.ConnectionError):
            # requests reports "could not connect" and "connection dropped mid-request" alike; the cause tells.
            reason = error.args[0] if error.args else None
            if isinstance(reason, MaxRetryError):
                reason = reason.reason
            if isinstance(reason, NewConnectionError | ConnectTimeoutError):
                return local_error("CONNECT_ERROR", detail)
            return local_error("CONNECTION_LOST", detail)
        if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema):
            return local_error("PROVIDER_CONFIG", detail)
        return local_error("REQUEST_ERROR", detail)

    def _scrub(self, text: str) -> str:
        token = self._credentials.auth_token
        if token:
            text = text.replace(token, "***")
        return text[:MAX_ERROR_MESSAGE]
