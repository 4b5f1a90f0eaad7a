"""What a provider's error means for a job: one table, kept as data so docs/providers.md can be checked against it.

`classify(provider, code, http_status, recipient=...)` looks the provider's own error code up first (Meta Graph
API codes for `meta` and `sandbox`, Twilio error codes for `twilio`) and falls back on the HTTP status when the code
is unknown: 429 and 5xx are retryable, 401 pauses the queue (the account's credentials are wrong), any other 4xx is
permanent. Some rows depend on the recipient's country (`permanent_for`): the per-user marketing limit is
permanent for +1 numbers only. The same table classifies errors that arrive later, in status webhooks.
Failures with no usable answer (connection refused, read timeout, ...) are classified by the adapters, which know
whether the request can have reached the provider: see `LOCAL_RULES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from wabacast.domain.jobs import ErrorClass
from wabacast.providers.base import ProviderError


@dataclass(frozen=True)
class ErrorRule:
    error_class: ErrorClass
    meaning: str
    # Country calling codes (without "+") whose recipients get PERMANENT instead of `error_class`.
    permanent_for: tuple[str, ...] = ()
    # A PAUSE_QUEUE row whose limit lifts by itself: the pause reason says when (`resets_after` from now).
    resets_after: timedelta | None = None


# Short names keep the tables readable.
RETRY = ErrorClass.RETRYABLE
LATER = ErrorClass.RETRY_LATER
FAIL = ErrorClass.PERMANENT
OPTOUT = ErrorClass.OPTED_OUT
OPTOUT_MARKETING = ErrorClass.OPTED_OUT_MARKETING
PAUSE = ErrorClass.PAUSE_QUEUE
UNSURE = ErrorClass.UNKNOWN_OUTCOME

# Meta's per-user marketing limit: since April 2025 Meta delivers no marketing template to US (+1) numbers, so for
# them the "limit" never lifts; for everyone else it does, hours later.
US_MARKETING_BLOCK = ("1",)
# Twilio's daily limit (63038) counts a rolling 24 hours: the earliest sure moment it has room again.
TWILIO_DAILY_WINDOW = timedelta(hours=24)

# What wabacast does with a job that failed with each class (rendered into docs/providers.md).
ACTION_OF_CLASS: dict[ErrorClass, str] = {
    RETRY: "Back to SQS with backoff; retried until the queue's `maxAttempts`, then FAILED",
    LATER: (
        "Back to the planner, fed again hours later (4 h, 12 h, 24 h: `MARKETING_LIMIT_DELAYS`), then FAILED; "
        "+1 numbers FAILED at once"
    ),
    FAIL: "Job FAILED at once, not retried",
    OPTOUT: "Job FAILED with the code; the number joins the business's opt-outs (source `provider`, scope `all`)",
    OPTOUT_MARKETING: (
        "Job FAILED with the code; the number joins the business's opt-outs for marketing templates only "
        "(scope `marketing`): utility and authentication templates still reach it"
    ),
    PAUSE: "Job FAILED and the queue PAUSED with the error as its reason (account or template trouble)",
    UNSURE: "Never resent (the provider may have accepted it); the job is closed with this error",
}

# Meta Cloud API (Graph API) error codes: `error.code` of the error body. Keys are strings; "100/33" is
# code 100 with `error_subcode` 33, which wins over the plain code.
META_ERRORS: dict[str, ErrorRule] = {
    # Retryable: Meta's own trouble and throughput limits.
    "1": ErrorRule(RETRY, "API Unknown: possible server error"),
    "2": ErrorRule(RETRY, "API Service: temporary downtime or overload"),
    "4": ErrorRule(RETRY, "Too many calls: application request limit reached"),
    "80007": ErrorRule(RETRY, "WhatsApp Business Account rate limit reached"),
    "130429": ErrorRule(RETRY, "Cloud API throughput limit reached for the phone number"),
    "131000": ErrorRule(RETRY, "Something went wrong (unknown error)"),
    "131016": ErrorRule(RETRY, "Service unavailable"),
    "131056": ErrorRule(RETRY, "(Business, consumer) pair rate limit: too many messages to this number"),
    "131057": ErrorRule(RETRY, "Business account in maintenance mode"),
    "133004": ErrorRule(RETRY, "Server temporarily unavailable"),
    # Permanent: this message or this recipient cannot be sent to.
    "100": ErrorRule(FAIL, "Invalid parameter"),
    "131008": ErrorRule(FAIL, "Required parameter is missing"),
    "131009": ErrorRule(FAIL, "Parameter value is not valid"),
    "131021": ErrorRule(FAIL, "Recipient cannot be the sender"),
    "131026": ErrorRule(FAIL, "Message undeliverable: not a WhatsApp user, old app, or terms not accepted"),
    "131047": ErrorRule(FAIL, "Re-engagement message: more than 24 h since the user last replied"),
    "131051": ErrorRule(FAIL, "Unsupported message type"),
    "131052": ErrorRule(FAIL, "Media download error"),
    "131053": ErrorRule(FAIL, "Media upload error"),
    "130472": ErrorRule(FAIL, "User's number is part of an experiment"),
    "130497": ErrorRule(FAIL, "Business account may not message users in this country"),
    "132000": ErrorRule(FAIL, "Template parameter count mismatch"),
    "132001": ErrorRule(FAIL, "Template does not exist in this language"),
    "132005": ErrorRule(FAIL, "Template hydrated text too long"),
    "132007": ErrorRule(FAIL, "Template format character policy violated"),
    "132012": ErrorRule(FAIL, "Template parameter format mismatch"),
    "135000": ErrorRule(FAIL, "Generic user error"),
    # Later: the per-user marketing limit lifts after some hours, except for US numbers.
    "131049": ErrorRule(
        LATER,
        "Meta chose not to deliver (per-user marketing limit); permanent for +1 numbers",
        permanent_for=US_MARKETING_BLOCK,
    ),
    # Opted out of marketing templates only.
    "131050": ErrorRule(OPTOUT_MARKETING, "User stopped marketing messages from this business"),
    # Pause the queue: the account, its token or the template is unusable until someone acts.
    "0": ErrorRule(PAUSE, "AuthException: unable to authenticate the app user"),
    "3": ErrorRule(PAUSE, "Capability or permissions issue"),
    "10": ErrorRule(PAUSE, "Permission denied"),
    "33": ErrorRule(PAUSE, "Business phone number deleted or not valid"),
    "100/33": ErrorRule(PAUSE, "Phone number ID does not exist or the token cannot use it"),
    "190": ErrorRule(PAUSE, "Access token expired or invalid"),
    "200": ErrorRule(PAUSE, "API permission missing"),
    "368": ErrorRule(PAUSE, "Temporarily blocked for policy violations"),
    "131005": ErrorRule(PAUSE, "Access denied"),
    "131031": ErrorRule(PAUSE, "Business account locked"),
    "131037": ErrorRule(PAUSE, "Display name needs approval"),
    "131042": ErrorRule(PAUSE, "Business eligibility: payment issue"),
    "131045": ErrorRule(PAUSE, "Incorrect certificate: phone number not registered"),
    "131048": ErrorRule(PAUSE, "Spam rate limit hit: too many messages blocked or flagged"),
    "132015": ErrorRule(PAUSE, "Template paused for low quality"),
    "132016": ErrorRule(PAUSE, "Template disabled for low quality"),
    "133000": ErrorRule(PAUSE, "Incomplete deregistration of the phone number"),
    "133010": ErrorRule(PAUSE, "Phone number not registered on the Cloud API"),
}

# Graph API permission errors span 200-299; the table lists them once as "200".
META_CODE_RANGES: list[tuple[int, int, str]] = [(200, 299, "200")]

# Twilio error codes: `code` of the error body (and `ErrorCode` of status callbacks for the 3xxxx/63xxx ones).
TWILIO_ERRORS: dict[str, ErrorRule] = {
    # Retryable.
    "20429": ErrorRule(RETRY, "Too many requests"),
    "20500": ErrorRule(RETRY, "Internal server error"),
    "20503": ErrorRule(RETRY, "Service unavailable"),
    "30001": ErrorRule(RETRY, "Queue overflow"),
    "30008": ErrorRule(RETRY, "Unknown error"),
    "63012": ErrorRule(RETRY, "Channel provider returned an internal service error"),
    "63017": ErrorRule(RETRY, "Rate limit exceeded: account and subaccounts above 2,000 messages/s"),
    # Permanent.
    "21211": ErrorRule(FAIL, "Invalid 'To' phone number"),
    "21408": ErrorRule(FAIL, "Sending to this region is not enabled on the account"),
    "21614": ErrorRule(FAIL, "'To' number is not a valid mobile number"),
    "21654": ErrorRule(FAIL, "ContentSid required"),
    "21655": ErrorRule(FAIL, "ContentSid is invalid"),
    "21656": ErrorRule(FAIL, "ContentVariables parameter is invalid"),
    "30003": ErrorRule(FAIL, "Unreachable destination handset"),
    "30004": ErrorRule(FAIL, "Message blocked"),
    "30005": ErrorRule(FAIL, "Unknown destination handset"),
    "30006": ErrorRule(FAIL, "Landline or unreachable carrier"),
    "30007": ErrorRule(FAIL, "Message filtered"),
    "63003": ErrorRule(FAIL, "Channel could not find the 'To' address"),
    "63005": ErrorRule(FAIL, "Channel did not accept the content"),
    "63013": ErrorRule(FAIL, "Channel policy violation: required parameter missing or invalid"),
    "63016": ErrorRule(FAIL, "Outside the 24 h window: a template is required"),
    "63019": ErrorRule(FAIL, "Media failed to download"),
    "63021": ErrorRule(FAIL, "Channel invalid content error"),
    "63024": ErrorRule(FAIL, "Invalid message recipient"),
    "63027": ErrorRule(FAIL, "Template does not exist for this language and locale"),
    "63028": ErrorRule(FAIL, "Number of template parameters does not match"),
    "63029": ErrorRule(FAIL, "Receiver failed to download the template"),
    "63030": ErrorRule(FAIL, "Unsupported parameter for this channel's message"),
    "63032": ErrorRule(FAIL, "WhatsApp limitation: this user cannot be messaged"),
    # Later: Meta's per-user marketing limit as Twilio reports it.
    "63049": ErrorRule(
        LATER,
        "Meta chose not to deliver this marketing message (per-user limit); permanent for +1 numbers",
        permanent_for=US_MARKETING_BLOCK,
    ),
    # Opted out.
    "21610": ErrorRule(OPTOUT, "Recipient unsubscribed (replied STOP)"),
    # Pause the queue.
    "20003": ErrorRule(PAUSE, "Authentication failed: wrong Account SID or Auth Token"),
    "20404": ErrorRule(PAUSE, "Resource not found: account or Messaging Service does not exist"),
    "21212": ErrorRule(PAUSE, "Invalid 'From' number"),
    "21606": ErrorRule(PAUSE, "'From' number is not a message-capable Twilio number"),
    "21701": ErrorRule(PAUSE, "Messaging Service does not exist"),
    "21703": ErrorRule(PAUSE, "Messaging Service has no phone number available to send"),
    "21704": ErrorRule(PAUSE, "Messaging Service contains no phone numbers"),
    "21705": ErrorRule(PAUSE, "Messaging Service is invalid"),
    "30002": ErrorRule(PAUSE, "Account suspended"),
    "63001": ErrorRule(PAUSE, "Channel could not authenticate the request"),
    "63007": ErrorRule(PAUSE, "No WhatsApp channel for the 'From' address"),
    "63020": ErrorRule(PAUSE, "WhatsApp Business account not ready (invitation or payment)"),
    "63018": ErrorRule(PAUSE, "Spam rate limit: too many messages blocked or flagged (like Meta 131048)"),
    "63022": ErrorRule(PAUSE, "WhatsApp sender certificate error"),
    "63038": ErrorRule(
        PAUSE,
        "Account exceeded the daily messages limit (rolling 24 h): the reason says when it resets",
        resets_after=TWILIO_DAILY_WINDOW,
    ),
    "63040": ErrorRule(PAUSE, "Template rejected"),
}

ERROR_TABLES: dict[str, dict[str, ErrorRule]] = {"meta": META_ERRORS, "twilio": TWILIO_ERRORS}
# The sandbox speaks the Meta Cloud API, errors included.
PROVIDER_TABLE_ALIASES: dict[str, str] = {"sandbox": "meta"}

# HTTP fallbacks when the provider's code is absent or not in its table.
HTTP_FALLBACK: dict[str, ErrorRule] = {
    "429": ErrorRule(RETRY, "Too many requests"),
    "408": ErrorRule(RETRY, "Request timeout: the provider did not receive the whole request"),
    "5xx": ErrorRule(RETRY, "Provider-side error"),
    "401": ErrorRule(PAUSE, "Unauthorized: the account's credentials are wrong"),
    "4xx": ErrorRule(FAIL, "Any other client error"),
}

# Failures wabacast decides itself, with no usable provider answer: the adapters know whether the request can
# have reached the provider. A read timeout is the case that matters: the provider may have accepted the message.
LOCAL_RULES: dict[str, ErrorRule] = {
    "CONNECT_ERROR": ErrorRule(RETRY, "Could not connect (refused, DNS, TLS handshake): the request was not sent"),
    "CONNECT_TIMEOUT": ErrorRule(RETRY, "Connecting timed out: the request was not sent"),
    "WRITE_ERROR": ErrorRule(RETRY, "The request could not be written completely: the provider cannot act on it"),
    "READ_TIMEOUT": ErrorRule(UNSURE, "Sent, but no answer within the timeout: the provider may have accepted it"),
    "CONNECTION_LOST": ErrorRule(UNSURE, "Sent, but the connection broke before a full answer"),
    "INVALID_RESPONSE": ErrorRule(UNSURE, "A 2xx answer without a message id"),
    "REQUEST_ERROR": ErrorRule(UNSURE, "Any other failure once the request may have left"),
    "MISSING_CONTENT_SID": ErrorRule(FAIL, "Twilio account, but the template has no contentSid"),
    "PROVIDER_CONFIG": ErrorRule(PAUSE, "No usable provider for the account (credentials, sandbox URL, base URL)"),
}


def local_error(code: str, detail: str, *, http_status: int | None = None) -> ProviderError:
    """A ProviderError for one of LOCAL_RULES: the class comes from the table, never from the call site."""
    rule = LOCAL_RULES[code]
    return ProviderError(
        code, f"{rule.meaning}: {detail}" if detail else rule.meaning, rule.error_class, http_status=http_status
    )


def _table_for(provider: str) -> dict[str, ErrorRule]:
    name = provider.lower()
    return ERROR_TABLES.get(PROVIDER_TABLE_ALIASES.get(name, name), {})


def _normalize(code: str | int | None) -> str | None:
    if code is None:
        return None
    text = str(code).strip()
    return text or None


def lookup(provider: str, code: str | int | None, subcode: str | int | None = None) -> ErrorRule | None:
    """The table row for a provider's code, or None when the code is not in the table."""
    table = _table_for(provider)
    key = _normalize(code)
    if key is None:
        return None
    sub = _normalize(subcode)
    if sub is not None and f"{key}/{sub}" in table:
        return table[f"{key}/{sub}"]
    if key in table:
        return table[key]
    if table is META_ERRORS and key.isdigit():
        for low, high, row in META_CODE_RANGES:
            if low <= int(key) <= high:
                return table[row]
    return None


