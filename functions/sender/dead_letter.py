"""Dead-letter consumer Lambda: every job whose message SQS gave up on becomes FAILED, so counters add up."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from wabacast.container import Delivery, build_delivery
from wabacast.logic.sender import dead_letter
from wabacast.settings import Settings

logger = Logger()


@cache
def _delivery() -> Delivery:
    return build_delivery(Settings.from_env())


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    bodies = [json.loads(record["body"]) for record in event.get("Records", [])]
    failed = dead_letter(_delivery().delivery, bodies) if bodies else 0
    logger.info("dead-lettered jobs failed", extra={"messages": len(bodies), "jobs_failed": failed})
    return {"batchItemFailures": []}
