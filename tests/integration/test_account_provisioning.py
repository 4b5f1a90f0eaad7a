"""Each account gets its own SQS FIFO queue, dead-letter queue and (in AWS) event source mappings."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.integration.conftest import ApiClient, account_body, aws_environment, create_account, new_api_client, phone
from wabacast.adapters.sqs import MAX_RECEIVE_COUNT, AccountQueues
from wabacast.settings import Settings


def _queue(sqs: Any, name: str) -> tuple[str, dict[str, str], dict[str, str]]:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
    return url, attributes, tags


def _function(name: str) -> str:
    """A stored (never invoked) Lambda function in moto, for event source mappings to point at."""
    iam = boto3.client("iam")
    role = iam.create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handler.py", "def lambda_handler(event, context):\n    return {}\n")
    return boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": archive.getvalue()},
    )["FunctionArn"]


@pytest.fixture
def mapped() -> Iterator[tuple[ApiClient, str, str]]:
    """The API as deployed in AWS: sender and dead-letter function ARNs set, so accounts get mappings."""
    with aws_environment(), pytest.MonkeyPatch.context() as patch:
        sender_arn, dead_letter_arn = _function("wabacast-sender"), _function("wabacast-dead-letter")
        patch.setenv("SENDER_FUNCTION_ARN", sender_arn)
        patch.setenv("DEAD_LETTER_FUNCTION_ARN", dead_letter_arn)
        admin = new_api_client()
        from wabacast.bootstrap import issue_admin_key

        admin = admin.as_key(issue_admin_key(Settings.from_env(), "tests"))
        created = admin.post("/api/admin/businesses", {"name": "Mapped", "timezone": "UTC"})
        yield admin.as_key(created.body["apiKey"]), sender_arn, dead_letter_arn


def test_account_gets_a_fifo_queue_redriving_to_a_fifo_dead_letter_queue(business: ApiClient) -> None:
    # GIVEN / WHEN an account is created
    account = create_account(business, phone(1))
    # THEN its queue and DLQ exist, FIFO, tagged, with the redrive above the largest maxAttempts
    sqs = boto3.client("sqs")
    _, attributes, tags = _queue(sqs, f"wabacast-{account['id']}.fifo")
    _, dlq_attributes, dlq_tags = _queue(sqs, f"wabacast-{account['id']}-dlq.fifo")
    assert attributes["FifoQueue"] == "true"
    assert dlq_attributes["FifoQueue"] == "true"
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_attributes["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == MAX_RECEIVE_COUNT > 10
    assert tags == dlq_tags == {"wabacast:business": business.business_id, "wabacast:account": account["id"]}  # type: ignore[attr-defined]
    assert account["deliveryReady"] is True


def test_mapping_follows_the_rate_and_is_disabled_while_suspended(mapped: tuple[ApiClient, str, str]) -> None:
    client, sender_arn, dead_letter_arn = mapped
    lambdas = boto3.client("lambda")
    sqs = boto3.client("sqs")
    # GIVEN an account at 80 messages/s (with the default 0.8 s batch time)
    account = create_account(client, phone(2), limits={"messagesPerSecond": 80})
    _, attributes, _ = _queue(sqs, f"wabacast-{account['id']}.fifo")
    _, dlq_attributes, _ = _queue(sqs, f"wabacast-{account['id']}-dlq.fifo")

    def mapping(source_arn: str) -> dict[str, Any]:
        mappings = lambdas.list_event_source_mappings(EventSourceArn=source_arn)["EventSourceMappings"]
        assert len(mappings) == 1
        return mappings[0]

    # THEN the queue maps to the sender with concurrency from the rate, and the DLQ to the dead-letter consumer
    sender_mapping = mapping(attributes["QueueArn"])
    assert sender_mapping["FunctionArn"] == sender_arn
    assert sender_mapping["ScalingConfig"]["MaximumConcurrency"] == 8  # ceil(80 x 0.8 / 10) + 1
    assert sender_mapping["BatchSize"] == 10
    assert mapping(dlq_attributes["QueueArn"])["FunctionArn"] == dead_letter_arn
    # WHEN the rate changes and the account is suspended
    updated = client.put(
        f"/api/whatsapp/accounts/{account['id']}", {"limits": {"messagesPerSecond": 200}, "status": "SUSPENDED"}
    )
    assert updated.status == 200, updated.body
    # THEN the same mapping is updated, not duplicated, and disabled
    sender_mapping = mapping(attributes["QueueArn"])
    assert sender_mapping["ScalingConfig"]["MaximumConcurrency"] == 17  # ceil(200 x 0.8 / 10) + 1
    assert sender_mapping["State"] in ("Disabled", "Disabling")
    # WHEN the account is deleted
    assert client.delete(f"/api/whatsapp/accounts/{account['id']}").status == 204
    # THEN its queues and mappings are gone
    names = sqs.list_queues(QueueNamePrefix=f"wabacast-{account['id']}").get("QueueUrls", [])
    assert names == []
    assert lambdas.list_event_source_mappings(EventSourceArn=attributes["QueueArn"])["EventSourceMappings"] == []


def test_retried_create_completes_an_interrupted_provisioning(
    business: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN provisioning that crashes once, after the account was written
    original = AccountQueues.provision
    calls = {"count": 0}

    def crash_once(self: AccountQueues, account: Any) -> None:
        calls["count"] += 1
        if calls["count"] == 1:
            raise RuntimeError("lost the connection halfway")
        original(self, account)

    monkeypatch.setattr(AccountQueues, "provision", crash_once)
    body = account_body(phone(3))
    first = business.post("/api/whatsapp/accounts", body)
    assert first.status == 500
    listed = business.get("/api/whatsapp/accounts").body["items"]
    assert [item["deliveryReady"] for item in listed] == [False]
    # WHEN the client retries the same create
    second = business.post("/api/whatsapp/accounts", body)
    # THEN it completes the same account instead of refusing the number
    assert second.status == 201, second.body
    assert second.body["id"] == listed[0]["id"]
    assert second.body["deliveryReady"] is True
    assert boto3.client("sqs").get_queue_url(QueueName=f"wabacast-{listed[0]['id']}.fifo")["QueueUrl"]
    # AND a different account on the same number is still refused
    other = business.post("/api/whatsapp/accounts", {**body, "displayName": "Someone else"})
    assert other.status == 409