def calling_code_matches(recipient: str, calling_codes: tuple[str, ...]) -> bool:
    """Whether an E.164 number ("+1650...", Meta's "1650...", Twilio's "whatsapp:+1650...") starts with one of
    these country calling codes."""
    digits = recipient.strip().removeprefix("whatsapp:").removeprefix("+")
    return any(digits.startswith(code) for code in calling_codes)


def classify(
    provider: str,
    code: str | int | None,
    http_status: int | None,
    *,
    subcode: str | int | None = None,
    recipient: str | None = None,
) -> ErrorClass:
    """What a failed send means for the job. `provider` is "meta", "twilio" or "sandbox".

    `recipient` (the job's number) matters for rows that depend on the recipient's country: without it, such a row
    gives its general class (the per-user marketing limit: RETRY_LATER)."""
    rule = lookup(provider, code, subcode)
    if rule is not None:
        if rule.permanent_for and recipient is not None and calling_code_matches(recipient, rule.permanent_for):
            return FAIL
        return rule.error_class
    if http_status is None:
        # A provider code we do not know, with no HTTP status (e.g. from a status callback): the message failed.
        # Neither code nor status: nothing answered; the adapters classify transport failures themselves.
        return FAIL if _normalize(code) is not None else RETRY
    if http_status == 429:
        return HTTP_FALLBACK["429"].error_class
    if http_status == 408:
        return HTTP_FALLBACK["408"].error_class
    if http_status >= 500:
        return HTTP_FALLBACK["5xx"].error_class
    if http_status == 401:
        return HTTP_FALLBACK["401"].error_class
    if http_status >= 400:
        return HTTP_FALLBACK["4xx"].error_class
    # A non-error status with an error (should not happen): the outcome is unclear, never resend.
    return UNSURE


