"""A STOP reply that arrives after a queue was planned: the sender's send-time check ends that number's job."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.integration.conftest import ApiClient, load_function_module, phone
from tests.integration.delivery.conftest import Pipeline, new_queue, process, sandbox_account
from tests.integration.webhooks.conftest import WebhookCaller, fixture
from wabacast.domain.jobs import JobStatus

STACK_APP_SECRET = "00112233445566778899aabbccddeeff"


def test_a_stop_reply_ends_the_numbers_pending_job_as_opted_out(
    business: ApiClient, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a sandbox account (its Meta-format webhooks are signed with the stack's app secret) and a queue to two
    # numbers, planned: both jobs wait in the account's queue
    secret_name = "wabacast/webhooks-replies"
    boto3.client("secretsmanager", region_name=pipeline.settings.region).create_secret(
        Name=secret_name, SecretString=json.dumps({"metaVerifyToken": "t" * 32, "metaAppSecret": STACK_APP_SECRET})
    )
    monkeypatch.setenv("WEBHOOK_SECRET_NAME", secret_name)
    webhooks = WebhookCaller(load_function_module("api", "handler"))  # a fresh module reads the secret's name
    account = sandbox_account(business, phone(1))
    stopping, staying = phone(7_001), phone(7_002)
    queue = new_queue(business, [stopping, staying], accountId=account["id"])
    process(business, queue["id"])
    pipeline.tick()
    assert {job.status for job in pipeline.jobs(queue["id"])} == {JobStatus.PENDING}

    # WHEN the first number replies "stop" before the sender gets to its job
    payload = fixture("meta/message_text.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = account["id"]
    value["messages"][0].update({"from": stopping.removeprefix("+"), "text": {"body": "stop"}})
    response = webhooks.meta(payload, STACK_APP_SECRET)
    assert response.status == 200, response.body
    progress = pipeline.run_until_settled(queue["id"], max_rounds=5)[queue["id"]]

    # THEN its job ends OPTED_OUT and only the other number got the message
    statuses = {job.phone_number: job.status for job in pipeline.jobs(queue["id"])}
    assert statuses == {stopping: JobStatus.OPTED_OUT, staying: JobStatus.SENT}
    assert progress["counters"]["optedOut"] == 1
    assert pipeline.recipients_messaged() == {staying: 1}
