"""Planner tick Lambda: runs on the recurring schedule and right after a queue is started.

Either way it does the same thing: a heartbeat metric, then one "plan account X" message per account with queues
to plan, on the plan queue (functions/planner/worker.py takes them, one account per invocation). Without a plan
queue configured it plans the accounts itself, one after the other.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from wabacast.delivery_wiring import Delivery, build_delivery
from wabacast.settings import Settings

logger = Logger()


@cache
def _delivery() -> Delivery:
    return build_delivery(Settings.from_env())


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    delivery = _delivery()
    try:
        report = delivery.planner.tick(lambda: context.get_remaining_time_in_millis() / 1000)
    finally:
        delivery.metrics.flush()
    if report.errors:
        logger.error("planner tick had account errors", extra={"errors": report.errors})
    # A tick that found nothing to do is the normal idle case: keep it out of the INFO log.
    busy = report.dispatched or report.jobs_planned or report.jobs_fed or report.queues_completed
    (logger.info if busy else logger.debug)("planner tick", extra={"trigger": event.get("source"), **asdict(report)})
    return asdict(report)
