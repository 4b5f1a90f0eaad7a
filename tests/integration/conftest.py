"""Handlers on moto: the API and authorizer Lambdas driven with real HTTP API v2 events, in process."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from wabacast.adapters.dynamodb import QueueRepository
from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.adapters.dynamodb.queues import queue_to_item
from wabacast.bootstrap import create_resources, issue_admin_key
from wabacast.domain.models import QueueStatus
from wabacast.settings import Settings

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def load_function_module(function: str, module: str) -> ModuleType:
    """Import a handler file the way Lambda does: from its own code folder, under a unique name."""
    path = FUNCTIONS / function / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"wabacast_test_{function}_{module}", path)
    assert spec
    assert spec.loader
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

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        raw_body: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        all_headers = {"content-type": "application/json", **(headers or {})}
        if self.api_key is not None:
            all_headers["authorization"] = f"Bearer {self.api_key}"
        query_pairs = {key: str(value) for key, value in (query or {}).items() if value is not None}
        public = path in ("/api/openapi.json", "/api/docs")
        route_key = f"{method} {path}" if public else "ANY /api/{proxy+}"
        context: dict[str, Any] = {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 0,
        }
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "rawQueryString": urlencode(query_pairs),
            "headers": all_headers,
            "requestContext": context,
            "isBase64Encoded": False,
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
            authorizer_event = {
                **event,
                "type": "REQUEST",
                "identitySource": [all_headers["authorization"]],
                "routeArn": "arn:aws:execute-api:us-east-1:123456789012:local/$default/ANY/api",
            }
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


ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "TABLE_NAME": "wabacast-test",
    "SECRETS_PREFIX": "wabacast",
    "POWERTOOLS_SERVICE_NAME": "wabacast",
    "SANDBOX_BASE_URL": "http://sandbox.invalid",
    "SCHEDULE_GROUP_NAME": "wabacast-test",
    "SCHEDULER_TARGET_ARN": "arn:aws:lambda:us-east-1:123456789012:function:wabacast-test-scheduler",
    "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/wabacast-test-scheduler-invoke",
    "SCHEDULE_DLQ_ARN": "arn:aws:sqs:us-east-1:123456789012:wabacast-test-schedules-dlq",
    # As on the local stack: the tests register sandbox accounts.
    "ALLOW_SANDBOX_ACCOUNTS": "true",
}


@cache
def _shared_session() -> boto3.Session:
    return boto3.Session()


@contextmanager
def aws_environment() -> Iterator[Settings]:
    """The Lambda environment on moto: variables set, table created; undone on exit."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENVIRONMENT.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            # moto starts every mock with no default boto3 session; sharing one across tests keeps botocore's
            # loaded service models instead of parsing them again for every test (clients are still new).
            patch.setattr(boto3, "DEFAULT_SESSION", _shared_session())
            settings = Settings.from_env()
            create_resources(settings)
            # CDK makes the schedule group in the cloud, the local stack makes its own.
            boto3.client("scheduler", region_name=settings.region).create_schedule_group(
                Name=str(settings.schedule_group_name)
            )
            yield settings


def new_api_client(api_key: str | None = None) -> ApiClient:
    """A client over freshly imported handler modules (own cached services); call it while moto is active."""
    return ApiClient(load_function_module("api", "handler"), load_function_module("api", "authorizer"), api_key)


@pytest.fixture
def settings() -> Iterator[Settings]:
    with aws_environment() as settings:
        yield settings


@pytest.fixture
def anonymous(settings: Settings) -> ApiClient:
    # Fresh modules per test: their cached services hold boto3 clients bound to this test's moto.
    return new_api_client()


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


# Shared, module-scoped environment: for modules whose tests only send requests that must be refused, so they
# cannot change what the next test sees. Saves the per-test moto and handler set-up.
@pytest.fixture(scope="module")
def module_settings() -> Iterator[Settings]:
    with aws_environment() as settings:
        yield settings


@pytest.fixture(scope="module")
def module_admin(module_settings: Settings) -> ApiClient:
    return new_api_client(issue_admin_key(module_settings, "tests"))


@pytest.fixture(scope="module")
def module_business(module_admin: ApiClient) -> ApiClient:
    return new_business(module_admin, "Shared")


# Test data -----------------------------------------------------------------------------------------------------
TWILIO_CREDENTIALS = {"accountSid": "AC" + "0123456789abcdef" * 2, "authToken": "fedcba9876543210" * 2}
META_CREDENTIALS = {
    "phoneNumberId": "109876543210987",
    "wabaId": "209876543210",
    "accessToken": "EAAGmetaAccessTokenValue0123456789",
    "appSecret": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
}
CONTENT_SID = "HX" + "0123456789abcdef" * 2


def phone(n: int) -> str:
    """A distinct valid E.164 Spanish mobile number per n."""
    return f"+346123{n:05d}"