def resets_after(provider: str, code: str | int | None) -> timedelta | None:
    """For a PAUSE_QUEUE row whose limit lifts by itself: how long from now until it has room again."""
    rule = lookup(provider, code)
    return rule.resets_after if rule is not None else None


def table_rows() -> list[tuple[str, str, str, ErrorClass]]:
    """(provider, code, meaning, class) for every row of both tables, in the order docs/providers.md shows them."""
    order = [RETRY, LATER, FAIL, OPTOUT, OPTOUT_MARKETING, PAUSE]
    rows: list[tuple[str, str, str, ErrorClass]] = []
    for provider, table in ERROR_TABLES.items():
        for error_class in order:
            codes = [code for code, rule in table.items() if rule.error_class is error_class]
            for code in sorted(codes, key=lambda value: [int(part) for part in value.split("/")]):
                rows.append((provider, code, table[code].meaning, error_class))
    return rows


def shown_code(provider: str, code: str) -> str:
    """How a table key is written in the docs: "100/33" as "100 (subcode 33)", Meta's "200" as "200-299"."""
    if "/" in code:
        base, sub = code.split("/", 1)
        return f"{base} (subcode {sub})"
    if provider == "meta":
        for low, high, row in META_CODE_RANGES:
            if code == row:
                return f"{low}-{high}"
    return code


