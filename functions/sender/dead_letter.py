"""Dead-letter consumer Lambda: every job whose message SQS gave up on becomes FAILED, so counters add up."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from wabacast.adapters.sqs_records import JobRecord, parse_records
from wabacast.container import Delivery, build_delivery
from wabacast.logic.sender import dead_letter
from wabacast.settings import Settings

logger = Logger()


@cache
def _delivery() -> Delivery:
    return build_delivery(Settings.from_env())


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = parse_records(event.get("Records", []), JobRecord)
    if parsed.malformed:
        logger.error("dead-lettered messages that are not jobs dropped", extra={"message_ids": parsed.malformed})
    messages = [record.body for record in parsed.records]
    failed = dead_letter(_delivery().jobs, messages) if messages else 0
    logger.info("dead-lettered jobs failed", extra={"messages": len(messages), "jobs_failed": failed})
    return {"batchItemFailures": []}
