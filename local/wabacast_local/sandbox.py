"""The sandbox WhatsApp provider: a local server that speaks the Meta Cloud API send endpoint.

`POST /{version}/{phone_number_id}/messages` is validated the way Meta validates it and answered with Meta-shaped
bodies: `{"messages": [{"id": "wamid..."}]}` on success, `{"error": {"message", "type", "code", "error_data",
"fbtrace_id"}}` otherwise. Sandbox accounts send here with their account id as the phone number id.

Chaos settings (constructor arguments, `configure(...)`, or `POST /config` with camelCase JSON keys):

- `latency_ms` + `jitter_ms`: every send answer waits latency + uniform(0, jitter) ms. The message is decided and
  recorded *before* the wait, as a real provider would, so a client that times out meanwhile has an unknown
  outcome although the message was accepted.
- `failure_rate`: share of valid sends answered 500 with `failure_code` (131000 by default, or 1 / 2 / 131016).
- `rate_429`: share of valid sends answered 429 with code 130429.
- `throughput_per_number`: messages/s accepted per phone number id (a sliding one-second window); beyond it,
  429 with code 130429. None means unlimited.
- `recipient_errors`: {"<to digits>": <Meta code>}: that recipient always gets that error (131050 opted out,
  131026 undeliverable, 190 token expired, ...), for scripted end-to-end scenarios.
- `seed`: makes the random draws (failures, 429s, jitter, message ids) repeatable for a given request order.
- `callback_url` + `app_secret`: where signed Meta-format status callbacks (sent, delivered, read) of accepted
  messages are posted (see wabacast_local.sandbox_callbacks); with either unset, no callbacks. The local stack sets
  both to its own `/api/webhooks/meta` and app secret once its HTTP API is up.
- `delivered_delay_ms` / `read_delay_ms`: [low, high] ranges before delivered (after sent) and before read (after
  delivered); `read_rate`: share of messages read; `callback_loss_rate`, `callback_duplicate_rate`: share of
  callbacks never posted / posted twice; `callback_reorder_rate`: share of read messages whose read is posted
  before their delivered.
- `access_token`: when set, only `Authorization: Bearer <access_token>` is accepted; otherwise any bearer token.

Graph reads (wabacast_local.sandbox_graph): `GET /{version}/{id}?fields=...` answers a phone number's health and
`GET /{version}/{id}/message_templates` its WABA's template catalogue (sandbox accounts use their id for both);
`GET|POST /numbers/{id}` and `GET|POST /templates` read and change them, and a change posts Meta's signed
`phone_number_quality_update` / `message_template_status_update` where the status callbacks go. Sends are priced
(in their status callbacks) in the catalogue category of their template, marketing for one it does not know; a
catalogue template PAUSED or DISABLED is refused with 132015 / 132016.

Inspection: `GET /callbacks[?messageId=...&limit=...]` lists the callbacks posted (or lost) with the answers
received, and a summary; `GET /messages[?phoneNumberId=...&limit=...]` lists accepted messages (only accepted ones),
`DELETE /messages` forgets them and resets the counters, `GET /stats` shows the counters, `GET /config` the
settings, `GET /health` says it is up. Run it alone with `python -m wabacast_local.sandbox --port 8081`.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wabacast_local.sandbox_callbacks import CallbackChaos, CallbackDispatcher, CallbackTarget, plan_callbacks
from wabacast_local.sandbox_graph import Notification, SandboxGraph, SandboxGraphError

SEND_PATH = re.compile(r"^/(?P<version>v[0-9]+\.[0-9]+)/(?P<phone_number_id>[A-Za-z0-9_.-]{1,128})/messages/?$")
GRAPH_NODE_PATH = re.compile(r"^/(?P<version>v[0-9]+\.[0-9]+)/(?P<node_id>[A-Za-z0-9_.-]{1,128})/?$")
TEMPLATES_PATH = re.compile(r"^/(?P<version>v[0-9]+\.[0-9]+)/(?P<waba_id>[A-Za-z0-9_.-]{1,128})/message_templates/?$")
NUMBER_CONTROL_PATH = re.compile(r"^/numbers/(?P<phone_number_id>[A-Za-z0-9_.-]{1,128})/?$")
TO_PATTERN = re.compile(r"^\+?[0-9]{7,15}$")
TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
COMPONENT_TYPES = frozenset({"header", "body", "button"})
MEDIA_HEADER_TYPES = frozenset({"image", "document", "video"})
# A button's parameter type per sub_type.
BUTTON_PARAMETER = {"quick_reply": "payload", "url": "text"}
MAX_BODY_BYTES = 1_000_000
RATE_LIMIT_CODE = 130429

# Meta error code -> (HTTP status, error type, message), as the Cloud API answers them.
META_ERRORS: dict[int, tuple[int, str, str]] = {
    1: (500, "OAuthException", "An unknown error occurred"),
    2: (503, "OAuthException", "Service temporarily unavailable"),
    100: (400, "OAuthException", "(#100) Invalid parameter"),
    190: (401, "OAuthException", "Error validating access token: Session has expired"),
    368: (403, "OAuthException", "(#368) Temporarily blocked for policies violations"),
    130429: (429, "OAuthException", "(#130429) Rate limit hit"),
    131000: (500, "OAuthException", "(#131000) Something went wrong"),
    131008: (400, "OAuthException", "(#131008) Required parameter is missing"),
    131009: (400, "OAuthException", "(#131009) Parameter value is not valid"),
    131016: (503, "OAuthException", "(#131016) Service unavailable"),
    131026: (400, "OAuthException", "(#131026) Message Undeliverable"),
    131031: (403, "OAuthException", "(#131031) Business Account locked"),
    131047: (400, "OAuthException", "(#131047) Re-engagement message"),
    131048: (400, "OAuthException", "(#131048) Spam rate limit hit"),
    131049: (400, "OAuthException", "(#131049) This message was not delivered to maintain healthy ecosystem"),
    131050: (
        400,
        "OAuthException",
        "(#131050) Unable to deliver the message. This recipient has chosen to stop receiving marketing messages",
    ),
    131051: (400, "OAuthException", "(#131051) Unsupported message type"),
    131056: (400, "OAuthException", "(#131056) (Business Account, Consumer Account) pair rate limit hit"),
    132000: (400, "OAuthException", "(#132000) Number of parameters does not match the expected number of params"),
    132001: (404, "OAuthException", "(#132001) Template name does not exist in the translation"),
    132015: (400, "OAuthException", "(#132015) Template is Paused"),
    132016: (400, "OAuthException", "(#132016) Template is Disabled"),
}

_CONFIG_KEYS: dict[str, str] = {
    "latencyMs": "latency_ms",
    "jitterMs": "jitter_ms",
    "failureRate": "failure_rate",
    "failureCode": "failure_code",
    "rate429": "rate_429",
    "throughputPerNumber": "throughput_per_number",
    "seed": "seed",
    "callbackUrl": "callback_url",
    "recipientErrors": "recipient_errors",
    "accessToken": "access_token",
    "appSecret": "app_secret",
    "deliveredDelayMs": "delivered_delay_ms",
    "readDelayMs": "read_delay_ms",
    "readRate": "read_rate",
    "callbackLossRate": "callback_loss_rate",
    "callbackDuplicateRate": "callback_duplicate_rate",
    "callbackReorderRate": "callback_reorder_rate",
}


class SandboxConfigError(ValueError):
    pass


@dataclass(frozen=True)
class SandboxConfig:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    failure_rate: float = 0.0
    failure_code: int = 131000
    rate_429: float = 0.0
    throughput_per_number: float | None = None
    seed: int | None = None
    callback_url: str | None = None
    recipient_errors: dict[str, int] = field(default_factory=dict)
    access_token: str | None = None
    app_secret: str | None = None
    delivered_delay_ms: tuple[float, float] = (200.0, 1500.0)
    read_delay_ms: tuple[float, float] = (1000.0, 5000.0)
    read_rate: float = 0.6
    callback_loss_rate: float = 0.0
    callback_duplicate_rate: float = 0.0
    callback_reorder_rate: float = 0.0

    def __post_init__(self) -> None:
        def number(name: str, value: object, low: float, high: float) -> None:
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise SandboxConfigError(f"{name} must be a number between {low:g} and {high:g}")

        number("latency_ms", self.latency_ms, 0, 600_000)
        number("jitter_ms", self.jitter_ms, 0, 600_000)
        number("failure_rate", self.failure_rate, 0, 1)
        number("rate_429", self.rate_429, 0, 1)
        if self.failure_rate + self.rate_429 > 1:
            raise SandboxConfigError("failure_rate + rate_429 must not exceed 1")
        if self.throughput_per_number is not None:
            number("throughput_per_number", self.throughput_per_number, 0.001, 1_000_000)
        if isinstance(self.failure_code, bool) or not isinstance(self.failure_code, int) or self.failure_code < 0:
            raise SandboxConfigError("failure_code must be a Meta error code (e.g. 131000, 1, 2, 131016)")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise SandboxConfigError("seed must be an integer or null")
        for name in ("read_rate", "callback_loss_rate", "callback_duplicate_rate", "callback_reorder_rate"):
            number(name, getattr(self, name), 0, 1)
        for name in ("delivered_delay_ms", "read_delay_ms"):
            value = getattr(self, name)
            if not isinstance(value, tuple | list) or len(value) != 2:
                raise SandboxConfigError(f"{name} must be a [low, high] range of milliseconds")
            number(f"{name}[0]", value[0], 0, 3_600_000)
            number(f"{name}[1]", value[1], value[0], 3_600_000)
        for name, text in (
            ("callback_url", self.callback_url),
            ("access_token", self.access_token),
            ("app_secret", self.app_secret),
        ):
            if text is not None and (not isinstance(text, str) or not text):
                raise SandboxConfigError(f"{name} must be a non-empty string or null")
        if not isinstance(self.recipient_errors, dict) or not all(
            isinstance(to, str) and isinstance(code, int) and not isinstance(code, bool)
            for to, code in self.recipient_errors.items()
        ):
            raise SandboxConfigError(
                'recipient_errors must map recipient digits to Meta codes: {"34600000001": 131050}'
            )

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        shown = {camel: values[snake] for camel, snake in _CONFIG_KEYS.items()}
        shown["accessToken"] = None if self.access_token is None else "***"
        shown["appSecret"] = None if self.app_secret is None else "***"
        shown["deliveredDelayMs"] = list(self.delivered_delay_ms)
        shown["readDelayMs"] = list(self.read_delay_ms)
        return shown

    def updated(self, changes: dict[str, Any]) -> SandboxConfig:
        """A copy with `changes` applied; keys may be camelCase (as in POST /config) or snake_case."""
        snake: dict[str, Any] = {}
        known = set(_CONFIG_KEYS.values())
        for key, value in changes.items():
            name = _CONFIG_KEYS.get(key, key)
            if name not in known:
                raise SandboxConfigError(f"unknown setting {key!r} (known: {', '.join(sorted(_CONFIG_KEYS))})")
            if name == "recipient_errors" and isinstance(value, dict):
                value = {str(to).removeprefix("+"): code for to, code in value.items()}
            if name in ("delivered_delay_ms", "read_delay_ms") and isinstance(value, list):
                value = tuple(value)
            snake[name] = value
        return replace(self, **snake)

    def callback_chaos(self) -> CallbackChaos:
        return CallbackChaos(
            delivered_delay_ms=(float(self.delivered_delay_ms[0]), float(self.delivered_delay_ms[1])),
            read_delay_ms=(float(self.read_delay_ms[0]), float(self.read_delay_ms[1])),
            read_rate=self.read_rate,
            loss_rate=self.callback_loss_rate,
            duplicate_rate=self.callback_duplicate_rate,
            reorder_rate=self.callback_reorder_rate,
        )

    def callback_target(self) -> CallbackTarget | None:
        if self.callback_url is None or self.app_secret is None:
            return None
        return CallbackTarget(url=self.callback_url, app_secret=self.app_secret)


def validate_send_body(body: Any) -> tuple[int, str] | None:
    """Check a send body like the Cloud API does: None when valid, else (Meta error code, details)."""
    if not isinstance(body, dict):
        return 100, "The request body must be a JSON object"
    if body.get("messaging_product") != "whatsapp":
        return 100, "The parameter messaging_product is required and must be 'whatsapp'"
    if body.get("recipient_type", "individual") != "individual":
        return 100, "The parameter recipient_type must be 'individual'"
    to = body.get("to")
    if to is None:
        return 100, "The parameter to is required"
    if not isinstance(to, str) or not TO_PATTERN.match(to):
        return 131026, "The recipient phone number is not a valid WhatsApp number (digits only, E.164 without +)"
    message_type = body.get("type")
    if message_type is None:
        return 100, "The parameter type is required"
    if message_type != "template":
        return 131051, f"Message type {message_type!r} is not supported by the sandbox: send type 'template'"
    template = body.get("template")
    if not isinstance(template, dict):
        return 100, "The parameter template is required and must be an object"
    name = template.get("name")
    if not isinstance(name, str) or not name:
        return 100, "The parameter template['name'] is required"
    if not TEMPLATE_NAME.match(name):
        return 132001, f"Template name {name!r} does not exist in the translation"
    language = template.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(code, str) or not LANGUAGE_CODE.match(code):
        return 100, "The parameter template['language']['code'] is required and must be a language code like en_US"
    components = template.get("components", [])
    if not isinstance(components, list):
        return 100, "The parameter template['components'] must be an array"
    for index, component in enumerate(components):
        problem = _component_problem(index, component)
        if problem is not None:
            return problem
    return None


def _component_problem(index: int, component: Any) -> tuple[int, str] | None:
    where = f"template['components'][{index}]"
    if not isinstance(component, dict) or component.get("type") not in COMPONENT_TYPES:
        return 100, f"{where}['type'] must be one of {', '.join(sorted(COMPONENT_TYPES))}"
    parameters = component.get("parameters", [])
    if not isinstance(parameters, list):
        return 100, f"{where}['parameters'] must be an array"
    if component["type"] == "header":
        return _header_problem(where, parameters)
    if component["type"] == "button":
        return _button_problem(where, component, parameters)
    named = 0
    for position, parameter in enumerate(parameters):
        spot = f"{where}['parameters'][{position}]"
        if not isinstance(parameter, dict) or parameter.get("type") != "text":
            return 100, f"{spot}['type'] must be 'text' in the sandbox"
        text = parameter.get("text")
        if not isinstance(text, str):
            return 131008, f"{spot}['text'] is required"
        if not text.strip():
            return 131009, f"{spot}['text'] must not be empty"
        if "parameter_name" in parameter:
            name = parameter["parameter_name"]
            if not isinstance(name, str) or not PARAMETER_NAME.match(name):
                return 100, f"{spot}['parameter_name'] is not a valid parameter name"
            named += 1
    if 0 < named < len(parameters):
        return 100, f"{where}: parameter_name must be set on all parameters or on none"
    return None


def _header_problem(where: str, parameters: list[Any]) -> tuple[int, str] | None:
    """One parameter: {"type": "text", "text"} or {"type": "image"|"document"|"video", <type>: {"link": https URL}}."""
    if len(parameters) != 1 or not isinstance(parameters[0], dict):
        return 132000, f"{where}: a header takes exactly one parameter"
    parameter = parameters[0]
    kind = parameter.get("type")
    spot = f"{where}['parameters'][0]"
    if kind == "text":
        text = parameter.get("text")
        return None if isinstance(text, str) and text.strip() else (131009, f"{spot}['text'] must not be empty")
    if kind not in MEDIA_HEADER_TYPES:
        return 100, f"{spot}['type'] must be text, {', '.join(sorted(MEDIA_HEADER_TYPES))}"
    media = parameter.get(kind)
    link = media.get("link") if isinstance(media, dict) else None
    if not isinstance(link, str) or not link.startswith("https://"):
        return 131008, f"{spot}['{kind}']['link'] is required and must be an https URL"
    return None


def _button_problem(where: str, component: dict[str, Any], parameters: list[Any]) -> tuple[int, str] | None:
    """{"type": "button", "sub_type": quick_reply|url, "index": "0".."9", "parameters": [payload | text]}."""
    sub_type = component.get("sub_type")
    if sub_type not in BUTTON_PARAMETER:
        return 100, f"{where}['sub_type'] must be one of {', '.join(sorted(BUTTON_PARAMETER))}"
    index = component.get("index")
    if not isinstance(index, str) or not index.isdigit() or not 0 <= int(index) <= 9:
        return 100, f"{where}['index'] must be a string from '0' to '9'"
    expected = BUTTON_PARAMETER[sub_type]
    if len(parameters) != 1 or not isinstance(parameters[0], dict) or parameters[0].get("type") != expected:
        return 132000, f"{where}: a {sub_type} button takes one parameter of type {expected!r}"
    value = parameters[0].get(expected)
    if not isinstance(value, str) or not value.strip():
        return 131009, f"{where}['parameters'][0]['{expected}'] must not be empty"
    return None


def meta_error_body(
    code: int, details: str | None = None, *, fbtrace_id: str = "Sandbox"
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of a Meta error answer for `code`."""
    status, error_type, message = META_ERRORS.get(code, (400, "OAuthException", f"(#{code}) Sandbox forced error"))
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code, "fbtrace_id": fbtrace_id}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return status, {"error": error}


