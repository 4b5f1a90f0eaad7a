"""Wires adapters into the API's services from Settings: called once per Lambda execution environment.

The delivery functions' wiring is wabacast.delivery_wiring (they load none of the API's services), the authorizer's
key lookup is wabacast.wiring.
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3

from wabacast.account_health_wiring import build_account_health
from wabacast.adapters.dynamodb import AccountRepository, BusinessRepository, ContactRepository, QueueRepository
from wabacast.adapters.dynamodb.inbound import InboundRepository
from wabacast.adapters.dynamodb.jobs import DynamoJobStore
from wabacast.adapters.dynamodb.lifecycle import QueueLifecycleStore
from wabacast.adapters.dynamodb.ratelimit import RateLimiter
from wabacast.adapters.dynamodb.templates import TemplateRepository
from wabacast.adapters.lambda_trigger import LambdaPlannerTrigger
from wabacast.adapters.metrics import EmfMetrics
from wabacast.adapters.secrets import SecretsManagerStore
from wabacast.adapters.webhook_secrets import WebhookSecretsReader
from wabacast.logic.account_health import AccountHealthService
from wabacast.logic.accounts import AccountService
from wabacast.logic.businesses import BusinessService
from wabacast.logic.contacts import ContactService
from wabacast.logic.processing import ProcessingService
from wabacast.logic.queues import QueueService
from wabacast.logic.replies import InboundService, ReplyKeywordHandler
from wabacast.logic.scheduling import ScheduleKeeper
from wabacast.logic.webhooks import WebhookService
from wabacast.providers.factory import powertools_secret_getter
from wabacast.settings import Settings
from wabacast.wiring import account_queues, queue_schedules, table_gateway


@dataclass(frozen=True)
class Services:
    settings: Settings
    businesses: BusinessService
    accounts: AccountService
    queues: QueueService
    contacts: ContactService
    processing: ProcessingService
    webhooks: WebhookService
    inbound: InboundService
    health: AccountHealthService
    # Flushed by the API handler after each request (webhook receipts are counted per account).
    metrics: EmfMetrics


def build_services(settings: Settings) -> Services:
    table = table_gateway(settings)
    businesses = BusinessRepository(table)
    accounts = AccountRepository(table)
    queues = QueueRepository(table)
    contacts = ContactRepository(table)
    secrets = SecretsManagerStore(boto3.client("secretsmanager", region_name=settings.region), settings.secrets_prefix)
    jobs = DynamoJobStore(table, retention_days=settings.job_retention_days)
    trigger = (
        LambdaPlannerTrigger(boto3.client("lambda", region_name=settings.region), settings.planner_function_name)
        if settings.planner_function_name
        else None
    )
    schedules = ScheduleKeeper(queue_schedules(settings))
    templates = TemplateRepository(table)
    processing = ProcessingService(
        queues,
        QueueLifecycleStore(table),
        jobs,
        jobs,
        trigger,
        schedules=schedules,
        templates=templates,
        limits=RateLimiter(table),
    )
    metrics = EmfMetrics(namespace=settings.metrics_namespace, service=settings.metrics_service)
    # Its metrics go out with the request's (the API handler flushes them); its readers load on the first sync.
    health = build_account_health(settings, table=table, metrics=metrics)
    inbound = InboundRepository(table)
    webhooks = WebhookService(
        directory=accounts,
        secrets=WebhookSecretsReader(powertools_secret_getter, settings.webhook_secret_name, secrets.name_for_account),
        jobs=jobs,
        lifecycle=QueueLifecycleStore(table),
        contacts=contacts,
        inbound=inbound,
        replies=ReplyKeywordHandler(businesses, contacts, metrics),
        metrics=metrics,
        schedules=schedules,
        wabas=accounts,
        health=health,
    )
    account_service = AccountService(
        businesses,
        accounts,
        queues,
        secrets,
        allow_sandbox=settings.allow_sandbox_accounts,
        provisioner=account_queues(settings),
        metrics=EmfMetrics(settings.metrics_namespace, settings.metrics_service, flush_each=True),
        templates=templates,
        on_change=health.account_changed,
    )
    return Services(
        settings=settings,
        webhooks=webhooks,
        inbound=InboundService(account_service, inbound),
        metrics=metrics,
        businesses=BusinessService(businesses),
        accounts=account_service,
        queues=QueueService(businesses, accounts, queues, schedule_hooks=processing, templates=templates),
        contacts=ContactService(contacts),
        processing=processing,
        health=health,
    )
