"""The runner around the gateway: state file, the functions' environment, routes, CLI, component lifecycle."""

from __future__ import annotations

import json
import os
import stat
from unittest import mock

import pytest

from wabacast_local.cli import banner, parse_args
from wabacast_local.http_server import HttpApiServer, PortUnavailableError
from wabacast_local.stack import (
    LocalStack,
    LocalStackConfig,
    StackEndpoints,
    StartupError,
    api_routes,
    apply_lambda_environment,
    lambda_environment,
)
from wabacast_local.state import StateFile


def test_state_file_merges_entries_and_replaces_the_file_atomically(tmp_path):
    # GIVEN a state file with the stack's entries
    state = StateFile(tmp_path / "state")
    state.update({"apiUrl": "http://localhost:3000", "apiKey": "k1"})

    # WHEN a later component adds its own entry
    content = state.update({"sandboxUrl": "http://localhost:3100"})

    # THEN the entries are merged, the file is complete JSON, no temporary file is left, only the owner can read it
    assert content == {"apiUrl": "http://localhost:3000", "apiKey": "k1", "sandboxUrl": "http://localhost:3100"}
    assert json.loads(state.path.read_text()) == content
    assert [path.name for path in state.path.parent.iterdir()] == ["local.json"]
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600


def test_state_file_remove_and_read_tolerate_a_missing_file(tmp_path):
    state = StateFile(tmp_path)
    state.remove()
    assert state.read() == {}
    state.path.write_text("not json")
    assert state.read() == {}


def test_lambda_environment_points_every_client_at_the_emulator():
    # GIVEN a developer shell with a real AWS profile and a service-specific endpoint
    environ = {"AWS_PROFILE": "production", "AWS_ENDPOINT_URL_DYNAMODB": "https://elsewhere", "HOME": "/home/dev"}

    # WHEN the functions' environment is applied
    apply_lambda_environment(environ, lambda_environment(LocalStackConfig(), "http://127.0.0.1:5555"))

    # THEN nothing can reach a real account, and the handlers find their settings
    assert "AWS_PROFILE" not in environ
    assert "AWS_ENDPOINT_URL_DYNAMODB" not in environ
    assert environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5555"
    assert environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert environ["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert environ["AWS_CONFIG_FILE"] == os.devnull
    assert environ["TABLE_NAME"] == "wabacast-local"
    assert environ["AWS_REGION"] == "us-east-1"
    assert environ["POWERTOOLS_SERVICE_NAME"] == "wabacast"
    assert environ["POWERTOOLS_METRICS_NAMESPACE"] == "wabacast"
    assert environ["HOME"] == "/home/dev"


def test_routes_match_the_cloud_api():
    # GIVEN / WHEN the stack's routes are built
    api, authorizer = object(), object()
    routes = api_routes(api, authorizer)

    # THEN the API description and the signed webhooks are public and everything else is behind the authorizer
    assert [(route.route_key, route.authorizer is authorizer) for route in routes] == [
        ("GET /api/openapi.json", False),
        ("GET /api/docs", False),
        ("GET /api/webhooks/meta", False),
        ("POST /api/webhooks/meta", False),
        ("POST /api/webhooks/twilio/{accountId}", False),
        ("ANY /api/{proxy+}", True),
    ]


def test_cli_defaults():
    args = parse_args([])
    assert args.port == 3000
    assert args.host == "127.0.0.1"
    assert str(args.state_dir) == ".wabacast"
    assert args.authorizer_cache_ttl == 0


def test_the_account_sync_runs_every_15_minutes_unless_told():
    # GIVEN / WHEN the command line without and with the flag
    default = parse_args([])
    shortened = parse_args(["--account-sync-seconds", "10"])
    # THEN the cloud's interval, or the one asked for
    assert (default.account_sync_seconds, shortened.account_sync_seconds) == (900.0, 10.0)


def test_banner_has_a_ready_to_paste_curl(tmp_path):
    endpoints = StackEndpoints(
        api_url="http://localhost:3000",
        admin_api_key="wbk_admin",
        api_key="wbk_demo",
        demo_business_id="biz_1",
        aws_endpoint_url="http://127.0.0.1:5555",
    )
    text = banner(endpoints, tmp_path / "local.json")
    assert "Console         http://localhost:3000/ " in text
    assert "http://localhost:3000/api/docs" in text
    assert "wbk_admin" in text
    assert 'curl -H "Authorization: Bearer wbk_demo" http://localhost:3000/api/whatsapp/accounts' in text


def test_a_taken_port_is_reported_clearly():
    # GIVEN a port already in use
    first = HttpApiServer(api=None, port=0)
    first.start()
    try:
        port = int(first.url.rsplit(":", 1)[1])
        # WHEN another server wants it
        # THEN the error says what to do
        with pytest.raises(PortUnavailableError, match="--port 0"):
            HttpApiServer(api=None, port=port).start()
    finally:
        first.stop()


def test_missing_function_code_fails_before_anything_starts(tmp_path):
    # GIVEN a functions folder without the API code
    stack = LocalStack(LocalStackConfig(port=0, state_dir=tmp_path, functions_dir=tmp_path / "missing"))

    # WHEN / THEN the stack refuses to start, saying which file is missing
    with pytest.raises(StartupError, match=r"handler\.py"):
        stack.start()
    assert stack._components == []


def test_failed_startup_stops_what_was_started(tmp_path):
    # GIVEN API code that fails at import time, as a syntax or import error in a handler would
    code_root = tmp_path / "functions" / "api"
    code_root.mkdir(parents=True)
    (code_root / "handler.py").write_text("raise RuntimeError('broken handler')\n")
    (code_root / "authorizer.py").write_text("def lambda_handler(event, context):\n    return None\n")
    stack = LocalStack(LocalStackConfig(port=0, state_dir=tmp_path, functions_dir=tmp_path / "functions"))

    # WHEN the stack starts (it sets the functions' environment on the process: restored afterwards)
    with mock.patch.dict(os.environ), pytest.raises(RuntimeError, match="broken handler"):
        stack.start()

    # THEN the emulator started before the failure is stopped again, and no state file claims a running stack
    assert stack._components == []
    assert not (tmp_path / "local.json").exists()
