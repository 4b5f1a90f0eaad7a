"""The SQS records Lambda hands the delivery functions, parsed with Powertools' SQS parser models."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import Json, ValidationError

from wabacast.domain.delivery import JobMessage, PlanAccountMessage


class JobRecord(SqsRecordModel):
    body: Json[JobMessage]


class PlanAccountRecord(SqsRecordModel):
    body: Json[PlanAccountMessage]


RecordT = TypeVar("RecordT", bound=SqsRecordModel)


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
