"""Wires adapters into services from Settings: called once per Lambda execution environment.

The API's services (`build_services`) and the delivery functions' (`build_delivery`); the authorizer's key lookup is
wired in wabacast.wiring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3

from wabacast.adapters.dynamodb import AccountRepository, BusinessRepository, ContactRepository, QueueRepository
from wabacast.adapters.dynamodb.inbound import InboundRepository
from wabacast.adapters.dynamodb.jobs import DynamoJobStore
from wabacast.adapters.dynamodb.lifecycle import QueueLifecycleStore
from wabacast.adapters.dynamodb.ratelimit import RateLimiter
from wabacast.adapters.dynamodb.registry import PlannerRegistryStore
from wabacast.adapters.lambda_trigger import LambdaPlannerTrigger
from wabacast.adapters.metrics import EmfMetrics
from wabacast.adapters.scheduler import EventBridgeSchedules, SchedulerTarget
from wabacast.adapters.secrets import SecretsManagerStore
from wabacast.adapters.sqs import AccountQueues, SqsPlanDispatch
from wabacast.adapters.webhook_secrets import WebhookSecretsReader
from wabacast.logic.accounts import AccountService
from wabacast.logic.businesses import BusinessService
from wabacast.logic.contacts import ContactService
from wabacast.logic.planner import Planner, PlannerConfig
from wabacast.logic.processing import ProcessingService
from wabacast.logic.queues import QueueService
from wabacast.logic.replies import InboundService, ReplyKeywordHandler
from wabacast.logic.scheduling import ScheduleKeeper
from wabacast.logic.sender import Sender
from wabacast.logic.webhooks import WebhookService
from wabacast.providers.factory import ProviderFactory, powertools_secret_getter
from wabacast.settings import Settings
from wabacast.wiring import table_gateway

if TYPE_CHECKING:
    import httpx


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
    # Flushed by the API handler after each request (webhook receipts are counted per account).
    metrics: EmfMetrics


def _account_queues(settings: Settings) -> AccountQueues:
    needs_lambda = bool(settings.sender_function_arn or settings.dead_letter_function_arn)
    return AccountQueues(
        boto3.client("sqs", region_name=settings.region),
        boto3.client("lambda", region_name=settings.region) if needs_lambda else None,
        settings,
    )


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
    processing = ProcessingService(
        queues, QueueLifecycleStore(table), jobs, jobs, trigger, schedules=ScheduleKeeper(_schedules(settings))
    )
    metrics = EmfMetrics(namespace=settings.metrics_namespace)
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
    )
    account_service = AccountService(
        businesses,
        accounts,
        queues,
        secrets,
        allow_sandbox=settings.allow_sandbox_accounts,
        provisioner=_account_queues(settings),
    )
    return Services(
        settings=settings,
        webhooks=webhooks,
        inbound=InboundService(account_service, inbound),
        metrics=metrics,
        businesses=BusinessService(businesses),
        accounts=account_service,
        queues=QueueService(businesses, accounts, queues, schedule_hooks=processing),
        contacts=ContactService(contacts),
        processing=processing,
    )


def _schedules(settings: Settings) -> EventBridgeSchedules | None:
    if not (settings.schedule_group_name and settings.scheduler_target_arn and settings.scheduler_role_arn):
        return None
    target = SchedulerTarget(
        group_name=settings.schedule_group_name,
        function_arn=settings.scheduler_target_arn,
        role_arn=settings.scheduler_role_arn,
        dead_letter_arn=settings.schedule_dlq_arn,
    )
    return EventBridgeSchedules(boto3.client("scheduler", region_name=settings.region), target)


@dataclass(frozen=True)
class Delivery:
    planner: Planner
    sender: Sender
    jobs: DynamoJobStore
    metrics: EmfMetrics
    queues: AccountQueues
    lifecycle: QueueLifecycleStore


def build_delivery(settings: Settings, http_client: httpx.Client | None = None) -> Delivery:
    """What the planner, sender and dead-letter functions need."""
    table = table_gateway(settings)
    businesses = BusinessRepository(table)
    accounts = AccountRepository(table)
    contacts = ContactRepository(table)
    lifecycle = QueueLifecycleStore(table)
    jobs = DynamoJobStore(table, retention_days=settings.job_retention_days)
    account_queues = _account_queues(settings)
    rates = RateLimiter(table)
    metrics = EmfMetrics(namespace=settings.metrics_namespace)
    secrets = SecretsManagerStore(boto3.client("secretsmanager", region_name=settings.region), settings.secrets_prefix)
    # No HTTP client yet: the factory makes one when the first Meta or sandbox account sends.
    providers = ProviderFactory(settings, powertools_secret_getter, http_client)
    dispatch = (
        SqsPlanDispatch(boto3.client("sqs", region_name=settings.region), settings.plan_queue_url)
        if settings.plan_queue_url
        else None
    )
    planner = Planner(
        lifecycle=lifecycle,
        registry=PlannerRegistryStore(table),
        jobs=jobs,
        counters=jobs,
        businesses=businesses,
        accounts=accounts,
        contacts=contacts,
        feed=account_queues,
        rates=rates,
        metrics=metrics,
        config=PlannerConfig(feed_window_s=settings.feed_window_s, requeue_after_s=settings.requeue_after_s),
        dispatch=dispatch,
    )
    sender = Sender(
        lifecycle=lifecycle,
        jobs=jobs,
        businesses=businesses,
        accounts=accounts,
        contacts=contacts,
        providers=providers,
        rates=rates,
        redelivery=account_queues.delay_redelivery,
        metrics=metrics,
        secret_name=secrets.name_for_account,
        max_rate_wait_s=settings.max_rate_wait_s,
    )
    return Delivery(
        planner=planner, sender=sender, jobs=jobs, metrics=metrics, queues=account_queues, lifecycle=lifecycle
    )
