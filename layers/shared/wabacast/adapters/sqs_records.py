"""The SQS records Lambda hands the delivery functions, parsed into typed models at the edge.

The record model names its fields as Powertools' `SqsRecordModel` does (the Lambda event's own names), but only
the fields the functions read: importing `aws_lambda_powertools.utilities.parser` loads every event model it
ships (about 0.2-0.5 s of each cold start, docs/performance.md), for the one model used here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Json, ValidationError

from wabacast.domain.delivery import JobMessage, PlanAccountMessage


class SqsRecordAttributes(BaseModel):
    """The system attributes of a record; timestamps arrive as epoch milliseconds in strings."""

    ApproximateReceiveCount: str
    ApproximateFirstReceiveTimestamp: datetime
    SentTimestamp: datetime
    MessageGroupId: str | None = None
    MessageDeduplicationId: str | None = None
    SequenceNumber: str | None = None


class SqsRecord(BaseModel):
    messageId: str
    receiptHandle: str
    body: Any
    attributes: SqsRecordAttributes
    eventSourceARN: str


class JobRecord(SqsRecord):
    body: Json[JobMessage]


class PlanAccountRecord(SqsRecord):
    body: Json[PlanAccountMessage]


RecordT = TypeVar("RecordT", bound=SqsRecord)


@dataclass
class ParsedRecords(Generic[RecordT]):
    records: list[RecordT] = field(default_factory=list)
    # Message ids of records that are not what this queue carries (logged and acknowledged by the caller).
    malformed: list[str] = field(default_factory=list)


def parse_records(raw_records: Iterable[dict[str, Any]], model: type[RecordT]) -> ParsedRecords[RecordT]:
    """Each record on its own: one malformed message must not hold back the others."""
    parsed: ParsedRecords[RecordT] = ParsedRecords()
    for raw in raw_records:
        try:
            parsed.records.append(model.model_validate(raw))
        except ValidationError:
            parsed.malformed.append(str(raw.get("messageId", "?")))
    return parsed


def fifo_batch_failures(raw_records: Sequence[dict[str, Any]], redeliver: Collection[str]) -> list[dict[str, str]]:
    """The `batchItemFailures` of a FIFO batch: each record to redeliver, and every later record of its message
    group (SQS must not hand out a group's later message before an earlier one). Other groups are unaffected.

    What Powertools' `SqsFifoPartialProcessor(skip_group_on_error=True)` reports, without importing its batch
    package (asyncio and every stream event class: about 0.2 s of the sender's cold start, docs/performance.md).
    """
    failures: list[dict[str, str]] = []
    failed_groups: set[str | None] = set()
    for raw in raw_records:
        message_id = str(raw.get("messageId", ""))
        group = (raw.get("attributes") or {}).get("MessageGroupId")
        if message_id in redeliver or group in failed_groups:
            failures.append({"itemIdentifier": message_id})
            failed_groups.add(group)
    return failures


def job_log_keys(messages: Sequence[JobMessage]) -> dict[str, str | list[str]]:
    """Logger correlation keys for the jobs of a batch: each id alone when the batch shares it, else the list."""

    def one_or_all(values: Iterable[str]) -> str | list[str]:
        distinct = sorted(set(values))
        return distinct[0] if len(distinct) == 1 else distinct

    if not messages:
        return {}
    return {
        "business_id": one_or_all(message.business_id for message in messages),
        "queue_id": one_or_all(message.queue_id for message in messages),
        "job_id": one_or_all(message.job_id for message in messages),
    }
