"""Wires adapters into what the planner, sender and dead-letter functions need, from Settings: once per Lambda
execution environment. Apart from wabacast.container (the API's services), so their cold starts load none of the
API's logic (about 0.1x `import boto3`, docs/performance.md "Cold imports").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3

from wabacast.adapters.dynamodb import AccountRepository, BusinessRepository, ContactRepository
from wabacast.adapters.dynamodb.jobs import DynamoJobStore
from wabacast.adapters.dynamodb.lifecycle import QueueLifecycleStore
from wabacast.adapters.dynamodb.ratelimit import RateLimiter
from wabacast.adapters.dynamodb.registry import PlannerRegistryStore
from wabacast.adapters.metrics import EmfMetrics
from wabacast.adapters.secrets import SecretsManagerStore
from wabacast.adapters.sqs import AccountQueues, SqsPlanDispatch
from wabacast.logic.planner import Planner, PlannerConfig
from wabacast.logic.scheduling import ScheduleKeeper
from wabacast.logic.sender import Sender
from wabacast.providers.factory import ProviderFactory, SecretsManagerVersions
from wabacast.settings import Settings
from wabacast.wiring import account_queues, queue_schedules, table_gateway

if TYPE_CHECKING:
    import httpx


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
    feeds = account_queues(settings)
    rates = RateLimiter(table)
    metrics = EmfMetrics(namespace=settings.metrics_namespace, service=settings.metrics_service)
    secrets_client = boto3.client("secretsmanager", region_name=settings.region)
    secrets = SecretsManagerStore(secrets_client, settings.secrets_prefix)
    # No HTTP client yet: the factory makes one when the first Meta or sandbox account sends. Secrets are read with
    # their version, so a credential update reaches warm senders (docs/providers.md).
    providers = ProviderFactory(settings, SecretsManagerVersions(secrets_client), http_client)
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
        feed=feeds,
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
        redelivery=feeds.delay_redelivery,
        metrics=metrics,
        secret_name=secrets.name_for_account,
        max_rate_wait_s=settings.max_rate_wait_s,
        schedules=ScheduleKeeper(queue_schedules(settings)),
    )
    return Delivery(planner=planner, sender=sender, jobs=jobs, metrics=metrics, queues=feeds, lifecycle=lifecycle)
