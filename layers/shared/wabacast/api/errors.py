"""Every error leaves the API as {"error": {"code", "message", "field"}} with one status per exception class."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic.alias_generators import to_camel

from wabacast.api.models import ErrorBody, ErrorDetail, ErrorResponse
from wabacast.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    InvalidPathParameterError,
    MalformedJsonError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    UnsupportedMediaTypeError,
    WabacastError,
)

STATUS_BY_ERROR: dict[type[WabacastError], HTTPStatus] = {
    InvalidInputError: HTTPStatus.UNPROCESSABLE_ENTITY,
    NotFoundError: HTTPStatus.NOT_FOUND,
    ConflictError: HTTPStatus.CONFLICT,
    AuthenticationError: HTTPStatus.UNAUTHORIZED,
    PermissionDeniedError: HTTPStatus.FORBIDDEN,
    MalformedJsonError: HTTPStatus.BAD_REQUEST,
    InvalidPathParameterError: HTTPStatus.BAD_REQUEST,
    PayloadTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    UnsupportedMediaTypeError: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
}

IDENTIFIER_MAX_LENGTH = 64
IDENTIFIER_PATTERN = r"^[A-Za-z0-9_-]+$"
PATH_IDENTIFIER_RULE = f"must be 1..{IDENTIFIER_MAX_LENGTH} letters, digits, '_' or '-'"

# OpenAPI descriptions of the error statuses, so the schema documents every status the API answers.
_DESCRIPTIONS = {
    400: "The body is not valid JSON (or nests too deeply), or a path identifier is malformed",
    401: "Missing or invalid API key",
    403: "The key may not use this route",
    404: "Not found (or owned by another business)",
    409: "The resource's state forbids the change",
    413: "The body is larger than 6 MB (6,291,456 bytes)",
    415: "The body is not JSON",
    422: "A field breaks a rule; `error.field` names it",
}


# What wabacast.api.guard may answer on any protected route, before the route runs.
GUARD_STATUSES = (400, 401, 403, 413, 415)


def documented(
    status: int, description: str, *error_statuses: int, extra: dict[int, str] | None = None
) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses of a route: its success (schema from the return annotation) and every error status."""
    responses: dict[int, OpenAPIResponse] = {status: {"description": description}}
    if status == HTTPStatus.NO_CONTENT:
        # No body: without an explicit empty `content`, Powertools documents the `None` return as a JSON null.
        responses[status]["content"] = {}
    for other_status, other_description in (extra or {}).items():
        responses[other_status] = {"description": other_description}
    # Any route answers 400, 401, 403, 413, 415 (wabacast.api.guard checks them before the route) and 422 in this
    # API's format; left out, Powertools would document its own 422 body, which this API never sends.
    for error_status in sorted(dict.fromkeys((*error_statuses, *GUARD_STATUSES, 422))):
        responses[error_status] = {
            "description": _DESCRIPTIONS[error_status],
            "content": {"application/json": {"model": ErrorResponse}},
        }
    return responses


def error_response(
    status: HTTPStatus, code: str, message: str, field: str | None = None, details: Sequence[ErrorDetail] = ()
) -> Response[str]:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, field=field, details=list(details) or None))
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json(by_alias=True, exclude_none=True),
    )


def wabacast_error_response(error: WabacastError) -> Response[str]:
    """The one mapping from a domain error to its HTTP answer."""
    status = next(
        (status for kind, status in STATUS_BY_ERROR.items() if isinstance(error, kind)),
        HTTPStatus.BAD_REQUEST,
    )
    return error_response(status, error.code, error.message, error.field)


def _field_of(location: Sequence[str | int]) -> str | None:
    """("body", "audience", "recipients", 3, "phoneNumber") -> "audience.recipients[3].phoneNumber"."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    field = ""
    for part in parts:
        if isinstance(part, int):
            field += f"[{part}]"
        elif not str(part).startswith("function-after") and "[" not in str(part):
            field += f".{part}" if field else str(part)
    return field or None


def _readable(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def register_error_handlers(app: APIGatewayHttpResolver, logger: Logger) -> None:
    @app.exception_handler(WabacastError)
    def domain_error(error: WabacastError) -> Response[str]:
        return wabacast_error_response(error)

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response[str]:
        # Powertools also parses form and multipart bodies; this API takes JSON only (415, as for any other type).
        content_type = app.current_event.headers.get("content-type", "").strip().lower()
        if app.current_event.body and content_type and not content_type.startswith("application/json"):
            return error_response(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json"
            )
        problems = error.errors()
        if any(problem.get("type") == "json_invalid" for problem in problems):
            return error_response(HTTPStatus.BAD_REQUEST, MalformedJsonError.code, "the request body is not valid JSON")
        path_problems = [problem for problem in problems if tuple(problem.get("loc", ()))[:1] == ("path",)]
        if path_problems:
            # A path segment that cannot be an identifier (too long for a DynamoDB key, or characters no
            # identifier has): the URL is malformed, whatever the body holds.
            parameter = to_camel(str(tuple(path_problems[0]["loc"])[-1]))
            return error_response(
                HTTPStatus.BAD_REQUEST,
                InvalidPathParameterError.code,
                f"{parameter}: {PATH_IDENTIFIER_RULE}",
                parameter,
            )
        details = []
        for problem in problems:
            field = _field_of(problem.get("loc", ()))
            text = _readable(str(problem.get("msg", "is invalid")))
            if problem.get("type") == "missing":
                text = "is required"
            elif problem.get("type") == "extra_forbidden":
                text = "is not a known field"
            details.append(ErrorDetail(field=field, message=f"{field}: {text}" if field else text))
        first = details[0] if details else ErrorDetail(message="the request is invalid")
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", first.message, first.field, details)

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_content(_: RequestUnsupportedContentType) -> Response[str]:
        return error_response(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json"
        )

    @app.not_found
    def route_not_found(_: RouteNotFoundError) -> Response[str]:
        return error_response(HTTPStatus.NOT_FOUND, "NOT_FOUND", "no such route")

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response[str]:
        # Log type and traceback; the message of an AWS error could carry request data, never credentials.
        logger.exception("unhandled error", extra={"error_type": type(error).__name__})
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL", "internal error; it has been logged")
