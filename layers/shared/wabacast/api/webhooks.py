"""Public webhook routes: no API key, a provider signature instead (checked by wabacast.logic.webhooks).

They are left out of the OpenAPI document: providers call them, not API clients (docs/api.md describes them).
The guard exempts them from the key check and the JSON checks (Twilio posts a form), never from the size limit.
"""

from __future__ import annotations

import base64
import binascii
import re
from http import HTTPStatus
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from wabacast.api.errors import IDENTIFIER_MAX_LENGTH, IDENTIFIER_PATTERN
from wabacast.errors import InvalidPathParameterError, InvalidSignatureError
from wabacast.logic.webhooks import WebhookResult, WebhookService
from wabacast.providers.webhooks import META_SIGNATURE_HEADER, TWILIO_SIGNATURE_HEADER

WEBHOOKS = "/api/webhooks"
META_WEBHOOK = f"{WEBHOOKS}/meta"
TWILIO_WEBHOOK = f"{WEBHOOKS}/twilio"
REFERENCE_PARAMETER = "ref"


def raw_body(event: APIGatewayProxyEventV2) -> bytes:
    """The body's bytes as the provider signed them (API Gateway base64-encodes bodies it deems binary)."""
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidSignatureError("the body is not what the provider signed") from None
    return body.encode("utf-8", errors="surrogateescape")


def public_url(event: APIGatewayProxyEventV2) -> str:
    """The URL as the caller requested it: API Gateway passes the caller's Host and the scheme it was reached by
    (X-Forwarded-Proto); the `$default` stage adds no path prefix. The local HTTP API passes the same headers."""
    headers = event.headers
    scheme = (headers.get("x-forwarded-proto") or "https").split(",")[0].strip()
    host = headers.get("host") or event.request_context.domain_name
    query = event.raw_query_string
    return f"{scheme}://{host}{event.raw_path}" + (f"?{query}" if query else "")


def _acknowledged(result: WebhookResult) -> Response[str]:
    body = (
        f'{{"applied":{result.applied},"unchanged":{result.unchanged},"unknown":{result.unknown},'
        f'"ignored":{result.ignored},"inbound":{result.inbound},"events":{result.events},'
        f'"healthChanges":{result.health_changes}}}'
    )
    return Response(HTTPStatus.OK, content_types.APPLICATION_JSON, body)


_ACCOUNT_ID = re.compile(IDENTIFIER_PATTERN)


def register_webhook_routes(app: APIGatewayHttpResolver, webhooks: WebhookService) -> None:
    @app.get(META_WEBHOOK, include_in_schema=False)
    def meta_handshake() -> Response[str]:
        event = app.current_event
        challenge = webhooks.meta_challenge(
            event.get_query_string_value("hub.mode"),
            event.get_query_string_value("hub.verify_token"),
            event.get_query_string_value("hub.challenge"),
        )
        return Response(HTTPStatus.OK, content_types.TEXT_PLAIN, challenge)

    @app.post(META_WEBHOOK, include_in_schema=False)
    def meta_notification() -> Response[str]:
        event = app.current_event
        result = webhooks.receive_meta(raw_body(event), event.headers.get(META_SIGNATURE_HEADER))
        return _acknowledged(result)

    @app.post(f"{TWILIO_WEBHOOK}/<account_id>", include_in_schema=False)
    def twilio_callback(account_id: str) -> Response[str]:
        if len(account_id) > IDENTIFIER_MAX_LENGTH or not _ACCOUNT_ID.match(account_id):
            raise InvalidPathParameterError("accountId: must be an account id", field="accountId")
        event = app.current_event
        body = raw_body(event).decode("utf-8", errors="replace")
        params = dict(parse_qsl(body, keep_blank_values=True))
        result = webhooks.receive_twilio(
            account_id,
            public_url(event),
            params,
            event.headers.get(TWILIO_SIGNATURE_HEADER),
            event.get_query_string_value(REFERENCE_PARAMETER),
        )
        return _acknowledged(result)
