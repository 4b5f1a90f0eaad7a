"""Sender Lambda: one SQS FIFO batch from one account's queue.

The batch is sent as a whole (one rate-limit reservation, concurrent provider calls, one settle write per queue),
then Powertools' FIFO batch processor reports the records to redeliver: a failed record fails only its own
message group (its recipient), never the whole batch.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from wabacast.adapters.sqs_records import JobRecord, parse_records
from wabacast.container import Delivery, build_delivery
from wabacast.domain.delivery import parse_account_queue_name
from wabacast.logic.sender import InboundRecord
from wabacast.settings import Settings

logger = Logger()
tracer = Tracer()


class RedeliverError(Exception):
    """Raised for a record SQS must hand out again (a retryable failure, or no rate-limit slot in time)."""


@cache
def _settings() -> Settings:
    return Settings.from_env()


@cache
def _delivery() -> Delivery:
    return build_delivery(_settings())


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    delivery = _delivery()
    raw_records = event.get("Records", [])
    if not raw_records:
        return {"batchItemFailures": []}
    source_arn = raw_records[0]["eventSourceARN"]
    source = parse_account_queue_name(_settings().queue_name_prefix, source_arn)
    if source is None:
        raise ValueError(f"not an account queue: {source_arn}")
    queue_url = delivery.queues.url_of_arn(source_arn)
    parsed = parse_records(raw_records, JobRecord)
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

    def settle(record: SQSRecord) -> None:
        if record.message_id in result.retry:
            raise RedeliverError(record.message_id)

    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    # A batch handed back whole (every record rate limited or retryable) is a normal outcome, not a function error.
    processor.raise_on_entire_batch_failure = False
    return dict(process_partial_response(event=event, record_handler=settle, processor=processor, context=context))
