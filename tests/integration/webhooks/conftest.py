"""Webhook requests as API Gateway delivers them (no authorizer on these routes), signed as the providers sign."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlencode

import boto3
import pytest
from twilio.request_validator import RequestValidator

from tests.integration.conftest import (
    CONTENT_SID,
    META_CREDENTIALS,
    TWILIO_CREDENTIALS,
    ApiClient,
    FakeLambdaContext,
    aws_environment,
    create_account,
    create_queue,
    load_function_module,
    new_api_client,
    new_business,
    phone,
)
from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.adapters.dynamodb.counters import CounterReader
from wabacast.adapters.dynamodb.inbound import inbound_partition
from wabacast.adapters.dynamodb.jobs import DynamoJobStore, job_to_item
from wabacast.bootstrap import issue_admin_key
from wabacast.domain.delivery import QueueTally
from wabacast.domain.jobs import Job, JobStatus
from wabacast.domain.receipts import job_reference
from wabacast.providers.webhooks import meta_signature
from wabacast.settings import Settings
from wabacast_local.moto_fixes import install_all as install_moto_fixes

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
WEBHOOK_SECRET_NAME = "wabacast/webhooks"
VERIFY_TOKEN = "verify-token-for-tests"
PUBLIC_HOST = "abc123.execute-api.us-east-1.amazonaws.com"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class WebhookResponse:
    status: int
    body: Any
    content_type: str


class WebhookCaller:
    """Sends events to the API handler the way API Gateway does for the public webhook routes."""

    def __init__(self, api: ModuleType) -> None:
        self._api = api

    def call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        query: str = "",
        base64_body: bool = False,
    ) -> WebhookResponse:
        all_headers = {"host": PUBLIC_HOST, "x-forwarded-proto": "https", **(headers or {})}
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": f"{method} {path}",
            "rawPath": path,
            "rawQueryString": query,
            "headers": all_headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": PUBLIC_HOST,
                "domainPrefix": "abc123",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
                "requestId": str(uuid.uuid4()),
                "routeKey": f"{method} {path}",
                "stage": "$default",
                "time": "29/Nov/2026:09:00:00 +0000",
                "timeEpoch": 0,
            },
            "isBase64Encoded": base64_body,
        }
        if query:
            event["queryStringParameters"] = dict(parse_qsl(query, keep_blank_values=True))
        if body is not None:
            event["body"] = base64.b64encode(body).decode() if base64_body else body.decode("utf-8")
        result = self._api.lambda_handler(event, FakeLambdaContext())
        text = result.get("body") or ""
        content_type = (result.get("headers") or {}).get("Content-Type", "")
        parsed = json.loads(text) if text and "json" in content_type else text
        return WebhookResponse(result["statusCode"], parsed, content_type)

    def meta(self, payload: dict[str, Any] | bytes, secret: str | None, *, tamper: bool = False) -> WebhookResponse:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"content-type": "application/json"}
        if secret is not None:
            headers["x-hub-signature-256"] = meta_signature(body, secret)
        if tamper:
            body = body.replace(b"delivered", b"dElivered", 1) if b"delivered" in body else body[:-1] + b" "
        return self.call("POST", "/api/webhooks/meta", body=body, headers=headers)

    def twilio(
        self,
        account_id: str,
        params: dict[str, str],
        auth_token: str | None,
        reference: str | None,
        *,
        signed_url: str | None = None,
    ) -> WebhookResponse:
        path = f"/api/webhooks/twilio/{account_id}"
        query = urlencode({"ref": reference}) if reference else ""
        url = f"https://{PUBLIC_HOST}{path}" + (f"?{query}" if query else "")
        headers = {"content-type": "application/x-www-form-urlencoded"}
        if auth_token is not None:
            headers["x-twilio-signature"] = RequestValidator(auth_token).compute_signature(signed_url or url, params)
        body = urlencode(params).encode()
        return self.call("POST", path, body=body, headers=headers, query=query, base64_body=True)


@dataclass
class WebhookWorld:
    settings: Settings
    business: ApiClient
    webhooks: WebhookCaller
    table: TableGateway
    jobs: DynamoJobStore

    @property
    def business_id(self) -> str:
        return str(self.business.business_id)  # type: ignore[attr-defined]

    def sent_jobs(self, queue_id: str, account_id: str, count: int, *, prefix: str = "wamid") -> list[Job]:
        """`count` jobs of the queue, written as a sender leaves them: SENT with the provider's message id."""
        now = datetime.now(UTC)
        jobs = [
            Job(
                id=f"job_{queue_id[-6:]}_{index:05d}",
                queue_id=queue_id,
                business_id=self.business_id,
                phone_number=phone(index),
                variables={},
                seq=index,
                status=JobStatus.SENT,
                attempts=1,
                account_id=account_id,
                provider_message_id=f"{prefix}.{queue_id}.{index}",
                created_at=now,
                updated_at=now,
                sent_at=now,
            )
            for index in range(count)
        ]
        self.table.batch_write([job_to_item(job) for job in jobs])
        return jobs

    def job(self, job: Job) -> Job:
        return self.jobs.get_jobs([(job.queue_id, job.id)])[job.id]

    def inbound(self, account_id: str) -> list[dict[str, Any]]:
        """The inbound messages kept for the account (wabacast.adapters.dynamodb.inbound)."""
        items, _ = self.table.query_page(
            partition_attribute="PK",
            partition_value=inbound_partition(account_id),
            sort_attribute="SK",
            sort_prefix=None,
            limit=100,
            next_token=None,
        )
        return items

    def tally(self, queue_id: str) -> QueueTally:
        return CounterReader(self.table).tally(queue_id)


