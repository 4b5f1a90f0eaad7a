"""Wires account health (wabacast.logic.account_health) from Settings: for the periodic account sync and the API.

The provider readers (wabacast.providers.account_readers, with httpx and Twilio's client) are imported when the
first account is read, not when the service is built: the API builds it on every cold start and most requests never
sync an account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3

from wabacast.adapters.dynamodb import AccountRepository, BusinessRepository, QueueRepository
from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.adapters.dynamodb.lifecycle import QueueLifecycleStore
from wabacast.adapters.dynamodb.templates import TemplateRepository
from wabacast.adapters.metrics import EmfMetrics
from wabacast.adapters.secrets import SecretsManagerStore
from wabacast.domain.models import Account
from wabacast.logic.account_health import AccountHealthService
from wabacast.logic.ports import AccountReader, AccountReaders, MetricsSink
from wabacast.settings import Settings
from wabacast.wiring import table_gateway

if TYPE_CHECKING:
    import httpx


class LazyProviderReaders:
    """`AccountReaders` that builds the providers' readers on the first read."""

    def __init__(self, settings: Settings, http_client: httpx.Client | None = None) -> None:
        self._settings = settings
        self._http_client = http_client
        self._readers: AccountReaders | None = None

    def for_account(self, account: Account, secret_name: str) -> AccountReader:
        if self._readers is None:
            from wabacast.providers.account_readers import (  # type: ignore[import-not-found,unused-ignore]
                ProviderAccountReaders,
            )
            from wabacast.providers.factory import SecretsManagerVersions

            # The secret as it is now (not a cached copy): a sync often follows a credentials change.
            secrets = SecretsManagerVersions(boto3.client("secretsmanager", region_name=self._settings.region))
            self._readers = ProviderAccountReaders(self._settings, secrets, self._http_client)
        return self._readers.for_account(account, secret_name)


def build_account_health(
    settings: Settings,
    *,
    table: TableGateway | None = None,
    metrics: MetricsSink | None = None,
    readers: AccountReaders | None = None,
    **overrides: Any,
) -> AccountHealthService:
    """The service the periodic sync calls (`sync_all(deadline=...)`) and the API uses (`sync`, `templates`)."""
    table = table or table_gateway(settings)
    accounts = AccountRepository(table)
    return AccountHealthService(
        businesses=BusinessRepository(table),
        accounts=accounts,
        queues=QueueRepository(table),
        templates=TemplateRepository(table),
        readers=readers or LazyProviderReaders(settings),
        secrets=SecretsManagerStore(
            boto3.client("secretsmanager", region_name=settings.region), settings.secrets_prefix
        ),
        pauser=QueueLifecycleStore(table),
        metrics=metrics or EmfMetrics(settings.metrics_namespace, settings.metrics_service, flush_each=True),
        wabas=accounts,
        **overrides,
    )
