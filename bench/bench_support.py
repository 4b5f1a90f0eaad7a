"""What the moto-backed benchmarks share: the process environment of a run, a count of AWS calls, and provider
reads scripted in place of the network.

Imported as a sibling module (the benchmarks run as scripts from this folder or by path, as `capacity` is).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import botocore.client

MOTO_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "TABLE_NAME": "wabacast-bench",
    "WEBHOOK_SECRET_NAME": "wabacast/bench-webhooks",
    "POWERTOOLS_SERVICE_NAME": "wabacast",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


class AwsCallCounter:
    """Counts AWS calls by (service, operation) while installed: botocore's one entry point for every client call."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self._original: Any = None

    def install(self) -> AwsCallCounter:
        original = self._original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
        calls = self.calls

        def counting_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            calls[(client.meta.service_model.service_name, operation_name)] += 1
            return original(client, operation_name, api_params)

        botocore.client.BaseClient._make_api_call = counting_call  # type: ignore[attr-defined]
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            botocore.client.BaseClient._make_api_call = self._original  # type: ignore[attr-defined]
            self._original = None

    def clear(self) -> None:
        self.calls.clear()

    def by_operation(self, per: float = 1.0) -> dict[str, float]:
        """`{"service:Operation": count / per}`, sorted."""
        return {
            f"{service}:{operation}": round(count / per, 3)
            for (service, operation), count in sorted(self.calls.items())
        }


def script_account_reads(snapshot: Any) -> None:
    """Every account's provider read answers `snapshot` (a wabacast.domain.health.AccountSnapshot), with no network:
    a sync then proves a Meta account whose number is the snapshot's, as the Graph API would."""
    from wabacast.account_health_wiring import LazyProviderReaders

    class ScriptedReader:
        def read(self, *, include_templates: bool = True) -> Any:
            return snapshot

    def for_account(_readers: object, account: object, secret_name: str) -> ScriptedReader:
        return ScriptedReader()

    LazyProviderReaders.for_account = for_account  # type: ignore[method-assign,assignment]
