"""The Meta WhatsApp Cloud API adapter (also used for the sandbox, which speaks the same API).

One call: `POST {base_url}/{api_version}/{phone_number_id}/messages` with a template message. The access token
goes in the Authorization header only; it is never logged and never part of an error message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from wabacast.providers.base import OutboundMessage, ProviderError, SendReceipt
from wabacast.providers.errors import classify, local_error

if TYPE_CHECKING:
    from wabacast.domain.models import TemplateButton, TemplateHeader

# Meta error messages are short; JobError.message holds at most 500 characters.
MAX_ERROR_MESSAGE = 480


def template_parameters(variables: dict[str, str]) -> list[dict[str, str]]:
    """Body parameters: keys "1", "2", ... positionally in numeric order, then named ones (`parameter_name`)."""
    positional = sorted((key for key in variables if key.isdigit()), key=int)
    named = [key for key in variables if not key.isdigit()]
    parameters = [{"type": "text", "text": variables[key]} for key in positional]
    parameters += [{"type": "text", "parameter_name": key, "text": variables[key]} for key in named]
    return parameters


def header_component(header: TemplateHeader) -> dict[str, Any]:
    """`{"type": "header", "parameters": [...]}`: a text parameter, or the media (image, document, video) by link."""
    kind = header.type.value
    if kind == "text":
        return {"type": "header", "parameters": [{"type": "text", "text": header.text}]}
    media: dict[str, str] = {"link": str(header.link)}
    if kind == "document" and header.filename:
        media["filename"] = header.filename
    return {"type": "header", "parameters": [{"type": kind, kind: media}]}


def button_component(button: TemplateButton) -> dict[str, Any]:
    """One `{"type": "button", "sub_type", "index", "parameters"}` per button: a quick reply's payload, or the
    suffix appended to a dynamic URL button's URL. Meta's index is a string."""
    if button.sub_type.value == "quick_reply":
        parameter = {"type": "payload", "payload": button.payload}
    else:
        parameter = {"type": "text", "text": button.url_suffix}
    return {"type": "button", "sub_type": button.sub_type.value, "index": str(button.index), "parameters": [parameter]}


def build_template_payload(message: OutboundMessage) -> dict[str, Any]:
    """The JSON body of a template send: header, body and button components in that order, each only when the
    template has it (no `components` at all for a template without parameters)."""
    template: dict[str, Any] = {"name": message.template_name, "language": {"code": message.language}}
    components: list[dict[str, Any]] = []
    if message.header is not None:
        components.append(header_component(message.header))
    if message.variables:
        components.append({"type": "body", "parameters": template_parameters(message.variables)})
    components += [button_component(button) for button in sorted(message.buttons, key=lambda b: b.index)]
    if components:
        template["components"] = components
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to.removeprefix("+"),
        "type": "template",
        "template": template,
    }
    if message.callback_reference:
        # Meta echoes it in every status webhook of this message (decision 26).
        payload["biz_opaque_callback_data"] = message.callback_reference
    return payload


class _RequestTrace:
    """httpcore's trace extension for one request: whether it opened a connection of its own, and whether the
    request headers were written whole. httpcore swallows a write error and reads on, so a connection the server
    had already closed shows up as RemoteProtocolError or ReadError: this trace tells that case apart."""

    def __init__(self) -> None:
        self.connected = False
        self.headers_started = False
        self.headers_written = False

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event.startswith(("connection.connect_tcp.", "connection.connect_unix_socket.")):
            self.connected = True
        elif event.endswith(".send_request_headers.started"):
            self.headers_started = True
        elif event.endswith(".send_request_headers.complete"):
            self.headers_written = True

    @property
    def stale_connection(self) -> bool:
        """A pooled (kept-alive) connection failed before the request's headers were written: the provider
        cannot have received the request. Without trace events (a transport that is not httpcore's) nothing is
        known, so nothing is retried."""
        return self.headers_started and not self.connected and not self.headers_written


# Failures that a connection the server closed while it sat in the pool produces.
_STALE_CONNECTION_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ConnectError)


class MetaCloudProvider:
    def __init__(
        self,
        base_url: str,
        api_version: str,
        phone_number_id: str,
        access_token: str,
        client: httpx.Client,
        timeout_s: float,
        *,
        provider_name: str = "meta",
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/{api_version.strip('/')}/{phone_number_id}/messages"
        self._access_token = access_token
        self._client = client
        self._timeout = httpx.Timeout(timeout_s)
        self._provider_name = provider_name

    def __repr__(self) -> str:
        return f"MetaCloudProvider(url={self._url!r}, provider={self._provider_name!r})"

    def send(self, message: OutboundMessage) -> SendReceipt:
        payload = build_template_payload(message)
        headers = {"Authorization": f"Bearer {self._access_token}", "Accept": "application/json"}
        response = self._post(payload, headers)
        if response.is_success:
            return self._receipt(response)
        raise self._http_error(response, message.to)

    def _post(self, payload: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        """One POST; tried a second time (on a new connection) only when a kept-alive connection turned out to be
        closed before any of the request was written. Anything else that fails is classified as it is."""
        for attempt in (1, 2):
            trace = _RequestTrace()
            try:
                return self._client.post(
                    self._url, json=payload, headers=headers, timeout=self._timeout, extensions={"trace": trace}
                )
            except _STALE_CONNECTION_ERRORS as error:
                if attempt == 1 and trace.stale_connection:
                    continue
                raise self._transport_error(error) from None
            except (httpx.HTTPError, httpx.InvalidURL) as error:
                raise self._transport_error(error) from None
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _receipt(self, response: httpx.Response) -> SendReceipt:
        try:
            body = response.json()
            message_id = body["messages"][0]["id"]
        except (ValueError, KeyError, IndexError, TypeError):
            message_id = None
        if not isinstance(message_id, str) or not message_id:
            raise local_error("INVALID_RESPONSE", f"HTTP {response.status_code}", http_status=response.status_code)
        return SendReceipt(provider_message_id=message_id)

    def _http_error(self, response: httpx.Response, recipient: str) -> ProviderError:
        status = response.status_code
        code: str | None = None
        subcode: str | None = None
        text = f"HTTP {status}"
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = None
        if isinstance(error, dict):
            if error.get("code") is not None:
                code = str(error["code"])
            if error.get("error_subcode") is not None:
                subcode = str(error["error_subcode"])
            text = str(error.get("message") or text)
            details = error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), dict) else None
            if details and str(details) not in text:
                text = f"{text} ({details})"
        error_class = classify(self._provider_name, code, status, subcode=subcode, recipient=recipient)
        return ProviderError(code or str(status), self._scrub(text), error_class, http_status=status)

    def _transport_error(self, error: httpx.HTTPError | httpx.InvalidURL) -> ProviderError:
        detail = self._scrub(f"{type(error).__name__}: {error}")
        # Not sent at all: safe to retry.
        if isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout):
            return local_error("CONNECT_TIMEOUT", detail)
        if isinstance(error, httpx.ConnectError | httpx.ProxyError):
            return local_error("CONNECT_ERROR", detail)
        # The request did not leave whole, so the provider cannot have acted on it.
        if isinstance(error, httpx.WriteTimeout | httpx.WriteError):
            return local_error("WRITE_ERROR", detail)
        # Sent, and then no (complete) answer: the provider may have accepted it.
        if isinstance(error, httpx.ReadTimeout):
            return local_error("READ_TIMEOUT", detail)
        if isinstance(error, httpx.ReadError | httpx.RemoteProtocolError):
            return local_error("CONNECTION_LOST", detail)
        if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return local_error("PROVIDER_CONFIG", detail)
        return local_error("REQUEST_ERROR", detail)

    def _scrub(self, text: str) -> str:
        if self._access_token:
            text = text.replace(self._access_token, "***")
        return text[:MAX_ERROR_MESSAGE]
