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
    from wabacast.adapters.sqs import AccountQueues


def table_gateway(settings: Settings) -> TableGateway:
    return TableGateway(boto3.client("dynamodb", region_name=settings.region), settings.table_name)


def build_business_service(settings: Settings) -> BusinessService:
    """What the authorizer needs: key lookups only."""
    return BusinessService(BusinessRepository(table_gateway(settings)))


def account_queues(settings: Settings) -> AccountQueues:
    """The account queues the API provisions and the delivery functions feed and read (not the authorizer)."""
    from wabacast.adapters.sqs import AccountQueues

    needs_lambda = bool(settings.sender_function_arn or settings.dead_letter_function_arn)
    return AccountQueues(
        boto3.client("sqs", region_name=settings.region),
        boto3.client("lambda", region_name=settings.region) if needs_lambda else None,
        settings,
    )
