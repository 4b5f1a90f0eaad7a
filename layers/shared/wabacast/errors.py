"""Domain exceptions. The API maps each class to one HTTP status in one place (wabacast.api.errors)."""

from __future__ import annotations


class WabacastError(Exception):
    """Base class: a machine-readable code, a human message and, where one input is at fault, its field."""

    code = "ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInputError(WabacastError):
    """The request is well-formed but breaks a rule that needs the stored state (or another field) to check."""

    code = "VALIDATION_ERROR"


class NotFoundError(WabacastError):
    """Missing, or belonging to another business: the two are indistinguishable on purpose."""

    code = "NOT_FOUND"


class ConflictError(WabacastError):
    """The resource's current state forbids the change (hierarchy rules, queue status, uniqueness)."""

    code = "CONFLICT"


class TemplateNotApprovedError(ConflictError):
    """The queue's template is known (synced) for its account and language, and not APPROVED: 409, with its status."""

    code = "TEMPLATE_NOT_APPROVED"

    def __init__(self, message: str, *, template_status: str, field: str | None = "template") -> None:
        super().__init__(message, field=field)
        self.template_status = template_status


class AuthenticationError(WabacastError):
    """No valid API key."""

    code = "UNAUTHENTICATED"


class PermissionDeniedError(WabacastError):
    """A valid key that may not do this (a business key on admin routes, or the reverse)."""

    code = "FORBIDDEN"


class InvalidSignatureError(PermissionDeniedError):
    """An inbound webhook whose signature (or verify token) is missing or does not match: 403, nothing changed."""

    code = "INVALID_SIGNATURE"


class ConcurrentModificationError(ConflictError):
    """Someone else changed the same items between our read and our write; retrying may succeed."""

    code = "CONCURRENT_MODIFICATION"


class MalformedJsonError(WabacastError):
    """The body is not JSON, or nests JSON too deeply to parse. Answered 400, before any field rule is checked."""

    code = "MALFORMED_JSON"


class InvalidPathParameterError(WabacastError):
    """A path segment that cannot be an identifier (too long for a DynamoDB key, or characters no id has): 400."""

    code = "INVALID_PATH_PARAMETER"


class PayloadTooLargeError(WabacastError):
    """The body is larger than a Lambda invocation can carry."""

    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaTypeError(WabacastError):
    """A body that is not JSON."""

    code = "UNSUPPORTED_MEDIA_TYPE"
