"""Plan worker Lambda: plans one account per message of the plan queue (sent by the planner tick).

An account whose planning raised is reported in `batchItemFailures`, so SQS retries it (and after three receives
moves it to the plan queue's dead-letter queue); the other accounts of the batch are unaffected.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from wabacast.adapters.sqs_records import PlanAccountRecord, parse_records
from wabacast.delivery_wiring import Delivery, build_delivery
from wabacast.logic.planner import TickReport
from wabacast.settings import Settings

logger = Logger()


@cache
def _delivery() -> Delivery:
    return build_delivery(Settings.from_env())


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    delivery = _delivery()
    parsed = parse_records(event.get("Records", []), PlanAccountRecord)
    if parsed.malformed:
        logger.error("plan messages that name no account dropped", extra={"message_ids": parsed.malformed})
    failures: list[dict[str, str]] = []
    total = TickReport()
    try:
        for record in parsed.records:
            message = record.body
            logger.append_keys(business_id=message.business_id, account_id=message.account_id)
            report = delivery.planner.plan_account(
                message.business_id, message.account_id, lambda: context.get_remaining_time_in_millis() / 1000
            )
            total.add(report)
            if report.errors:
                logger.error("planning the account failed", extra={"errors": report.errors})
                failures.append({"itemIdentifier": record.messageId})
    finally:
        delivery.metrics.flush()
    busy = total.jobs_planned or total.jobs_fed or total.queues_completed
    (logger.info if busy else logger.debug)("account planned", extra=asdict(total))
    return {"batchItemFailures": failures, "report": asdict(total)}
