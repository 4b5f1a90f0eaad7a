"""API Lambda: the Powertools resolver for every /api route. Thin: build once, resolve each event."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from wabacast.api.app import build_app
from wabacast.api.guard import request_log_keys
from wabacast.container import Services, build_services
from wabacast.settings import Settings

logger = Logger()


@cache
def _services() -> Services:
    # Settings are read on the first invocation, not at import: the local runner sets the environment first.
    return build_services(Settings.from_env())


@cache
def _app() -> APIGatewayHttpResolver:
    return build_app(_services(), logger)


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: bodies carry provider credentials. clear_state: the
# caller and resource keys of one request must not label the next one's lines.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(**request_log_keys(event))
    try:
        return _app().resolve(event, context)
    finally:
        # Webhook receipts are counted per account (EMF lines); other routes record none.
        _services().metrics.flush()