def authorization_problem(config: SandboxConfig, authorization: str | None) -> str | None:
    """Why a Graph call's Authorization header is refused (Meta code 190), or None."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    if not authorization or not authorization.startswith("Bearer ") or not token:
        return "Missing or malformed Authorization: Bearer <access token> header"
    if config.access_token is not None and token != config.access_token:
        return "The access token is not valid for this phone number"
    return None


@dataclass(frozen=True)
class SendOutcome:
    status: int
    body: dict[str, Any]
    delay_s: float
    accepted: dict[str, Any] | None = None


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _variables_of(parameters: list[dict[str, Any]]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for position, parameter in enumerate(parameters, start=1):
        key = parameter.get("parameter_name") or str(position)
        variables[str(key)] = str(parameter.get("text", ""))
    return variables


class SandboxState:
    """Settings, random source, accepted messages and counters; every method is thread-safe."""

    def __init__(
        self, config: SandboxConfig, max_records: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._config = config
        self._random = self._new_random(config.seed)
        self._records: deque[dict[str, Any]] = deque(maxlen=max_records)
        self._windows: dict[str, deque[float]] = {}
        self._counters: Counter[str] = Counter()
        # Phone numbers' health and template catalogues (the Graph reads); its own lock.
        self.graph = SandboxGraph()

    @staticmethod
    def _new_random(seed: int | None) -> random.Random:
        return random.Random(seed)  # noqa: S311 - chaos draws, not cryptography

    @property
    def config(self) -> SandboxConfig:
        with self._lock:
            return self._config

    def configure(self, changes: dict[str, Any]) -> SandboxConfig:
        with self._lock:
            updated = self._config.updated(changes)
            if "seed" in changes:
                self._random = self._new_random(updated.seed)
            if updated.throughput_per_number != self._config.throughput_per_number:
                self._windows.clear()
            self._config = updated
            return updated

    def messages(self, phone_number_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            records = [dict(record) for record in self._records]
        if phone_number_id is not None:
            records = [record for record in records if record["phoneNumberId"] == phone_number_id]
        return records[-limit:] if limit else records

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._windows.clear()
            self._counters.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counters = dict(self._counters)
            recorded = len(self._records)
        by_code = {key.removeprefix("code:"): value for key, value in counters.items() if key.startswith("code:")}
        return {
            "requests": counters.get("requests", 0),
            "accepted": counters.get("accepted", 0),
            "rejected": counters.get("rejected", 0),
            "throttled": counters.get("throttled", 0),
            "injected429": counters.get("injected429", 0),
            "injectedFailures": counters.get("injectedFailures", 0),
            "recorded": recorded,
            "rejectedByCode": by_code,
        }

    def handle_send(
        self, version: str, phone_number_id: str, authorization: str | None, raw_body: bytes
    ) -> SendOutcome:
        with self._lock:
            self._counters["requests"] += 1
            config = self._config
            jitter_ms = self._random.uniform(0, config.jitter_ms) if config.jitter_ms else 0.0
            delay_s = (config.latency_ms + jitter_ms) / 1000
            outcome = self._decide(config, version, phone_number_id, authorization, raw_body, delay_s)
            if outcome.accepted is not None:
                self._counters["accepted"] += 1
                self._records.append(outcome.accepted)
            else:
                self._counters["rejected"] += 1
                code = outcome.body.get("error", {}).get("code")
                self._counters[f"code:{code}"] += 1
            return outcome

    def _decide(
        self,
        config: SandboxConfig,
        version: str,
        phone_number_id: str,
        authorization: str | None,
        raw_body: bytes,
        delay_s: float,
    ) -> SendOutcome:
        # Always two draws per request, whatever the answer, so a seed gives the same sequence of outcomes.
        draw = self._random.random()
        id_bits = self._random.getrandbits(96) if config.seed is not None else uuid.uuid4().int >> 32

        def error(code: int, details: str | None = None) -> SendOutcome:
            status, body = meta_error_body(code, details, fbtrace_id=f"Sbx{id_bits:024x}"[:27])
            return SendOutcome(status, body, delay_s)

        refused = authorization_problem(config, authorization)
        if refused is not None:
            return error(190, refused)
        try:
            body = json.loads(raw_body.decode("utf-8")) if raw_body else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            return error(100, "The request body is not valid JSON")
        problem = validate_send_body(body)
        if problem is not None:
            return error(*problem)
        assert isinstance(body, dict)
        digits = str(body["to"]).removeprefix("+")
        forced = config.recipient_errors.get(digits)
        if forced is not None:
            return error(forced, f"Sandbox: recipient {digits} is configured to fail with {forced}")
        template = body["template"]
        # Sandbox accounts use their id as the WABA id too: the number's own catalogue prices and checks the send.
        category, template_error = self.graph.send_check(
            phone_number_id, template["name"], template["language"]["code"]
        )
        if template_error is not None:
            return error(template_error, f"Sandbox: template {template['name']!r} is not sendable in its state")
        if not self._take_slot(config, phone_number_id):
            self._counters["throttled"] += 1
            return error(RATE_LIMIT_CODE, f"Throughput of {config.throughput_per_number:g} msg/s per number exceeded")
        if draw < config.rate_429:
            self._counters["injected429"] += 1
            self._release_slot(phone_number_id)
            return error(RATE_LIMIT_CODE, "Sandbox: injected rate limit (rate_429)")
        if draw < config.rate_429 + config.failure_rate:
            self._counters["injectedFailures"] += 1
            self._release_slot(phone_number_id)
            return error(config.failure_code, "Sandbox: injected failure (failure_rate)")
        message_id = f"wamid.SBX{id_bits:024X}"
        parameters = [
            dict(parameter)
            for component in template.get("components", [])
            if component.get("type") == "body"
            for parameter in component.get("parameters", [])
        ]
        record = {
            "id": message_id,
            "to": digits,
            "phoneNumberId": phone_number_id,
            "apiVersion": version,
            "template": template["name"],
            "language": template["language"]["code"],
            # Meta's pricing category of the template: the status callbacks bill the message with it.
            "category": category,
            "parameters": parameters,
            "variables": _variables_of(parameters),
            # Echoed in the status callbacks as biz_opaque_callback_data, as Meta does.
            "callbackData": body.get("biz_opaque_callback_data")
            if isinstance(body.get("biz_opaque_callback_data"), str)
            else None,
            "receivedAt": _iso_now(),
        }
        response = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": digits}],
            "messages": [{"id": message_id, "message_status": "accepted"}],
        }
        return SendOutcome(200, response, delay_s, accepted=record)

    def _take_slot(self, config: SandboxConfig, phone_number_id: str) -> bool:
        rate = config.throughput_per_number
        if rate is None:
            return True
        # At most `capacity` accepted sends in any window: 1 s for rates >= 1/s, 1/rate s below.
        window_s = max(1.0, 1.0 / rate)
        capacity = max(1, round(rate * window_s))
        now = self._clock()
        window = self._windows.setdefault(phone_number_id, deque())
        while window and now - window[0] >= window_s:
            window.popleft()
        if len(window) >= capacity:
            return False
        window.append(now)
        return True

    def _release_slot(self, phone_number_id: str) -> None:
        # An injected failure was not accepted: it must not use up throughput.
        window = self._windows.get(phone_number_id)
        if window:
            window.pop()


class _SandboxHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        super().__init__(address, _SandboxHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (e.g. timed out during the latency) is expected; say nothing.
        return


class _SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "wabacast-sandbox/1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls
    timeout = 60  # idle keep-alive connections are closed after a minute
    server: _SandboxHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.sandbox.quiet:
            super().log_message(format, *args)

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _read_body(self) -> bytes | None:
        length_header = self.headers.get("Content-Length")
        try:
            length = int(length_header) if length_header else 0
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, body: Any) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _not_found(self) -> None:
        _, body = meta_error_body(100, f"Unknown path {self.command} {urlsplit(self.path).path}")
        self._send_json(HTTPStatus.NOT_FOUND, body)

    # -- routes -----------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        sandbox = self.server.sandbox
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/health":
            self._send_json(200, {"status": "ok", "accepted": sandbox.state.stats()["accepted"]})
        elif parts.path == "/messages":
            limit_text = (query.get("limit") or [""])[0]
            limit = int(limit_text) if limit_text.isdigit() else None
            phone_number_id = query["phoneNumberId"][0] if query.get("phoneNumberId") else None
            self._send_json(200, {"messages": sandbox.state.messages(phone_number_id, limit)})
        elif parts.path == "/callbacks":
            limit_text = (query.get("limit") or [""])[0]
            limit = int(limit_text) if limit_text.isdigit() else None
            message_id = query["messageId"][0] if query.get("messageId") else None
            self._send_json(
                200,
                {
                    "summary": sandbox.callbacks.summary(),
                    "callbacks": sandbox.callbacks.log(message_id, limit),
                },
            )
        elif parts.path == "/stats":
            self._send_json(200, sandbox.state.stats())
        elif parts.path == "/config":
            self._send_json(200, sandbox.state.config.to_json())
        elif parts.path == "/templates":
            waba_id = (query.get("wabaId") or [""])[0]
            if not waba_id:
                self._send_json(400, {"error": {"message": "GET /templates needs ?wabaId=<account id>", "code": 100}})
                return
            templates = sandbox.state.graph.templates(waba_id)
            self._send_json(200, {"templates": [template.to_json(waba_id) for template in templates]})
        elif (number := NUMBER_CONTROL_PATH.match(parts.path)) is not None:
            phone_number_id = number["phone_number_id"]
            self._send_json(200, sandbox.state.graph.number(phone_number_id).to_json(phone_number_id))
        else:
            self._graph_read(parts.path, query)

    def _graph_read(self, path: str, query: dict[str, list[str]]) -> None:
        """The Graph API reads: a phone number node, or a WABA's message templates (wabacast_local.sandbox_graph)."""
        graph = self.server.sandbox.state.graph
        templates = TEMPLATES_PATH.match(path)
        node = GRAPH_NODE_PATH.match(path) if templates is None else None
        if templates is None and node is None:
            self._not_found()
            return
        authorization = self.headers.get("Authorization")
        refused = authorization_problem(self.server.sandbox.state.config, authorization)
        if refused is not None:
            status, body = meta_error_body(190, refused)
            self._send_json(status, body)
            return
        if node is not None:
            fields = (query.get("fields") or [""])[0]
            self._send_json(200, graph.phone_node(node["node_id"], fields or None))
            return
        assert templates is not None
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_port}"
        token = (authorization or "").removeprefix("Bearer ").strip()
        status, body = graph.template_page(
            templates["waba_id"],
            limit=(query.get("limit") or [""])[0] or None,
            after=(query.get("after") or [""])[0] or None,
            next_base=f"http://{host}{path}",
            access_token=token or None,
        )
        self._send_json(status, body)

    def do_DELETE(self) -> None:
        self._read_body()
        if urlsplit(self.path).path == "/messages":
            self.server.sandbox.state.clear()
            self._send_json(200, {"messages": []})
        elif urlsplit(self.path).path == "/callbacks":
            self.server.sandbox.callbacks.clear()
            self._send_json(200, {"callbacks": []})
        else:
            self._not_found()

    def do_POST(self) -> None:
        sandbox = self.server.sandbox
        raw = self._read_body()
        if raw is None:
            _, body = meta_error_body(100, f"The request body must be at most {MAX_BODY_BYTES} bytes")
            self._send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, body)
            return
        path = urlsplit(self.path).path
        if path == "/config":
            self._configure(raw)
            return
        if path == "/templates" or NUMBER_CONTROL_PATH.match(path):
            self._control(path, raw)
            return
        match = SEND_PATH.match(path)
        if match is None:
            self._not_found()
            return
        outcome = sandbox.state.handle_send(
            match["version"], match["phone_number_id"], self.headers.get("Authorization"), raw
        )
        if outcome.accepted is not None:
            sandbox._after_accept(outcome.accepted, outcome.delay_s)
        if outcome.delay_s > 0 and sandbox.wait_or_stopped(outcome.delay_s):
            self.close_connection = True
            return
        self._send_json(outcome.status, outcome.body)

    def _control(self, path: str, raw: bytes) -> None:
        """POST /numbers/{id} or POST /templates: change what the Graph reads answer; posts the account webhook."""
        sandbox = self.server.sandbox
        try:
            changes = json.loads(raw.decode("utf-8")) if raw else {}
            if not isinstance(changes, dict):
                raise SandboxGraphError(f"POST {path} takes a JSON object")
            number = NUMBER_CONTROL_PATH.match(path)
            if number is not None:
                answer = sandbox.update_number(number["phone_number_id"], changes)
            else:
                answer = sandbox.put_template(changes)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._send_json(400, {"error": {"message": "The request body is not valid JSON", "code": 100}})
        except SandboxGraphError as error:
            self._send_json(400, {"error": {"message": str(error), "code": 100}})
        else:
            self._send_json(200, answer)

    def _configure(self, raw: bytes) -> None:
        try:
            changes = json.loads(raw.decode("utf-8")) if raw else {}
            if not isinstance(changes, dict):
                raise SandboxConfigError("POST /config takes a JSON object of settings")
            config = self.server.sandbox.state.configure(changes)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._send_json(400, {"error": {"message": "The request body is not valid JSON", "code": 100}})
        except (SandboxConfigError, TypeError) as error:
            self._send_json(400, {"error": {"message": str(error), "code": 100}})
        else:
            self._send_json(200, config.to_json())


