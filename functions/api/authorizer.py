"""HTTP API Lambda authorizer (payload 2.0, simple responses).

It always answers isAuthorized=true and tells the API handler who the caller is: `authenticated` false
for an unknown key. The handler then answers 401 in the API's own JSON error format, which API Gateway's
built-in 403 cannot do (see docs/decisions.md). A missing header never reaches it: API Gateway answers 401.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerResponseV2,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from wabacast.container import build_business_service
from wabacast.logic.businesses import BusinessService
from wabacast.settings import Settings

logger = Logger()


@cache
def _businesses() -> BusinessService:
    return build_business_service(Settings.from_env())


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: the event carries the API key.
@logger.inject_lambda_context(log_event=False)
@event_source(data_class=APIGatewayAuthorizerEventV2)
def lambda_handler(event: APIGatewayAuthorizerEventV2, context: LambdaContext) -> dict[str, Any]:
    principal = _businesses().authenticate(event.headers.get("authorization"))
    if principal is None:
        logger.info("unknown API key")
        return APIGatewayAuthorizerResponseV2(authorize=True, context={"authenticated": False}).asdict()
    authorizer_context: dict[str, Any] = {
        "authenticated": True,
        "role": principal.role.value,
        "keyId": principal.key_id,
        "businessId": principal.business_id or "",
    }
    return APIGatewayAuthorizerResponseV2(authorize=True, context=authorizer_context).asdict()
