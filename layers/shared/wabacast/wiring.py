"""The wiring every function shares (the table gateway) and the authorizer's (API-key lookups).

Apart from wabacast.container, which wires the API and delivery services: the authorizer runs on every API request
whose key is not in API Gateway's cache, so its cold start must not load the API, delivery and provider code.
"""

from __future__ import annotations

import boto3

from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.adapters.dynamodb.businesses import BusinessRepository
from wabacast.logic.businesses import BusinessService
from wabacast.settings import Settings


def table_gateway(settings: Settings) -> TableGateway:
    return TableGateway(boto3.client("dynamodb", region_name=settings.region), settings.table_name)


def build_business_service(settings: Settings) -> BusinessService:
    """What the authorizer needs: key lookups only."""
    return BusinessService(BusinessRepository(table_gateway(settings)))