class SandboxServer:
    """The sandbox provider on a background thread: `start()`, then send to `url`; `stop()` when done.

    Embeddable: `with SandboxServer(failure_rate=0.1, seed=7) as sandbox: ... sandbox.url ...`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        failure_rate: float = 0.0,
        failure_code: int = 131000,
        rate_429: float = 0.0,
        throughput_per_number: float | None = None,
        seed: int | None = None,
        callback_url: str | None = None,
        recipient_errors: dict[str, int] | None = None,
        access_token: str | None = None,
        app_secret: str | None = None,
        delivered_delay_ms: tuple[float, float] = (200.0, 1500.0),
        read_delay_ms: tuple[float, float] = (1000.0, 5000.0),
        read_rate: float = 0.6,
        callback_loss_rate: float = 0.0,
        callback_duplicate_rate: float = 0.0,
        callback_reorder_rate: float = 0.0,
        max_records: int = 100_000,
        on_accepted: Callable[[dict[str, Any]], None] | None = None,
        quiet: bool = True,
    ) -> None:
        config = SandboxConfig(
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            failure_rate=failure_rate,
            failure_code=failure_code,
            rate_429=rate_429,
            throughput_per_number=throughput_per_number,
            seed=seed,
            callback_url=callback_url,
            recipient_errors={to.removeprefix("+"): code for to, code in (recipient_errors or {}).items()},
            access_token=access_token,
            app_secret=app_secret,
            delivered_delay_ms=delivered_delay_ms,
            read_delay_ms=read_delay_ms,
            read_rate=read_rate,
            callback_loss_rate=callback_loss_rate,
            callback_duplicate_rate=callback_duplicate_rate,
            callback_reorder_rate=callback_reorder_rate,
        )
        self.state = SandboxState(config, max_records=max_records)
        self.callbacks = CallbackDispatcher()
        # Its own random source and lock: planning callbacks never waits on the send path's lock.
        self._callback_lock = threading.Lock()
        self._callback_random = random.Random(seed)  # noqa: S311 - chaos draws, not cryptography
        self.quiet = quiet
        self._host = host
        self._requested_port = port
        self._on_accepted = on_accepted
        self._server: _SandboxHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> SandboxServer:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _SandboxHttpServer((self._host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="wabacast-sandbox", daemon=True
        )
        self._thread.start()
        self.callbacks.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes handlers waiting out a latency
        self.callbacks.stop()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL for SANDBOX_BASE_URL, e.g. http://127.0.0.1:PORT (sends go to {url}/{version}/{id}/messages)."""
        return f"http://{self._host}:{self.port}"

    # -- settings and inspection (same as the HTTP routes) ----------------------------------------------------
    @property
    def config(self) -> SandboxConfig:
        return self.state.config

    def configure(self, **changes: Any) -> SandboxConfig:
        return self.state.configure(changes)

    def messages(self, phone_number_id: str | None = None) -> list[dict[str, Any]]:
        return self.state.messages(phone_number_id)

    def clear(self) -> None:
        self.state.clear()

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def update_number(self, phone_number_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a number's quality, status, tier, throughput or display number (camelCase keys, as POST
        /numbers/{id}); posts `phone_number_quality_update` when callbacks are on and the change is one."""
        number, notification = self.state.graph.update_number(phone_number_id, changes, int(time.time()))
        self._post_account_notification(notification)
        return number.to_json(phone_number_id)

    def put_template(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Add or change a template of a WABA's catalogue (as POST /templates); posts
        `message_template_status_update` when callbacks are on and its status is new or changed."""
        waba_id, template, notification = self.state.graph.put_template(changes, int(time.time()))
        self._post_account_notification(notification)
        return template.to_json(waba_id)

    def _post_account_notification(self, notification: Notification | None) -> None:
        target = self.state.config.callback_target()
        if notification is not None and target is not None:
            self.callbacks.schedule_notification(notification.field, notification.body, target)

    def wait_or_stopped(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when the server is stopping meanwhile."""
        return self._stopping.wait(seconds)

    # -- hooks ------------------------------------------------------------------------------------------------
    def _after_accept(self, record: dict[str, Any], answer_delay_s: float = 0.0) -> None:
        """Runs once per accepted message, outside the state lock: plans its status callbacks (posted later by
        the dispatcher's threads) when a callback target is set. `on_accepted` lets an embedding process observe
        accepted messages in-process."""
        config = self.state.config
        target = config.callback_target()
        if target is not None:
            with self._callback_lock:
                plan = plan_callbacks(config.callback_chaos(), self._callback_random, answer_delay_s)
            self.callbacks.schedule(dict(record), plan, target)
        if self._on_accepted is not None:
            self._on_accepted(dict(record))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wabacast-sandbox", description="Sandbox WhatsApp provider (Meta API)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--throughput-per-number", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--callback-url", default=None, help="where to post signed status callbacks (a Meta webhook)")
    parser.add_argument("--app-secret", default=None, help="the app secret that signs the callbacks")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    sandbox = SandboxServer(
        args.host,
        args.port,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        failure_rate=args.failure_rate,
        rate_429=args.rate_429,
        throughput_per_number=args.throughput_per_number,
        seed=args.seed,
        callback_url=args.callback_url,
        app_secret=args.app_secret,
        quiet=not args.verbose,
    ).start()
    print(f"sandbox WhatsApp provider on {sandbox.url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
