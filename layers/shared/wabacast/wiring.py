"""The wiring every function shares (the table gateway, the account queues) and the authorizer's (API-key lookups).

Apart from wabacast.container (the API's services) and wabacast.delivery_wiring (the delivery functions'): the
authorizer runs on every API request whose key is not in API Gateway's cache, so its cold start must not load the
API, delivery and provider code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3

from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.adapters.dynamodb.businesses import BusinessRepository
from wabacast.logic.businesses import BusinessService
from wabacast.settings import Settings

if TYPE_CHECKING:
    from wabacast.adapters.scheduler import EventBridgeSchedules
    from wabacast.adapters.sqs import AccountQueues


def table_gateway(settings: Settings) -> TableGateway:
    return TableGateway(boto3.client("dynamodb", region_name=settings.region), settings.table_name)


def build_business_service(settings: Settings) -> BusinessService:
    """What the authorizer needs: key lookups only."""
    return BusinessService(BusinessRepository(table_gateway(settings)))


def queue_schedules(settings: Settings) -> EventBridgeSchedules | None:
    """The queues' EventBridge Scheduler schedules (the API's, the scheduler's, and the sender's and webhooks'
    resume-after-a-limit ones); None when the stack gave no group, target and role (tests, one-process tools)."""
    if not (settings.schedule_group_name and settings.scheduler_target_arn and settings.scheduler_role_arn):
        return None
    from wabacast.adapters.scheduler import EventBridgeSchedules, SchedulerTarget

    target = SchedulerTarget(
        group_name=settings.schedule_group_name,
        function_arn=settings.scheduler_target_arn,
        role_arn=settings.scheduler_role_arn,
        dead_letter_arn=settings.schedule_dlq_arn,
    )
    return EventBridgeSchedules(boto3.client("scheduler", region_name=settings.region), target)


def account_queues(settings: Settings) -> AccountQueues:
    """The account queues the API provisions and the delivery functions feed and read (not the authorizer)."""
    from wabacast.adapters.sqs import AccountQueues

    needs_lambda = bool(settings.sender_function_arn or settings.dead_letter_function_arn)
    return AccountQueues(
        boto3.client("sqs", region_name=settings.region),
        boto3.client("lambda", region_name=settings.region) if needs_lambda else None,
        settings,
    )
