"""Account sync Lambda: every 15 minutes (EventBridge Scheduler), every account of every business is read from its
provider (phone number quality, status, messaging tier, templates) and what changed is acted on
(wabacast.logic.account_health). The API's POST /api/whatsapp/accounts/{id}/sync does the same for one account.

One pass per invocation, stopped before the function's timeout: accounts not reached wait for the next pass (the
service goes through them in an order that lets every account have its turn). The schedule's reserved concurrency
of 1 keeps two passes from ever overlapping (they would only double the provider calls).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from functools import cache
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from wabacast.adapters.metrics import EmfMetrics
from wabacast.domain.health import SyncReport
from wabacast.settings import Settings

logger = Logger()

# Kept free at the end of the invocation: the account being read when the deadline passes finishes (a provider
# call is at most two provider timeouts: connect and read), then the report is logged and the metrics flushed.
DEADLINE_MARGIN_S = 25.0


class AccountSync(Protocol):
    def sync_all(self, *, deadline: float | None) -> SyncReport: ...


@cache
def _settings() -> Settings:
    return Settings.from_env()


@cache
def _account_health() -> AccountSync:
    # Imported here, not at the top: the handler module stays importable (and testable) on its own.
    from wabacast.account_health_wiring import build_account_health  # type: ignore[import-not-found,unused-ignore]

    service: AccountSync = build_account_health(_settings())
    return service


@cache
def _metrics() -> EmfMetrics:
    settings = _settings()
    return EmfMetrics(namespace=settings.metrics_namespace, service=settings.metrics_service)


def deadline_of(context: LambdaContext, *, now: float, margin_s: float = DEADLINE_MARGIN_S) -> float:
    """The wall time (epoch seconds) by which the pass must stop starting new accounts."""
    return now + context.get_remaining_time_in_millis() / 1000 - margin_s


def record_metrics(metrics: EmfMetrics, report: SyncReport) -> None:
    """AccountsSynced (service-wide), AccountSyncFailed per failed account (CloudWatch gets the service-wide total
    from the same points, wabacast.adapters.metrics; the provider's error codes are in the log line)."""
    metrics.add("AccountsSynced", report.accounts_synced, account_id=None)
    for account_id in sorted(report.errors):
        metrics.add("AccountSyncFailed", 1, account_id=account_id)
    # Failures the report counts without naming the account still reach the total (and a quiet pass writes 0).
    unnamed = report.accounts_failed - len(report.errors)
    if unnamed > 0 or not report.errors:
        metrics.add("AccountSyncFailed", max(unnamed, 0), account_id=None)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics = _metrics()
    report = _account_health().sync_all(deadline=deadline_of(context, now=time.time()))
    try:
        record_metrics(metrics, report)
    finally:
        metrics.flush()
    summary = asdict(report)
    if report.accounts_failed:
        logger.warning(
            "account sync: some accounts could not be read", extra={"trigger": event.get("source"), **summary}
        )
    else:
        logger.info("account sync", extra={"trigger": event.get("source"), **summary})
    return summary
