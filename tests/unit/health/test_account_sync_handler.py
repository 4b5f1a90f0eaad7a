"""The periodic account sync's handler: the deadline it gives the service, its log summary and its metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from tests.integration.conftest import FakeLambdaContext, load_function_module
from wabacast.domain.health import SyncReport


@dataclass
class FakeAccountHealth:
    """Stands in for AccountHealthService: records the deadline it was given, answers a fixed report."""

    report: SyncReport
    deadlines: list[float | None] = field(default_factory=list)

    def sync_all(self, *, deadline: float | None) -> SyncReport:
        self.deadlines.append(deadline)
        return self.report


@dataclass
class ContextWithTime(FakeLambdaContext):
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("TABLE_NAME", "wabacast-test")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "wabacast")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "wabacast-test")
    return load_function_module("scheduler", "account_sync")


def _emf_documents(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line]


def _points(documents: list[dict[str, Any]], name: str) -> dict[str | None, float]:
    """A metric's values by the `account` dimension of the document (None: the service-wide point)."""
    found = {}
    for document in documents:
        if name in document:
            value = document[name]
            found[document.get("account")] = sum(value) if isinstance(value, list) else value
    return found


def test_the_service_gets_the_remaining_time_less_the_margin_as_a_wall_time_deadline(
    handler: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a service and an invocation with 300 s left, at a known wall time
    service = FakeAccountHealth(SyncReport(accounts_synced=3))
    monkeypatch.setattr(handler, "_account_health", lambda: service)
    monkeypatch.setattr(handler.time, "time", lambda: 1_000_000.0)

    # WHEN the schedule fires
    handler.lambda_handler({"source": "wabacast.account-sync"}, ContextWithTime(remaining_ms=300_000))

    # THEN one pass was asked for, to stop the margin before the timeout
    assert service.deadlines == [1_000_000.0 + 300.0 - handler.DEADLINE_MARGIN_S]


def test_the_report_is_returned_and_its_failures_become_metrics_per_account_and_in_total(
    handler: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a pass that synced 5 accounts and could not read 2
    report = SyncReport(accounts_synced=5, accounts_failed=2, errors={"acc_b": "190", "acc_a": "UNREACHABLE"})
    monkeypatch.setattr(handler, "_account_health", lambda: FakeAccountHealth(report))

    # WHEN the schedule fires
    result = handler.lambda_handler({"source": "wabacast.account-sync"}, ContextWithTime())

    # THEN the handler answers the report
    assert result["accounts_synced"] == 5
    assert result["errors"] == {"acc_b": "190", "acc_a": "UNREACHABLE"}
    # AND the metrics say how many were synced, and which accounts failed
    documents = _emf_documents(capsys.readouterr().out)
    assert _points(documents, "AccountsSynced") == {None: 5.0}
    assert _points(documents, "AccountSyncFailed") == {"acc_a": 1.0, "acc_b": 1.0}


def test_a_quiet_pass_still_writes_a_zero_failure_point(
    handler: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a pass where every account was read
    monkeypatch.setattr(handler, "_account_health", lambda: FakeAccountHealth(SyncReport(accounts_synced=2)))

    # WHEN the schedule fires
    handler.lambda_handler({}, ContextWithTime())

    # THEN AccountSyncFailed has a 0 (an alarm on it reads "no failure", not "no data")
    documents = _emf_documents(capsys.readouterr().out)
    assert _points(documents, "AccountSyncFailed") == {None: 0.0}
