"""Sender Lambda: one SQS FIFO batch from one account's queue.

The batch is sent as a whole (one rate-limit reservation, concurrent provider calls, one settle write per queue),
then the records to redeliver are reported in `batchItemFailures`: a failed record fails only its own message group
(its recipient), never the whole batch.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from wabacast.adapters.sqs_records import JobRecord, fifo_batch_failures, job_log_keys, parse_records
from wabacast.delivery_wiring import Delivery, build_delivery
from wabacast.domain.delivery import parse_account_queue_name
from wabacast.logic.sender import InboundRecord
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
    delivery = _delivery()
    raw_records = event.get("Records", [])
    if not raw_records:
        return {"batchItemFailures": []}
    source_arn = raw_records[0]["eventSourceARN"]
    source = parse_account_queue_name(_settings().queue_name_prefix, source_arn)
    if source is None:
        raise ValueError(f"not an account queue: {source_arn}")
    logger.append_keys(account_id=source.account_id)
    queue_url = delivery.queues.url_of_arn(source_arn)
    parsed = parse_records(raw_records, JobRecord)
    logger.append_keys(**job_log_keys([record.body for record in parsed.records]))
    if parsed.malformed:
        logger.error("messages that are not jobs acknowledged", extra={"message_ids": parsed.malformed})
    records = [
        InboundRecord(
            message_id=record.messageId,
            receipt_handle=record.receiptHandle,
            message=record.body,
            queue_url=queue_url,
            sent_timestamp=record.attributes.SentTimestamp.timestamp(),
            receive_count=int(record.attributes.ApproximateReceiveCount),
        )
        for record in parsed.records
    ]
    try:
        result = delivery.sender.send_batch(source.account_id, records)
    finally:
        delivery.metrics.flush()
    # A batch handed back whole (every record rate limited or retryable) is a normal outcome, not a function error.
    return {"batchItemFailures": fifo_batch_failures(raw_records, result.retry)}
