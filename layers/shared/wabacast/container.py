"""Wires adapters into services from Settings: called once per Lambda execution environment."""

from __future__ import annotations

from dataclasses import dataclass

import boto3

from wabacast.adapters.dynamodb import AccountRepository, BusinessRepository, ContactRepository, QueueRepository
from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.adapters.secrets import SecretsManagerStore
from wabacast.logic.accounts import AccountService
from wabacast.logic.businesses import BusinessService
from wabacast.logic.contacts import ContactService
from wabacast.logic.queues import QueueService
from wabacast.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    businesses: BusinessService
    accounts: AccountService
    queues: QueueService
    contacts: ContactService


def build_business_service(settings: Settings) -> BusinessService:
    """What the authorizer needs: key lookups only."""
    table = TableGateway(boto3.client("dynamodb", region_name=settings.region), settings.table_name)
    return BusinessService(BusinessRepository(table))


def build_services(settings: Settings) -> Services:
    table = TableGateway(boto3.client("dynamodb", region_name=settings.region), settings.table_name)
    businesses = BusinessRepository(table)
    accounts = AccountRepository(table)
    queues = QueueRepository(table)
    contacts = ContactRepository(table)
    secrets = SecretsManagerStore(boto3.client("secretsmanager", region_name=settings.region), settings.secrets_prefix)
    return Services(
        settings=settings,
        businesses=BusinessService(businesses),
        accounts=AccountService(businesses, accounts, queues, secrets),
        queues=QueueService(businesses, accounts, queues),
        contacts=ContactService(contacts),
    )
