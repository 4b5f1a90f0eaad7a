"""DynamoDB adapters: one repository per aggregate over the single table (see wabacast.storage.table)."""

from wabacast.adapters.dynamodb.accounts import AccountRepository
from wabacast.adapters.dynamodb.businesses import BusinessRepository
from wabacast.adapters.dynamodb.contacts import ContactRepository
from wabacast.adapters.dynamodb.queues import QueueRepository

__all__ = ["AccountRepository", "BusinessRepository", "ContactRepository", "QueueRepository"]