def account_body(phone_number: str, provider: str = "sandbox", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"displayName": f"Sender {phone_number}", "phoneNumber": phone_number, "provider": provider}
    if provider == "twilio":
        body["credentials"] = dict(TWILIO_CREDENTIALS)
    elif provider == "meta":
        body["credentials"] = dict(META_CREDENTIALS)
    body.update(fields)
    return body


def create_account(client: ApiClient, phone_number: str, provider: str = "sandbox", **fields: Any) -> dict[str, Any]:
    response = client.post("/api/whatsapp/accounts", account_body(phone_number, provider, **fields))
    assert response.status == 201, response.body
    return response.body  # type: ignore[no-any-return]


def queue_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Spring sale",
        "template": {"name": "spring_sale", "language": "en_US"},
        "audience": {"recipients": [{"phoneNumber": phone(9001)}, {"phoneNumber": phone(9002)}]},
    }
    body.update(fields)
    return body


def create_queue(client: ApiClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/whatsapp/queue", queue_body(**fields))
    assert response.status == 201, response.body
    return response.body  # type: ignore[no-any-return]


def set_queue_status(settings: Settings, business_id: str, queue_id: str, status: QueueStatus) -> None:
    """Move a stored queue to `status` the way the lifecycle will: status and its index keys change together.

    The index keys come from the repository's own item layout, so they match what the listings query.
    """
    table = TableGateway(boto3.client("dynamodb", region_name=settings.region), settings.table_name)
    repository = QueueRepository(table)
    queue = repository.get(business_id, queue_id)
    assert queue is not None
    moved = queue.model_copy(update={"status": status, "updated_at": queue.updated_at + timedelta(milliseconds=1)})
    item = queue_to_item(moved)
    changed = ["status", "updated_at", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK"]
    table.client.update_item(
        TableName=settings.table_name,
        Key={"PK": item["PK"], "SK": item["SK"]},
        UpdateExpression="SET " + ", ".join(f"#a{index} = :a{index}" for index in range(len(changed))),
        ExpressionAttributeNames={f"#a{index}": name for index, name in enumerate(changed)},
        ExpressionAttributeValues={f":a{index}": item[name] for index, name in enumerate(changed)},
        ConditionExpression="attribute_exists(PK)",
    )


def all_pages(client: ApiClient, path: str, limit: int, **query: Any) -> list[list[dict[str, Any]]]:
    """Follow nextToken until it is null; return the items of every page."""
    pages: list[list[dict[str, Any]]] = []
    token: str | None = None
    while True:
        response = client.get(path, limit=limit, nextToken=token, **query)
        assert response.status == 200, response.body
        pages.append(response.body["items"])
        token = response.body["nextToken"]
        if token is None:
            return pages
        assert len(pages) < 50, "nextToken never became null"


@pytest.fixture
def concurrent_sandboxes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let threads stand in for concurrent Lambda sandboxes sharing one (moto) AWS.

    - Powertools keeps the event being resolved on a class attribute shared by every resolver in the process,
      and the route being called in the resolver's context, so concurrent threads would read each other's bodies,
      paths and routes. Lambda never runs two events in one process: here each thread keeps its own.
    - moto applies a request in several Python steps (a transaction checks its conditions, then writes), while
      AWS applies each request atomically: here each AWS request runs alone. Requests of different threads still
      interleave between calls, which is where the application's races are.
    """
    state = threading.local()
    original_to_proxy_event = APIGatewayHttpResolver._to_proxy_event

    def to_proxy_event(self: APIGatewayHttpResolver, event: dict[str, Any]) -> Any:
        state.event = original_to_proxy_event(self, event)
        return state.event

    monkeypatch.setattr(APIGatewayHttpResolver, "_to_proxy_event", to_proxy_event)
    monkeypatch.setattr(APIGatewayHttpResolver, "current_event", property(lambda _: state.event), raising=False)

    # The resolver's request context (the route being called) is per resolver, and here threads share one resolver.
    def thread_context(_: APIGatewayHttpResolver) -> dict[str, Any]:
        if not hasattr(state, "context"):
            state.context = {}
        return state.context  # type: ignore[no-any-return]

    def set_thread_context(_: APIGatewayHttpResolver, value: dict[str, Any]) -> None:
        state.context = value

    monkeypatch.setattr(APIGatewayHttpResolver, "context", property(thread_context, set_thread_context), raising=False)

    aws_lock = threading.RLock()
    original_process_request = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with aws_lock:
            return original_process_request(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)


def assert_error(response: ApiResponse, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """The API's error envelope: {"error": {"code", "message", "field"?}}; 422 messages start with the field."""
    assert response.status == status, response.body
    assert isinstance(response.body, dict), response.body
    error: dict[str, Any] = response.body["error"]
    assert error["code"] == code, error
    assert error.get("field") == field, error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    if status == 422 and field is not None:
        assert error["message"].startswith(field), error
    return error
