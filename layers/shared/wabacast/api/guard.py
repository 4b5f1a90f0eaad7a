"""What every request must pass before any route, its parameters or its body are looked at, in this order:

1. authentication: a key the authorizer recognised (401), and the key's role for the route family: admin keys on
   /api/admin, business keys on /api/whatsapp (403);
2. size: a body of at most `MAX_BODY_BYTES` (413), the most a Lambda invocation carries;
3. media type: a body is JSON (415);
4. shape: the body parses as JSON (400, also for JSON nested too deeply to parse) and is an object (422).

Provider webhooks under /api/webhooks carry a signature instead of a key: only the size check applies to them.

Powertools runs its request validation before any middleware, so these checks run in the resolver itself
(`GuardedResolver`): an unauthenticated request gets its 401 without its body being parsed or validated, and the
validation errors of a route are shown only to callers allowed to use it.
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from wabacast.api.errors import wabacast_error_response
from wabacast.domain.models import ApiKeyRole
from wabacast.errors import (
    AuthenticationError,
    InvalidInputError,
    MalformedJsonError,
    PayloadTooLargeError,
    PermissionDeniedError,
    UnsupportedMediaTypeError,
    WabacastError,
)

# Lambda's limit for a synchronous invocation's request payload. The event around the body (headers, request
# context) takes some of it, so a body this large already fails in AWS before the function runs (API Gateway
# answers 413 itself); the check makes the API's own answer, and the local stack's, the same.
MAX_BODY_BYTES = 6 * 1024 * 1024
ADMIN_PREFIX = "/api/admin"
WHATSAPP_PREFIX = "/api/whatsapp"
# Provider webhooks (wabacast.api.webhooks): no API key, a signature checked by the route's service.
WEBHOOK_PREFIX = "/api/webhooks"


@dataclass(frozen=True)
class Caller:
    role: ApiKeyRole
    business_id: str | None


def caller_of(event: APIGatewayProxyEventV2) -> Caller:
    """Who the authorizer said the caller is (functions/api/authorizer.py); AuthenticationError for no one."""
    context = event.request_context.authorizer.get_lambda
    if not context or str(context.get("authenticated")).lower() != "true":
        raise AuthenticationError("a valid API key is required: send 'Authorization: Bearer <key>'")
    return Caller(ApiKeyRole(context["role"]), context.get("businessId") or None)


def _check_role(caller: Caller, path: str) -> None:
    if _under(path, ADMIN_PREFIX) and caller.role != ApiKeyRole.ADMIN:
        raise PermissionDeniedError("this route needs an admin API key")
    if _under(path, WHATSAPP_PREFIX) and (caller.role != ApiKeyRole.BUSINESS or caller.business_id is None):
        raise PermissionDeniedError("this route needs a business API key")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(f"{prefix}/")


def _body_bytes(event: APIGatewayProxyEventV2) -> int:
    body = event.body or ""
    if event.is_base64_encoded:
        return len(body) * 3 // 4
    return len(body.encode("utf-8", errors="surrogatepass"))


def parse_json_body(text: str) -> Any:
    """The JSON body deserializer of the resolver: RecursionError (JSON nested about a thousand levels deep) is a
    malformed request, not a server error."""
    try:
        return json.loads(text)
    except RecursionError:
        raise MalformedJsonError("the request body nests JSON too deeply to be read") from None


def _check_size(event: APIGatewayProxyEventV2) -> None:
    size = _body_bytes(event)
    if size > MAX_BODY_BYTES:
        raise PayloadTooLargeError(
            f"the request body is {size:,} bytes; the most a request can carry is {MAX_BODY_BYTES:,} bytes (6 MB)"
        )


def _check_body(event: APIGatewayProxyEventV2) -> None:
    if not event.body:
        return
    _check_size(event)
    content_type = (event.headers.get("content-type") or "").strip().lower()
    if content_type and not content_type.startswith("application/json"):
        raise UnsupportedMediaTypeError("send the body as application/json")
    try:
        body = event.json_body
    except (ValueError, binascii.Error):
        # json.JSONDecodeError, or a base64 body that does not decode.
        raise MalformedJsonError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        # Powertools' validation unwraps a list into its first element ([{...}, {...}] would pass as the first
        # object, the rest silently dropped), so anything but an object is refused here.
        raise InvalidInputError("the request body must be a JSON object")


# The resources a path names, for the logs: /api/whatsapp/accounts/<id>, /api/whatsapp/queue/<id>[/...],
# /api/admin/businesses/<id>/keys[/<keyId>].
_PATH_IDS = (
    (re.compile(r"^/api/whatsapp/accounts/([A-Za-z0-9_-]{1,64})(?:/|$)"), "account_id"),
    (re.compile(r"^/api/whatsapp/queue/([A-Za-z0-9_-]{1,64})(?:/|$)"), "queue_id"),
    (re.compile(r"^/api/admin/businesses/([A-Za-z0-9_-]{1,64})(?:/|$)"), "business_id"),
)


def request_log_keys(event: dict[str, Any]) -> dict[str, str]:
    """Logger correlation keys of an HTTP API event: the caller (business and key, as the authorizer said) and
    the resource its path names. Read from the raw event, before any check: a refused request is labelled too."""
    keys: dict[str, str] = {}
    context = ((event.get("requestContext") or {}).get("authorizer") or {}).get("lambda") or {}
    if context.get("businessId"):
        keys["business_id"] = str(context["businessId"])
    if context.get("keyId"):
        keys["key_id"] = str(context["keyId"])
    path = str(event.get("rawPath") or "")
    for pattern, name in _PATH_IDS:
        match = pattern.match(path)
        if match:
            keys[name] = match.group(1)
    return keys


def check_request(event: APIGatewayProxyEventV2, public_paths: tuple[str, ...]) -> None:
    """Raise the WabacastError for the first check the request fails (see the module docstring)."""
    if event.path in public_paths:
        return
    if _under(event.path, WEBHOOK_PREFIX):
        # Signed by the provider instead of keyed; Twilio posts a form, so only the size is checked here.
        _check_size(event)
        return
    _check_role(caller_of(event), event.path)
    _check_body(event)


class GuardedResolver(APIGatewayHttpResolver):
    """The HTTP API resolver with `check_request` in front of route matching and request validation."""

    def __init__(self, public_paths: tuple[str, ...]) -> None:
        super().__init__(enable_validation=True, json_body_deserializer=parse_json_body)
        self._public_paths = public_paths

    def _resolve(self) -> ResponseBuilder[Any]:
        try:
            check_request(self.current_event, self._public_paths)
        except WabacastError as error:
            return self._response_builder_class(response=wabacast_error_response(error), serializer=self._serializer)
        return super()._resolve()
