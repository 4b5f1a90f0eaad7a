"""HTTP API Lambda authorizer (payload 2.0, simple responses).

It always answers isAuthorized=true and tells the API handler who the caller is: `authenticated` false
for an unknown key. The handler then answers 401 in the API's own JSON error format, which API Gateway's
built-in 403 cannot do (see docs/decisions.md). A missing header never reaches it: API Gateway answers 401.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from wabacast.logic.businesses import BusinessService
from wabacast.settings import Settings
from wabacast.wiring import build_business_service

logger = Logger()


@cache
def _businesses() -> BusinessService:
    return build_business_service(Settings.from_env())


def _simple_response(context: dict[str, Any]) -> dict[str, Any]:
    # The payload 2.0 simple response, written out: Powertools' event and response classes come with the import
    # of every event class it has (about 0.1 s of each cold start, docs/performance.md).
    return {"isAuthorized": True, "context": context}


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event carries the API key.
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # HTTP API lower-cases header names in payload 2.0 events.
    headers = event.get("headers") or {}
    principal = _businesses().authenticate(headers.get("authorization"))
    if principal is None:
        logger.info("unknown API key")
        return _simple_response({"authenticated": False})
    logger.append_keys(key_id=principal.key_id, business_id=principal.business_id)
    return _simple_response(
        {
            "authenticated": True,
            "role": principal.role.value,
            "keyId": principal.key_id,
            "businessId": principal.business_id or "",
        }
    )
