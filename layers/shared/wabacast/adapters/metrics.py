"""CloudWatch metrics through Powertools (EMF log lines): per-account dimensions, flushed once per invocation."""

from __future__ import annotations

import threading
from collections import defaultdict

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit


class EmfMetrics:
    """Collects data points by dimension set; `flush()` writes one EMF document per set.

    Powertools' Metrics object has one dimension set per flush, and the planner handles several accounts in one
    invocation, so each account gets its own EphemeralMetrics at flush time. Thread-safe: the sender records
    from its worker threads.
    """

    def __init__(self, namespace: str, service: str = "wabacast") -> None:
        self._namespace = namespace
        self._service = service
        self._lock = threading.Lock()
        self._points: dict[tuple[tuple[str, str], ...], list[tuple[str, str, float]]] = defaultdict(list)

    def add(self, name: str, value: float, *, account_id: str | None, unit: str = "Count", **dimensions: str) -> None:
        """`account_id` None: a series without the account dimension (the service aggregate)."""
        named = {"account": account_id} if account_id is not None else {}
        key = tuple(sorted({**named, **dimensions}.items()))
        with self._lock:
            self._points[key].append((name, unit, value))

    def flush(self) -> None:
        with self._lock:
            points, self._points = self._points, defaultdict(list)
        for dimensions, values in points.items():
            metrics = EphemeralMetrics(namespace=self._namespace, service=self._service)
            if dimensions:
                metrics.add_dimensions(**dict(dimensions))
            for name, unit, value in values:
                metrics.add_metric(name=name, unit=MetricUnit(unit), value=value)
            metrics.flush_metrics()
