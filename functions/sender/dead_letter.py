"""Dead-letter consumer Lambda: every job whose message SQS gave up on is settled, so counters add up: FAILED, or
back to the planner when it had fewer than its real attempts (wabacast.logic.sender.dead_letter)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from wabacast.adapters.sqs_records import JobRecord, job_log_keys, parse_records
from wabacast.delivery_wiring import Delivery, build_delivery
from wabacast.domain.delivery import parse_account_queue_name
from wabacast.logic.sender import dead_letter
from wabacast.settings import Settings

logger = Logger()


@cache
def _settings() -> Settings:
    return Settings.from_env()


@cache
def _delivery() -> Delivery:
    return build_delivery(_settings())


# clear_state: the correlation keys of one batch must not label the next invocation's lines.
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    raw_records = event.get("Records", [])
    source = (
        parse_account_queue_name(_settings().queue_name_prefix, str(raw_records[0].get("eventSourceARN", "")))
        if raw_records
        else None
    )
    if source is not None:
        logger.append_keys(account_id=source.account_id)
    parsed = parse_records(raw_records, JobRecord)
    if parsed.malformed:
        logger.error("dead-lettered messages that are not jobs dropped", extra={"message_ids": parsed.malformed})
    messages = [record.body for record in parsed.records]
    logger.append_keys(**job_log_keys(messages))
    if messages:
        delivery = _delivery()
        result = dead_letter(delivery.jobs, delivery.lifecycle, messages)
        logger.info(
            "dead-lettered jobs settled",
            extra={"messages": len(messages), "jobs_failed": result.failed, "jobs_handed_back": result.handed_back},
        )
    if raw_records:
        # Every message of an account DLQ comes here: the "dead letters" alarm watches this count.
        metrics = _delivery().metrics
        metrics.add("MessagesDeadLettered", len(raw_records), account_id=source.account_id if source else None)
        metrics.flush()
    return {"batchItemFailures": []}