def meta_status(template: str, job: Job, phone_number_id: str, **changes: Any) -> dict[str, Any]:
    """A fixture payload about `job`: its message id, its reference, the account's phone number id."""
    payload = fixture(template)
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = phone_number_id
    status = value["statuses"][0]
    status["id"] = job.provider_message_id
    status["biz_opaque_callback_data"] = job_reference(job.queue_id, job.id)
    status.update(changes)
    return payload


@contextmanager
def webhook_world(monkeypatch: pytest.MonkeyPatch, secret_name: str, secret: dict[str, str]) -> Iterator[WebhookWorld]:
    # A name per secret content: Powertools caches a secret by name for minutes, across tests of this process.
    monkeypatch.setenv("WEBHOOK_SECRET_NAME", secret_name)
    # The local stack's moto patches (transactions that lock and keep item snapshots, not table copies).
    install_moto_fixes()
    with aws_environment() as settings:
        settings = Settings.from_env()
        boto3.client("secretsmanager", region_name=settings.region).create_secret(
            Name=secret_name, SecretString=json.dumps(secret)
        )
        admin = new_api_client(issue_admin_key(settings, "tests"))
        business = new_business(admin, "Acme")
        webhooks = WebhookCaller(load_function_module("api", "handler"))
        table = TableGateway(boto3.client("dynamodb", region_name=settings.region), settings.table_name)
        yield WebhookWorld(settings, business, webhooks, table, DynamoJobStore(table))


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookWorld]:
    with webhook_world(monkeypatch, WEBHOOK_SECRET_NAME, {"metaVerifyToken": VERIFY_TOKEN}) as world:
        yield world


STACK_APP_SECRET = "5f4e3d2c1b0a99887766554433221100"


@pytest.fixture
def world_with_stack_app_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookWorld]:
    """The stack's webhook secret also holds a Meta app secret (one Meta app for every account, or the sandbox)."""
    secret = {"metaVerifyToken": VERIFY_TOKEN, "metaAppSecret": STACK_APP_SECRET}
    with webhook_world(monkeypatch, f"{WEBHOOK_SECRET_NAME}-app", secret) as world:
        yield world


def meta_account(world: WebhookWorld, number: int, phone_number_id: str, app_secret: str) -> dict[str, Any]:
    credentials = {**META_CREDENTIALS, "phoneNumberId": phone_number_id, "appSecret": app_secret}
    return create_account(world.business, phone(90000 + number), "meta", credentials=credentials)


def twilio_account(world: WebhookWorld, number: int, auth_token: str) -> dict[str, Any]:
    credentials = {**TWILIO_CREDENTIALS, "authToken": auth_token}
    return create_account(world.business, phone(90000 + number), "twilio", credentials=credentials)


def queue_for(world: WebhookWorld, account_id: str, *, twilio: bool = False) -> str:
    template = {"name": "spring_sale", "language": "en_US"}
    if twilio:
        template["contentSid"] = CONTENT_SID
    return str(create_queue(world.business, accountId=account_id, template=template)["id"])
