"""Scheduler Lambda: what a queue's EventBridge Scheduler schedule does when it fires.

A scheduled queue starts, a recurring queue's occurrence starts its next run, or a queue expires (see
wabacast.domain.schedules). Idempotent: Scheduler may deliver an occurrence more than once, or late, and a fire
that no longer matches the queue (moved start, occurrence already run) changes nothing.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from wabacast.container import Services, build_services
from wabacast.domain.schedules import ScheduledEvent
from wabacast.settings import Settings

logger = Logger()


@cache
def _services() -> Services:
    return build_services(Settings.from_env())


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    # An event Scheduler cannot deliver as it should is a bug: raising sends it to the schedules' dead-letter queue.
    scheduled = ScheduledEvent.model_validate(event)
    logger.append_keys(business_id=scheduled.business_id, queue_id=scheduled.queue_id)
    outcome = _services().processing.on_schedule(scheduled)
    logger.info(
        "schedule fired",
        extra={
            "action": scheduled.action.value,
            "scheduled_time": scheduled.scheduled_time.isoformat(),
            "outcome": outcome,
        },
    )
    return {"action": scheduled.action.value, "outcome": outcome}
