"""CloudWatch metrics through Powertools (EMF log lines): per-account dimensions, flushed once per invocation.

Every data point is published under several dimension sets from one EMF document (CloudWatch publishes the
metric once per set, the values are written once):

  - its own, e.g. {service, account, error_class}: one series per account (and breakdown);
  - the same without the account, e.g. {service, error_class}: the service-wide series per breakdown;
  - {service} alone: the service-wide total, which dashboards and alarms read without a SEARCH expression
    (CloudWatch alarms cannot use SEARCH).

The `service` dimension is the Powertools service name (POWERTOOLS_SERVICE_NAME), which the stack sets per
environment (`wabacast-dev`, `wabacast-prod`), so two environments in one account never mix their series.
"""

from __future__ import annotations

import threading
from collections import defaultdict

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

ACCOUNT_DIMENSION = "account"
SERVICE_DIMENSION = "service"


def rollup_dimension_sets(dimensions: dict[str, str]) -> list[dict[str, str]]:
    """The dimension sets a point is published under besides its own {service, **dimensions}: without the account,
    then {service} alone (each once, in that order; the service dimension is implied)."""
    without_account = {name: value for name, value in dimensions.items() if name != ACCOUNT_DIMENSION}
    rollups: list[dict[str, str]] = []
    for candidate in (without_account, {}):
        if candidate != dimensions and candidate not in rollups:
            rollups.append(candidate)
    return rollups


class EmfMetrics:
    """Collects data points by dimension set; `flush()` writes one EMF document per set.

    Powertools' Metrics object has one dimension set per flush, and the planner handles several accounts in one
    invocation, so each account gets its own EphemeralMetrics at flush time. Thread-safe: the sender records
    from its worker threads.

    `flush_each`: write every point at once. For the API, whose metrics are rare events (an account turning RED),
    so its handler needs no flush of its own.
    """

    def __init__(self, namespace: str, service: str = "wabacast", *, flush_each: bool = False) -> None:
        self._namespace = namespace
        self._service = service
        self._flush_each = flush_each
        self._lock = threading.Lock()
        self._points: dict[tuple[tuple[str, str], ...], list[tuple[str, str, float]]] = defaultdict(list)

    def add(self, name: str, value: float, *, account_id: str | None, unit: str = "Count", **dimensions: str) -> None:
        """`account_id` None: a series without the account dimension (the service aggregate only)."""
        named = {ACCOUNT_DIMENSION: account_id} if account_id is not None else {}
        key = tuple(sorted({**named, **dimensions}.items()))
        with self._lock:
            self._points[key].append((name, unit, value))
        if self._flush_each:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            points, self._points = self._points, defaultdict(list)
        for key, values in points.items():
            dimensions = dict(key)
            metrics = EphemeralMetrics(namespace=self._namespace, service=self._service)
            for dimension, dimension_value in dimensions.items():
                metrics.add_dimension(name=dimension, value=dimension_value)
            for rollup in rollup_dimension_sets(dimensions):
                metrics.add_dimensions(**{SERVICE_DIMENSION: self._service, **rollup})
            for name, unit, value in values:
                metrics.add_metric(name=name, unit=MetricUnit(unit), value=value)
            metrics.flush_metrics()
