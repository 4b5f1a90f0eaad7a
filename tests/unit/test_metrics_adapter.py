"""wabacast.adapters.metrics: each point is published per account and as the service-wide series, one EMF line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wabacast.adapters.metrics import EmfMetrics, rollup_dimension_sets


def _documents(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture(autouse=True)
def _metrics_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)


@pytest.mark.parametrize(
    ("dimensions", "rollups"),
    [
        ({"account": "acc_1"}, [{}]),
        ({"account": "acc_1", "error_class": "permanent"}, [{"error_class": "permanent"}, {}]),
        ({"error_class": "permanent"}, [{}]),
        ({}, []),
    ],
)
def test_rollups_drop_the_account_then_keep_the_service_alone(
    dimensions: dict[str, str], rollups: list[dict[str, str]]
) -> None:
    # GIVEN / WHEN / THEN
    assert rollup_dimension_sets(dimensions) == rollups


def test_a_per_account_point_is_also_published_service_wide_by_error_class_and_in_total(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN two failures of one account and class
    metrics = EmfMetrics(namespace="wabacast", service="wabacast-dev")
    metrics.add("MessagesFailed", 1, account_id="acc_1", error_class="permanent")
    metrics.add("MessagesFailed", 1, account_id="acc_1", error_class="permanent")
    # WHEN flushed
    metrics.flush()
    # THEN one EMF document holds the values once, under three dimension sets
    (document,) = _documents(capsys.readouterr().out)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "wabacast"
    assert sorted(sorted(dimension_set) for dimension_set in directive["Dimensions"]) == [
        ["account", "error_class", "service"],
        ["error_class", "service"],
        ["service"],
    ]
    assert (document["service"], document["account"], document["error_class"]) == ("wabacast-dev", "acc_1", "permanent")
    assert document["MessagesFailed"] == [1.0, 1.0]


def test_a_heartbeat_without_account_has_only_the_service_series(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a planner tick
    metrics = EmfMetrics(namespace="wabacast", service="wabacast-prod")
    metrics.add("PlannerTick", 1, account_id=None)
    # WHEN flushed
    metrics.flush()
    # THEN it is one series, by service only
    (document,) = _documents(capsys.readouterr().out)
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert (document["service"], document["PlannerTick"]) == ("wabacast-prod", [1.0])


def test_flush_each_writes_a_point_at_once_and_a_plain_sink_waits_for_flush(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the API's sink (flush_each) and a batch sink
    immediate = EmfMetrics(namespace="wabacast", service="wabacast-dev", flush_each=True)
    batched = EmfMetrics(namespace="wabacast", service="wabacast-dev")
    # WHEN each records a point
    immediate.add("AccountQualityRed", 1, account_id="acc_1")
    batched.add("MessagesSent", 1, account_id="acc_1")
    # THEN only the API's is written before a flush
    assert [sorted(d) for d in _documents(capsys.readouterr().out)] == [
        ["AccountQualityRed", "_aws", "account", "service"]
    ]
