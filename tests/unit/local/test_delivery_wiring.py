"""How the stack wires delivery: the functions' environment, the sandbox provider, the CLI options, the banner."""

from __future__ import annotations

import os
import socket
from unittest import mock

import httpx
import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from wabacast.settings import Settings
from wabacast_local.cli import banner, parse_args
from wabacast_local.sandbox_provider import SandboxProvider, SandboxSettings, SandboxStartupError
from wabacast_local.stack import (
    LocalStack,
    LocalStackConfig,
    StackEndpoints,
    StartupError,
    apply_lambda_environment,
    lambda_environment,
)


def test_functions_get_the_local_delivery_settings_and_no_cloud_wiring():
    # GIVEN a developer shell that has the cloud's function names (e.g. copied from a deployed function)
    environ = {
        "SENDER_FUNCTION_ARN": "arn:aws:lambda:us-east-1:1:function:sender",
        "DEAD_LETTER_FUNCTION_ARN": "arn:aws:lambda:us-east-1:1:function:dlq",
        "PLANNER_FUNCTION_NAME": "planner",
    }

    # WHEN the local functions' environment is applied
    variables = lambda_environment(LocalStackConfig(), "http://127.0.0.1:5555", "http://127.0.0.1:6666")
    apply_lambda_environment(environ, variables)
    settings = Settings.from_env(environ)

    # THEN the runner plays the mappings and the schedule: the functions create none and invoke no planner
    assert settings.sender_function_arn is None
    assert settings.dead_letter_function_arn is None
    assert settings.planner_function_name is None
    # AND delivery is tuned for a laptop, sandbox accounts send to the sandbox, metrics lines are silenced
    assert settings.queue_name_prefix == "wabacast"
    assert settings.feed_window_s == 5
    assert settings.requeue_after_s == 120
    assert settings.max_rate_wait_s == 20
    assert settings.sandbox_base_url == "http://127.0.0.1:6666"
    assert settings.allow_sandbox_accounts is True
    assert settings.metrics_namespace == "wabacast"
    assert environ["POWERTOOLS_METRICS_DISABLED"] == "true"


def test_show_metrics_and_feed_window_reach_the_functions():
    config = LocalStackConfig(show_metrics=True, feed_window_seconds=2.5)
    variables = lambda_environment(config, "http://127.0.0.1:5555")
    assert variables["POWERTOOLS_METRICS_DISABLED"] == "false"
    assert variables["FEED_WINDOW_S"] == "2.5"
    assert "SANDBOX_BASE_URL" not in variables
    assert "ALLOW_SANDBOX_ACCOUNTS" not in variables


@pytest.mark.parametrize(("disabled", "printed"), [("true", False), ("false", True)])
def test_powertools_prints_emf_lines_only_when_metrics_are_not_disabled(monkeypatch, capsys, disabled, printed):
    # GIVEN the variable the stack sets
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", disabled)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)

    # WHEN a function flushes a metric, as wabacast.adapters.metrics does
    metrics = EphemeralMetrics(namespace="wabacast", service="wabacast")
    metrics.add_metric(name="MessagesSent", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()

    # THEN the EMF line is printed only when metrics are shown
    assert ('"MessagesSent"' in capsys.readouterr().out) is printed


def test_cli_delivery_and_sandbox_options():
    defaults = parse_args([])
    assert defaults.planner_tick == 1.0
    assert defaults.feed_window == 5.0
    assert defaults.show_metrics is False
    assert defaults.sandbox_port == 0
    assert (defaults.sandbox_latency_ms, defaults.sandbox_jitter_ms) == (20.0, 60.0)
    assert (defaults.sandbox_failure_rate, defaults.sandbox_rate_429) == (0.0, 0.0)

    args = parse_args(
        [
            "--planner-tick", "0.5", "--feed-window", "10", "--show-metrics", "--sandbox-latency-ms", "0",
            "--sandbox-jitter-ms", "0", "--sandbox-failure-rate", "0.1", "--sandbox-429-rate", "0.05",
        ]
    )  # fmt: skip
    assert (args.planner_tick, args.feed_window, args.show_metrics) == (0.5, 10.0, True)
    assert (args.sandbox_failure_rate, args.sandbox_rate_429) == (0.1, 0.05)


@pytest.mark.parametrize("argv", [["--planner-tick", "0"], ["--feed-window", "-1"], ["--sandbox-failure-rate", "1.5"]])
def test_cli_refuses_impossible_values(argv, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert "must be" in capsys.readouterr().err


def test_banner_shows_where_sandbox_messages_are(tmp_path):
    endpoints = StackEndpoints(
        api_url="http://localhost:3000",
        admin_api_key="wbk_admin",
        api_key="wbk_demo",
        demo_business_id="biz_1",
        aws_endpoint_url="http://127.0.0.1:5555",
        sandbox_url="http://127.0.0.1:6666",
    )
    text = banner(endpoints, tmp_path / "local.json")
    assert "http://127.0.0.1:6666" in text
    assert "messages: GET http://127.0.0.1:6666/messages" in text


def test_sandbox_provider_serves_on_a_free_loopback_port_until_stopped():
    # GIVEN the sandbox component with the default (gentle) chaos settings
    provider = SandboxProvider(SandboxSettings())

    # WHEN it starts
    provider.start()
    try:
        url = provider.url
        health = httpx.get(f"{url}/health", timeout=5)
        config = httpx.get(f"{url}/config", timeout=5).json()
    finally:
        provider.stop()

    # THEN it answered on loopback with 20-80 ms latency and no injected errors, and is gone after stop
    assert url.startswith("http://127.0.0.1:")
    assert health.status_code == 200
    assert (config["latencyMs"], config["jitterMs"], config["failureRate"], config["rate429"]) == (20, 60, 0, 0)
    with pytest.raises(RuntimeError):
        _ = provider.url


def test_sandbox_provider_reports_bad_settings_and_taken_ports_clearly():
    with pytest.raises(SandboxStartupError, match="invalid sandbox settings"):
        SandboxProvider(SandboxSettings(failure_rate=0.7, rate_429=0.7)).start()

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SandboxStartupError, match="--sandbox-port 0"):
            SandboxProvider(SandboxSettings(port=port)).start()


def test_local_stack_config_defaults_match_the_documented_knobs():
    config = LocalStackConfig()
    assert config.planner_tick_seconds == 1.0
    assert config.feed_window_seconds == 5.0
    assert config.requeue_after_seconds == 120.0
    assert config.max_rate_wait_seconds == 20.0
    assert config.show_metrics is False


def test_missing_delivery_code_fails_startup_and_stops_what_was_started(tmp_path):
    # GIVEN a functions folder with the API code but no planner, sender or dead-letter consumer
    code_root = tmp_path / "functions" / "api"
    code_root.mkdir(parents=True)
    for handler_file in ("handler.py", "authorizer.py"):
        (code_root / handler_file).write_text("def lambda_handler(event, context):\n    return None\n")
    stack = LocalStack(LocalStackConfig(port=0, state_dir=tmp_path, functions_dir=tmp_path / "functions"))

    # WHEN the stack starts (it sets the functions' environment on the process: restored afterwards)
    with mock.patch.dict(os.environ), pytest.raises(StartupError, match=r"planner/handler\.py not found"):
        stack.start()

    # THEN the emulator and the sandbox started before are stopped again, and no state file claims a running stack
    assert stack._components == []
    assert not (tmp_path / "local.json").exists()
