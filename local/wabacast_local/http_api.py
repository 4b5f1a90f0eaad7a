"""Plays API Gateway HTTP API: route selection, the Lambda authorizer and the payload format 2.0 translation.

Everything here works on plain `HttpRequest` / `HttpResponse` values, with no socket in sight, so the translation
is unit-testable; `http_server.py` puts it behind a real HTTP listener.

Behaviour copied from the cloud (and relied on by the handlers):
  - the most specific route wins: literal paths beat `{param}` segments, which beat a greedy `{proxy+}`; an exact
    method beats `ANY`; no match answers 404 `{"message":"Not Found"}`;
  - a route with a Lambda authorizer answers 401 `{"message":"Unauthorized"}` without calling the authorizer when an
    identity source is missing or empty, 403 `{"message":"Forbidden"}` when the authorizer says no, and 500
    `{"message":"Internal Server Error"}` when it fails or answers something that is not a simple response;
  - authorizer results are cached per identity-source values (not per route) for the authorizer's TTL;
  - the integration gets `requestContext.authorizer.lambda` = the authorizer's `context`;
  - request headers are lowercased and repeated ones comma-joined; cookies move from the `cookie` header to
    `cookies`; repeated query parameters are comma-joined; bodies that are not text are base64-encoded;
  - a function error answers 500 `{"message":"Internal Server Error"}`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from wabacast_local.lambda_runtime import LOCAL_ACCOUNT_ID, FunctionError

LOGGER = logging.getLogger(__name__)

# A fixed id keeps ARNs and domain names stable between runs; real ids are 10 lowercase alphanumerics too.
LOCAL_API_ID = "wabalocal1"
DEFAULT_STAGE = "$default"

# API Gateway hands these content types to Lambda as text; everything else (forms, multipart, binaries, and bodies
# without a content type) arrives base64-encoded with isBase64Encoded=true.
_TEXT_MEDIA_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-yaml",
        "application/yaml",
        "application/graphql",
    }
)
_TEXT_MEDIA_SUFFIXES = ("+json", "+xml")

# Connection-level headers belong to the hop between client and API Gateway and never reach the integration
# (`expect: 100-continue`, sent by curl for larger bodies, is answered by the listener).
_HOP_BY_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect"}
)

Clock = Callable[[], float]


class LambdaInvoker(Protocol):
    """A function the gateway can invoke synchronously (see `LocalLambdaFunction`)."""

    @property
    def name(self) -> str: ...

    def invoke(self, event: Any) -> Any: ...


@dataclass(frozen=True)
class HttpRequest:
    """A request as it reached the gateway: the raw target split in path and query, headers in arrival order."""

    method: str
    raw_path: str
    raw_query_string: str = ""
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""


def gateway_error(status: int, message: str) -> HttpResponse:
    """The JSON error API Gateway itself answers with (the integration is not involved)."""
    return HttpResponse(
        status=status,
        headers=[("content-type", "application/json")],
        body=json.dumps({"message": message}, separators=(",", ":")).encode(),
    )


# ---------------------------------------------------------------------------------------------------------------
# Authorizer


@dataclass(frozen=True)
class AuthorizerDecision:
    is_authorized: bool
    context: dict[str, Any] | None


@dataclass
class LambdaAuthorizer:
    """An HTTP API Lambda authorizer, payload format 2.0, simple responses.

    `identity_sources` use API Gateway's selection expressions; `$request.header.<name>` and
    `$request.querystring.<name>` are supported. `result_ttl_seconds` = 0 disables caching.
    """

    function: LambdaInvoker
    identity_sources: tuple[str, ...] = ("$request.header.Authorization",)
    result_ttl_seconds: float = 0.0
    clock: Clock = time.monotonic
    _cache: dict[tuple[str, ...], tuple[float, AuthorizerDecision]] = field(default_factory=dict, init=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def identity(self, request: HttpRequest, query: dict[str, str] | None) -> tuple[str, ...] | None:
        """The identity-source values, or None when one is missing or empty (API Gateway then answers 401)."""
        values: list[str] = []
        for source in self.identity_sources:
            value = _select_identity_source(source, request, query)
            if not value:
                return None
            values.append(value)
        return tuple(values)

    def decide(self, identity: tuple[str, ...], event: dict[str, Any]) -> AuthorizerDecision:
        """Invoke the function (or reuse a cached decision). Raises FunctionError when it fails."""
        now = self.clock()
        if self.result_ttl_seconds > 0:
            with self._cache_lock:
                cached = self._cache.get(identity)
            if cached is not None and cached[0] > now:
                return cached[1]
        decision = _parse_simple_response(self.function.invoke(event), self.function.name)
        if self.result_ttl_seconds > 0:
            with self._cache_lock:
                self._cache[identity] = (now + self.result_ttl_seconds, decision)
        return decision


def _select_identity_source(source: str, request: HttpRequest, query: dict[str, str] | None) -> str | None:
    header_prefix = "$request.header."
    query_prefix = "$request.querystring."
    if source.startswith(header_prefix):
        values = request.header_values(source.removeprefix(header_prefix))
        return ",".join(values) if values else None
    if source.startswith(query_prefix):
        return (query or {}).get(source.removeprefix(query_prefix))
    raise ValueError(f"unsupported identity source {source!r}")


def _parse_simple_response(result: Any, function_name: str) -> AuthorizerDecision:
    if not isinstance(result, dict) or not isinstance(result.get("isAuthorized"), bool):
        LOGGER.error("authorizer %s returned no boolean isAuthorized: %r", function_name, result)
        raise FunctionError(f"{function_name} returned an invalid simple response")
    context = result.get("context")
    if context is not None and not isinstance(context, dict):
        LOGGER.error("authorizer %s returned a context that is not an object: %r", function_name, context)
        raise FunctionError(f"{function_name} returned an invalid simple response")
    return AuthorizerDecision(is_authorized=result["isAuthorized"], context=context)


# ---------------------------------------------------------------------------------------------------------------
# Routes


@dataclass(frozen=True)
class Route:
    """A route such as `GET /api/openapi.json` or `ANY /api/{proxy+}` with its Lambda integration."""

    method: str
    path: str
    integration: LambdaInvoker
    authorizer: LambdaAuthorizer | None = None

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, raw_path: str) -> RouteMatch | None:
        if self.method not in ("ANY", method.upper()):
            return None
        request_segments = raw_path.split("/")[1:]
        template_segments = self.path.split("/")[1:]
        parameters: dict[str, str] = {}
        literal_count = 0
        for index, template in enumerate(template_segments):
            if template.startswith("{") and template.endswith("+}"):
                rest = "/".join(request_segments[index:])
                if not rest:
                    return None
                parameters[template[1:-2]] = unquote(rest)
                return RouteMatch(self, parameters, (False, literal_count, self.method != "ANY"))
            if index >= len(request_segments):
                return None
            segment = request_segments[index]
            if template.startswith("{") and template.endswith("}"):
                if not segment:
                    return None
                parameters[template[1:-1]] = unquote(segment)
            elif template == segment:
                literal_count += 1
            else:
                return None
        if len(request_segments) != len(template_segments):
            return None
        return RouteMatch(self, parameters, (True, literal_count, self.method != "ANY"))


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]
    # Compared as a tuple: no greedy variable, then more literal segments, then an exact method.
    specificity: tuple[bool, int, bool]


def select_route(routes: Sequence[Route], method: str, raw_path: str) -> RouteMatch | None:
    matches = [match for route in routes if (match := route.match(method, raw_path)) is not None]
    return max(matches, key=lambda match: match.specificity, default=None)


# ---------------------------------------------------------------------------------------------------------------
# Payload format 2.0


def is_text_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return (
        media_type.startswith("text/") or media_type in _TEXT_MEDIA_TYPES or media_type.endswith(_TEXT_MEDIA_SUFFIXES)
    )


def event_headers(request: HttpRequest) -> dict[str, str]:
    """Lowercased names, repeated headers comma-joined, cookies and hop-by-hop headers removed, proxy headers added."""
    headers: dict[str, str] = {}
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie" or key in _HOP_BY_HOP_HEADERS:
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    if request.body:
        headers["content-length"] = str(len(request.body))
    forwarded_for = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded_for}, {request.source_ip}" if forwarded_for else request.source_ip
    headers.setdefault("x-forwarded-proto", "http")
    host = headers.get("host", "")
    headers.setdefault("x-forwarded-port", host.rsplit(":", 1)[1] if ":" in host else "80")
    headers.setdefault("x-amzn-trace-id", _trace_id())
    return headers


def event_cookies(request: HttpRequest) -> list[str]:
    return [
        cookie.strip() for header in request.header_values("cookie") for cookie in header.split(";") if cookie.strip()
    ]


def query_string_parameters(raw_query_string: str) -> dict[str, str] | None:
    """Decoded parameters, repeated values comma-joined; None when there are none (the key is then omitted)."""
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(raw_query_string, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    return parameters or None


def request_context(
    request: HttpRequest, route_key: str, request_id: str, headers: dict[str, str], now: datetime
) -> dict[str, Any]:
    # The domain is the one the client used, as in the cloud with a custom domain: absolute URLs built from it work.
    domain_name = headers.get("host") or f"{LOCAL_API_ID}.execute-api.localhost"
    return {
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": LOCAL_API_ID,
        "domainName": domain_name,
        "domainPrefix": domain_name.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": request.method.upper(),
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": DEFAULT_STAGE,
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }


@dataclass(frozen=True)
class TranslatedRequest:
    """The parts of the 2.0 payload shared by the authorizer event and the integration event."""

    route_key: str
    raw_path: str
    raw_query_string: str
    cookies: list[str]
    headers: dict[str, str]
    query: dict[str, str] | None
    path_parameters: dict[str, str]
    request_context: dict[str, Any]
    body: str | None
    is_base64_encoded: bool


def translate_request(request: HttpRequest, match: RouteMatch, request_id: str, now: datetime) -> TranslatedRequest:
    headers = event_headers(request)
    body: str | None = None
    is_base64_encoded = False
    if request.body:
        if is_text_content_type(headers.get("content-type")):
            body = request.body.decode("utf-8", errors="replace")
        else:
            body = base64.b64encode(request.body).decode("ascii")
            is_base64_encoded = True
    return TranslatedRequest(
        route_key=match.route.route_key,
        raw_path=request.raw_path,
        raw_query_string=request.raw_query_string,
        cookies=event_cookies(request),
        headers=headers,
        query=query_string_parameters(request.raw_query_string),
        path_parameters=match.path_parameters,
        request_context=request_context(request, match.route.route_key, request_id, headers, now),
        body=body,
        is_base64_encoded=is_base64_encoded,
    )


def integration_event(translated: TranslatedRequest, authorization: AuthorizerDecision | None) -> dict[str, Any]:
    """The event a Lambda proxy integration receives (payload format 2.0).

    `authorization` is None on a route without authorizer: then `requestContext` has no `authorizer` at all, while
    an authorizer that returned no context gives `{"lambda": null}`.
    """
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": translated.route_key,
        "rawPath": translated.raw_path,
        "rawQueryString": translated.raw_query_string,
    }
    if translated.cookies:
        event["cookies"] = translated.cookies
    event["headers"] = translated.headers
    if translated.query is not None:
        event["queryStringParameters"] = translated.query
    context = dict(translated.request_context)
    if authorization is not None:
        context["authorizer"] = {"lambda": authorization.context}
    event["requestContext"] = context
    if translated.path_parameters:
        event["pathParameters"] = translated.path_parameters
    if translated.body is not None:
        event["body"] = translated.body
    event["isBase64Encoded"] = translated.is_base64_encoded
    return event


def authorizer_event(
    translated: TranslatedRequest, identity: tuple[str, ...], method: str, region: str
) -> dict[str, Any]:
    """The event a Lambda authorizer receives (payload format 2.0, type REQUEST)."""
    route_arn = (
        f"arn:aws:execute-api:{region}:{LOCAL_ACCOUNT_ID}:{LOCAL_API_ID}/"
        f"{DEFAULT_STAGE}/{method.upper()}{translated.raw_path}"
    )
    event: dict[str, Any] = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": route_arn,
        "identitySource": list(identity),
        "routeKey": translated.route_key,
        "rawPath": translated.raw_path,
        "rawQueryString": translated.raw_query_string,
    }
    if translated.cookies:
        event["cookies"] = translated.cookies
    event["headers"] = translated.headers
    if translated.query is not None:
        event["queryStringParameters"] = translated.query
    event["requestContext"] = translated.request_context
    if translated.path_parameters:
        event["pathParameters"] = translated.path_parameters
    return event


def response_from_result(result: Any) -> HttpResponse:
    """Map a function result to the HTTP response, as API Gateway does for payload format 2.0.

    A result without `statusCode` is taken as the body of a 200 JSON response (a string as is, anything else
    serialized), exactly as the cloud infers it.
    """
    if not (isinstance(result, dict) and "statusCode" in result):
        inferred_body = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(status=200, headers=[("content-type", "application/json")], body=inferred_body.encode())
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise FunctionError(f"invalid statusCode {status!r}")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((name, _header_value(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, _header_value(value)) for value in values)
    headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or [])
    raw_body = result.get("body")
    if raw_body is None:
        body = b""
    elif result.get("isBase64Encoded"):
        try:
            body = base64.b64decode(str(raw_body), validate=True)
        except binascii.Error as error:
            raise FunctionError("isBase64Encoded is true but the body is not base64") from error
    elif isinstance(raw_body, str):
        body = raw_body.encode()
    else:
        raise FunctionError(f"body must be a string, got {type(raw_body).__name__}")
    return HttpResponse(status=status, headers=headers, body=body)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def new_request_id() -> str:
    # API Gateway's request ids look like "JKJaXmPLvHcESHA=": base64 of 10 random bytes.
    return base64.b64encode(uuid.uuid4().bytes[:10]).decode("ascii")


# ---------------------------------------------------------------------------------------------------------------
# The API


@dataclass
class HttpApi:
    """An HTTP API with `$default` stage and auto-deploy: routes in, `HttpResponse` out."""

    routes: Sequence[Route]
    region: str = "us-east-1"

    def handle(self, request: HttpRequest) -> HttpResponse:
        request_id = new_request_id()
        response = self._handle(request, request_id)
        # API Gateway stamps every response with its request id, which also ties client logs to function logs.
        return HttpResponse(
            status=response.status,
            headers=[*response.headers, ("apigw-requestid", request_id)],
            body=response.body,
        )

    def _handle(self, request: HttpRequest, request_id: str) -> HttpResponse:
        match = select_route(self.routes, request.method, request.raw_path)
        if match is None:
            return gateway_error(404, "Not Found")
        translated = translate_request(request, match, request_id, datetime.now(UTC))
        decision: AuthorizerDecision | None = None
        authorizer = match.route.authorizer
        if authorizer is not None:
            identity = authorizer.identity(request, translated.query)
            if identity is None:
                return gateway_error(401, "Unauthorized")
            event = authorizer_event(translated, identity, request.method, self.region)
            try:
                decision = authorizer.decide(identity, event)
            except FunctionError:
                return gateway_error(500, "Internal Server Error")
            if not decision.is_authorized:
                return gateway_error(403, "Forbidden")
        try:
            result = match.route.integration.invoke(integration_event(translated, decision))
            return response_from_result(result)
        except FunctionError as error:
            LOGGER.error("%s %s: %s", request.method, request.raw_path, error)
            return gateway_error(500, "Internal Server Error")
