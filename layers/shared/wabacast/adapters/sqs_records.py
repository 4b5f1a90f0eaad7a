"""The SQS records Lambda hands the delivery functions, parsed with Powertools' SQS parser models."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, Json, ValidationError

from wabacast.domain.delivery import JobMessage, PlanAccountMessage

BodyT = TypeVar("BodyT", bound=BaseModel)


class JobRecord(SqsRecordModel):
    body: Json[JobMessage]


class PlanAccountRecord(SqsRecordModel):
    body: Json[PlanAccountMessage]


class ParsedRecords(Generic[BodyT]):
    def __init__(self) -> None:
        self.records: list[Any] = []
        # Message ids of records that are not what this queue carries (logged and acknowledged by the caller).
        self.malformed: list[str] = []


def parse_records(raw_records: Iterable[dict[str, Any]], model: type[SqsRecordModel]) -> ParsedRecords[Any]:
    """Each record on its own: one malformed message must not hold back the others."""
    parsed: ParsedRecords[Any] = ParsedRecords()
    for raw in raw_records:
        try:
            parsed.records.append(model.model_validate(raw))
        except ValidationError:
            parsed.malformed.append(str(raw.get("messageId", "?")))
    return parsed