_HEADER = ["| Provider | Code | Meaning | Class | What wabacast does |", "|---|---|---|---|---|"]


def _line(provider: str, code: str, meaning: str, error_class: ErrorClass) -> str:
    return f"| {provider} | {code} | {meaning} | `{error_class.value}` | {ACTION_OF_CLASS[error_class]} |"


def render_markdown_table() -> str:
    """The provider error-code table of docs/providers.md, exactly."""
    lines = list(_HEADER)
    for provider, code, meaning, error_class in table_rows():
        lines.append(_line(provider, shown_code(provider, code), meaning, error_class))
    return "\n".join(lines)


def render_class_table() -> str:
    """What each class means for the job, as docs/providers.md shows it."""
    lines = ["| Class | What wabacast does |", "|---|---|"]
    lines += [f"| `{error_class.value}` | {action} |" for error_class, action in ACTION_OF_CLASS.items()]
    return "\n".join(lines)


def render_fallback_table() -> str:
    """HTTP-status fallbacks (code unknown) and wabacast's own codes (no answer), as docs/providers.md shows them."""
    lines = list(_HEADER)
    for status, rule in HTTP_FALLBACK.items():
        lines.append(_line("any", f"HTTP {status}", rule.meaning, rule.error_class))
    for name, rule in LOCAL_RULES.items():
        lines.append(_line("any", name, rule.meaning, rule.error_class))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - `python -m wabacast.providers.errors` prints the docs' tables
    print(render_class_table())
    print()
    print(render_markdown_table())
    print()
    print(render_fallback_table())
