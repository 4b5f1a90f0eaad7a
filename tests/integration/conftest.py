"""Handlers on moto: the API and authorizer Lambdas driven with real HTTP API v2 events, in process."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest
from moto import mock_aws

from wabacast.bootstrap import create_resources, issue_admin_key
from wabacast.settings import Settings

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def load_function_module(function: str, module: str) -> ModuleType:
    """Import a handler file the way Lambda does: from its own code folder, under a unique name."""
    path = FUNCTIONS / function / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"wabacast_test_{function}_{module}", path)
    assert spec and spec.loader
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


@dataclass
class FakeLambdaContext:
    function_name: str = "wabacast-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:wabacast-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str]


class ApiClient:
    """Plays API Gateway: runs the authorizer for /api routes (except the docs), then the API handler."""

    def __init__(self, api: ModuleType, authorizer: ModuleType, api_key: str | None = None) -> None:
        self._api = api
        self._authorizer = authorizer
        self.api_key = api_key

    def as_key(self, api_key: str | None) -> ApiClient:
        return ApiClient(self._api, self._authorizer, api_key)

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
                raw_body: str | None = None, headers: dict[str, str] | None = None) -> ApiResponse:
        all_headers = {"content-type": "application/json", **(headers or {})}
        if self.api_key is not None:
            all_headers["authorization"] = f"Bearer {self.api_key}"
        query_pairs = {key: str(value) for key, value in (query or {}).items() if value is not None}
        public = path in ("/api/openapi.json", "/api/docs")
        route_key = f"{method} {path}" if public else "ANY /api/{proxy+}"
        context: dict[str, Any] = {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost", "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "pytest"},
            "requestId": str(uuid.uuid4()), "routeKey": route_key, "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0,
        }
        event: dict[str, Any] = {
            "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": urlencode(query_pairs),
            "headers": all_headers, "requestContext": context, "isBase64Encoded": False,
        }
        if query_pairs:
            event["queryStringParameters"] = query_pairs
        if not public:
            event["pathParameters"] = {"proxy": path.removeprefix("/api/")}
        if raw_body is not None:
            event["body"] = raw_body
        elif body is not None:
            event["body"] = json.dumps(body)
        if not public:
            if not all_headers.get("authorization"):
                return ApiResponse(401, {"message": "Unauthorized"}, {})
            authorizer_event = {**event, "type": "REQUEST", "identitySource": [all_headers["authorization"]],
                                "routeArn": "arn:aws:execute-api:us-east-1:123456789012:local/$default/ANY/api"}
            verdict = self._authorizer.lambda_handler(authorizer_event, FakeLambdaContext())
            if not verdict["isAuthorized"]:
                return ApiResponse(403, {"message": "Forbidden"}, {})
            context["authorizer"] = {"lambda": verdict.get("context", {})}
        result = self._api.lambda_handler(event, FakeLambdaContext())
        text = result.get("body") or ""
        content_type = (result.get("headers") or {}).get("Content-Type", "")
        parsed = json.loads(text) if text and "json" in content_type else text
        return ApiResponse(result["statusCode"], parsed, result.get("headers") or {})

    def get(self, path: str, **query: Any) -> ApiResponse:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None) -> ApiResponse:
        return self.request("POST", path, body=body)

    def put(self, path: str, body: Any = None) -> ApiResponse:
        return self.request("PUT", path, body=body)

    def delete(self, path: str) -> ApiResponse:
        return self.request("DELETE", path)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1", "TABLE_NAME": "wabacast-test", "SECRETS_PREFIX": "wabacast",
        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_SERVICE_NAME": "wabacast",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        settings = Settings.from_env()
        create_resources(settings)
        yield settings


@pytest.fixture
def anonymous(settings: Settings) -> ApiClient:
    # Fresh modules per test: their cached services hold boto3 clients bound to this test's moto.
    return ApiClient(load_function_module("api", "handler"), load_function_module("api", "authorizer"))


@pytest.fixture
def admin(settings: Settings, anonymous: ApiClient) -> ApiClient:
    return anonymous.as_key(issue_admin_key(settings, "tests"))


def new_business(admin: ApiClient, name: str = "Acme") -> ApiClient:
    response = admin.post("/api/admin/businesses", {"name": name, "timezone": "Europe/Madrid"})
    assert response.status == 201, response.body
    client = admin.as_key(response.body["apiKey"])
    client.business_id = response.body["id"]  # type: ignore[attr-defined]
    return client


@pytest.fixture
def business(admin: ApiClient) -> ApiClient:
    return new_business(admin, "Acme")


@pytest.fixture
def other_business(admin: ApiClient) -> ApiClient:
    return new_business(admin, "Globex")
