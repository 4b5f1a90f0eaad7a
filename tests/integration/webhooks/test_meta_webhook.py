"""POST/GET /api/webhooks/meta on moto: the handshake, signatures, and status receipts moving jobs and counters."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.client
import pytest

from tests.integration.conftest import create_account, phone
from tests.integration.webhooks.conftest import (
    STACK_APP_SECRET,
    VERIFY_TOKEN,
    WebhookWorld,
    fixture,
    meta_account,
    meta_status,
    queue_for,
)
from wabacast.domain.jobs import DeliveryState, JobStatus

SECRET_A = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
SECRET_B = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
NUMBER_A = "109876543210987"
NUMBER_B = "109876543210988"


def test_the_subscription_handshake_echoes_the_challenge_as_plain_text(world: WebhookWorld) -> None:
    # GIVEN the stack's verify token
    query = f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
    # WHEN Meta verifies the callback URL
    response = world.webhooks.call("GET", "/api/webhooks/meta", query=query)
    # THEN the challenge comes back as it was sent
    assert response.status == 200
    assert response.content_type.startswith("text/plain")
    assert response.body == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=" + VERIFY_TOKEN + "&hub.challenge=1",
        "hub.challenge=1",
    ],
)
def test_a_handshake_with_a_wrong_token_or_mode_is_refused(world: WebhookWorld, query: str) -> None:
    response = world.webhooks.call("GET", "/api/webhooks/meta", query=query)
    assert response.status == 403
    assert response.body["error"]["code"] == "INVALID_SIGNATURE"


def test_a_signed_delivered_status_moves_the_job_and_counts_it_once(world: WebhookWorld) -> None:
    # GIVEN a sent job of a Meta account
    account = meta_account(world, 1, NUMBER_A, SECRET_A)
    queue_id = queue_for(world, account["id"])
    (job,) = world.sent_jobs(queue_id, account["id"], 1)
    payload = meta_status("meta/status_delivered.json", job, NUMBER_A)

    # WHEN Meta posts the signed delivered status twice
    first = world.webhooks.meta(payload, SECRET_A)
    second = world.webhooks.meta(payload, SECRET_A)

    # THEN the job is DELIVERED, counted once; the duplicate changes nothing
    assert first.status == 200, first.body
    assert first.body["applied"] == 1
    assert second.status == 200
    assert second.body["unchanged"] == 1
    assert world.job(job).delivery == DeliveryState.DELIVERED
    assert world.tally(queue_id).counters.delivered == 1


def values_of(emitted: float | list[float] | None) -> list[float]:
    """An EMF metric's values: one number, or a list when a flush held several."""
    if emitted is None:
        return []
    return emitted if isinstance(emitted, list) else [emitted]


def test_each_request_records_its_latency_and_each_status_is_counted(
    world: WebhookWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a sent job of a Meta account
    account = meta_account(world, 1, NUMBER_A, SECRET_A)
    queue_id = queue_for(world, account["id"])
    (job,) = world.sent_jobs(queue_id, account["id"], 1)
    capsys.readouterr()

    # WHEN Meta posts a signed delivered status, then a forged one
    world.webhooks.meta(meta_status("meta/status_delivered.json", job, NUMBER_A), SECRET_A)
    world.webhooks.meta(meta_status("meta/status_read.json", job, NUMBER_A), "not-the-secret")

    # THEN the EMF lines count one status received (for the account) and time both requests (per route)
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    statuses = [document for document in documents if "StatusesReceived" in document]
    latencies = [value for document in documents for value in values_of(document.get("WebhookLatency"))]
    assert [document["account"] for document in statuses] == [account["id"]]
    assert values_of(statuses[0]["StatusesReceived"]) == [1]
    assert len(latencies) == 2
    assert all(isinstance(value, int | float) and value > 0 for value in latencies)


@pytest.mark.parametrize("case", ["unsigned", "forged", "wrong account", "changed byte", "not json"])
def test_unverifiable_statuses_are_refused_and_change_nothing(world: WebhookWorld, case: str) -> None:
    # GIVEN two Meta accounts with their own app secrets, and a sent job of the first
    account = meta_account(world, 1, NUMBER_A, SECRET_A)
    meta_account(world, 2, NUMBER_B, SECRET_B)
    queue_id = queue_for(world, account["id"])
    (job,) = world.sent_jobs(queue_id, account["id"], 1)
    payload = meta_status("meta/status_delivered.json", job, NUMBER_A)
    before = world.job(job)

    # WHEN the status arrives unsigned, forged, signed by the other account, altered after signing, or as junk
    if case == "unsigned":
        response = world.webhooks.meta(payload, None)
    elif case == "forged":
        response = world.webhooks.meta(payload, "f" * 32)
    elif case == "wrong account":
        response = world.webhooks.meta(payload, SECRET_B)
    elif case == "changed byte":
        response = world.webhooks.meta(payload, SECRET_A, tamper=True)
    else:
        response = world.webhooks.meta(b"not json at all", SECRET_A)

    # THEN 403, and neither the job nor the counters moved
    assert response.status == 403, response.body
    assert response.body["error"]["code"] == "INVALID_SIGNATURE"
    assert world.job(job) == before
    assert world.tally(queue_id).counters.delivered == 0


def test_a_status_for_an_unknown_message_is_acknowledged_and_counted(world: WebhookWorld) -> None:
    # GIVEN a Meta account and a status whose reference names no job
    account = meta_account(world, 1, NUMBER_A, SECRET_A)
    queue_id = queue_for(world, account["id"])
    (job,) = world.sent_jobs(queue_id, account["id"], 1)
    missing = job.model_copy(update={"id": "job_missing"})
    no_reference = meta_status("meta/status_read.json", job, NUMBER_A, biz_opaque_callback_data=None)
    other_message = meta_status("meta/status_read.json", job, NUMBER_A, id="wamid.someone-else")

    # WHEN they arrive signed
    responses = [
        world.webhooks.meta(meta_status("meta/status_read.json", missing, NUMBER_A), SECRET_A),
        world.webhooks.meta(no_reference, SECRET_A),
        world.webhooks.meta(other_message, SECRET_A),
    ]

    # THEN each is 200 and counted as unknown; nothing moved
    assert [response.status for response in responses] == [200, 200, 200]
    assert [response.body["unknown"] for response in responses] == [1, 1, 1]
    assert world.job(job).delivery is None


def test_a_late_failure_fails_the_job_with_its_error(world: WebhookWorld) -> None:
    # GIVEN a sent job
    account = meta_account(world, 1, NUMBER_A, SECRET_A)
    queue_id = queue_for(world, account["id"])
    (job,) = world.sent_jobs(queue_id, account["id"], 1)

    # WHEN Meta reports it failed (131026, undeliverable)
    response = world.webhooks.meta(meta_status("meta/status_failed.json", job, NUMBER_A), SECRET_A)

    # THEN the job is FAILED with the error, and the counters moved from sent to failed with the error counted
    assert response.status == 200, response.body
    stored = world.job(job)
    assert stored.status == JobStatus.FAILED
    assert stored.last_error is not None
    assert stored.last_error.code == "131026"
    tally = world.tally(queue_id)
    assert (tally.counters.sent, tally.counters.failed) == (-1, 1)
    assert tally.error_counts == {"131026": 1}


def test_a_late_opt_out_error_opts_the_number_out(world: WebhookWorld) -> None:
    # GIVEN a sent job
    account = meta_account(world, 1, NUMBER_A, SECRET_A)
    queue_id = queue_for(world, account["id"])
    (job,) = world.sent_jobs(queue_id, account["id"], 1)
    payload = meta_status("meta/status_failed.json", job, NUMBER_A)
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"] = 131050

    # WHEN Meta reports 131050 (the user stopped marketing messages) after the send
    response = world.webhooks.meta(payload, SECRET_A)

    # THEN the number is in the business's opt-outs, as for the same error at send time
    assert response.status == 200
    opt_outs = world.business.get("/api/whatsapp/opt-outs").body["items"]
    assert [item["phoneNumber"] for item in opt_outs] == [job.phone_number]


@pytest.mark.parametrize(
    "name",
    [
        "meta/message_text.json",
        "meta/message_button.json",
        "meta/phone_number_quality_update.json",
        "meta/message_template_status_update.json",
        "meta/account_update.json",
    ],
)
def test_other_notifications_are_acknowledged(world: WebhookWorld, name: str) -> None:
    # GIVEN a Meta account and a documented notification about it (signed with its secret)
    account = meta_account(world, 1, NUMBER_A, SECRET_A)
    payload = fixture(name)
    for change in payload["entry"][0]["changes"]:
        if "metadata" in change["value"]:
            change["value"]["metadata"]["phone_number_id"] = NUMBER_A
    # Notifications without a phone number id can only be verified with a stack-level app secret.
    has_number = any("metadata" in change["value"] for change in payload["entry"][0]["changes"])

    # WHEN it arrives
    response = world.webhooks.meta(payload, SECRET_A)

    # THEN messages are acknowledged and counted; account fields need the stack's app secret
    if has_number:
        assert response.status == 200, response.body
        assert response.body["inbound"] == 1
        # AND the message is kept for the account, with who sent it and what
        (kept,) = world.inbound(account["id"])
        assert kept["from_number"] == "+34612300001"
        assert kept["text"] == ("BAJA" if name.endswith("text.json") else "Stop promotions")
        assert kept["expiresAt"] > 0
    else:
        assert response.status == 403


def test_a_thousand_statuses_out_of_order_and_duplicated_leave_exact_counters(world: WebhookWorld) -> None:
    # GIVEN 300 sent jobs and, per job, a random subset of sent/delivered/read/failed statuses, each sent once or
    # twice, 1,000 statuses in all, shuffled and posted one to eight per request (Meta batches statuses)
    rng = random.Random(8)
    account = meta_account(world, 1, NUMBER_A, SECRET_A)
    queue_id = queue_for(world, account["id"])
    jobs = world.sent_jobs(queue_id, account["id"], 300)
    statuses: list[dict[str, object]] = []
    expected_delivered = expected_read = expected_failed = 0
    templates = {
        "sent": "meta/status_sent.json",
        "delivered": "meta/status_delivered.json",
        "read": "meta/status_read.json",
        "failed": "meta/status_failed.json",
    }
    chosen: list[list[str]] = []
    for job in jobs:
        kinds = rng.choice(
            [
                ["sent", "delivered", "read"],
                ["delivered", "read"],
                ["read"],
                ["sent", "delivered"],
                ["sent", "failed"],
                ["failed", "read"],
                ["sent"],
            ]
        )
        chosen.append(kinds)
        for kind in kinds:
            payload = meta_status(templates[kind], job, NUMBER_A)
            statuses.append(payload["entry"][0]["changes"][0]["value"]["statuses"][0])
    while len(statuses) < 1000:
        statuses.append(json.loads(json.dumps(rng.choice(statuses))))  # duplicates
    rng.shuffle(statuses)

    # WHEN they are posted
    envelope = fixture("meta/status_read.json")
    envelope["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = NUMBER_A
    index = 0
    while index < len(statuses):
        size = rng.randint(1, 8)
        envelope["entry"][0]["changes"][0]["value"]["statuses"] = statuses[index : index + size]
        response = world.webhooks.meta(envelope, SECRET_A)
        assert response.status == 200, response.body
        index += size

    # THEN each job ends where its statuses say, whatever their order, and every counter moved once per job
    final = {job.id: world.job(job) for job in jobs}
    for job, kinds in zip(jobs, chosen, strict=True):
        stored = final[job.id]
        reached_read = "read" in kinds
        reached_delivered = reached_read or "delivered" in kinds
        if reached_read:
            assert stored.delivery == DeliveryState.READ, (kinds, stored)
        elif reached_delivered:
            assert stored.delivery == DeliveryState.DELIVERED, (kinds, stored)
        expected_delivered += reached_delivered
        expected_read += reached_read
        # A failure counts only when it came before any delivery receipt.
        expected_failed += stored.status == JobStatus.FAILED
    tally = world.tally(queue_id).counters
    assert tally.delivered == expected_delivered
    assert tally.read == expected_read
    assert tally.failed == expected_failed
    assert tally.sent == -expected_failed  # the jobs were written SENT without counting them
    assert expected_failed > 0
    assert expected_delivered > expected_read > 0


def test_statuses_of_many_jobs_in_one_notification_share_one_transaction(
    world: WebhookWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 20 sent jobs, and one notification carrying a delivered status for each, then a read for the first
    account = meta_account(world, 1, NUMBER_A, SECRET_A)
    queue_id = queue_for(world, account["id"])
    jobs = world.sent_jobs(queue_id, account["id"], 20)
    statuses = [
        meta_status("meta/status_delivered.json", job, NUMBER_A)["entry"][0]["changes"][0]["value"]["statuses"][0]
        for job in jobs
    ]
    statuses.append(
        meta_status("meta/status_read.json", jobs[0], NUMBER_A)["entry"][0]["changes"][0]["value"]["statuses"][0]
    )
    envelope = fixture("meta/status_delivered.json")
    envelope["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = NUMBER_A
    envelope["entry"][0]["changes"][0]["value"]["statuses"] = statuses
    operations: list[str] = []
    real_call = botocore.client.BaseClient._make_api_call

    def counting_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        operations.append(operation)
        return real_call(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting_call)

    # WHEN Meta posts it
    response = world.webhooks.meta(envelope, SECRET_A)

    # THEN all 21 statuses are applied with two transactions (the 20 deliveries with one counter-shard write, then
    # the first job's read, which may not share a transaction with that job's delivery), not 21
    assert response.status == 200, response.body
    assert response.body["applied"] == 21
    assert operations.count("TransactWriteItems") == 2, operations
    counters = world.tally(queue_id).counters
    assert (counters.delivered, counters.read) == (20, 1)
    assert world.job(jobs[0]).delivery == DeliveryState.READ
    assert {world.job(job).delivery for job in jobs[1:]} == {DeliveryState.DELIVERED}


def test_concurrent_duplicates_count_once(world: WebhookWorld, concurrent_sandboxes: None) -> None:
    # GIVEN 40 sent jobs, and for each a delivered and a read status, each sent three times
    account = meta_account(world, 1, NUMBER_A, SECRET_A)
    queue_id = queue_for(world, account["id"])
    jobs = world.sent_jobs(queue_id, account["id"], 40)
    payloads = [
        meta_status(template, job, NUMBER_A)
        for job in jobs
        for template in ("meta/status_delivered.json", "meta/status_read.json")
        for _ in range(3)
    ]
    random.Random(3).shuffle(payloads)

    # WHEN four concurrent API sandboxes receive them at once
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda payload: world.webhooks.meta(payload, SECRET_A).status, payloads))

    # THEN every request is acknowledged and each job counts once as delivered and once as read
    assert set(statuses) == {200}
    counters = world.tally(queue_id).counters
    assert (counters.delivered, counters.read) == (40, 40)
    assert {world.job(job).delivery for job in jobs} == {DeliveryState.READ}


def test_with_a_stack_app_secret_sandbox_statuses_and_account_fields_are_verified_with_it(
    world_with_stack_app_secret: WebhookWorld,
) -> None:
    # GIVEN a stack-level Meta app secret and a sandbox account (it has no app secret of its own; its phone number
    # id is its account id)
    world = world_with_stack_app_secret
    account = create_account(world.business, phone(90001), "sandbox")
    queue_id = queue_for(world, account["id"])
    (job,) = world.sent_jobs(queue_id, account["id"], 1)
    status = meta_status("meta/status_read.json", job, account["id"])

    # WHEN a read status and a quality update arrive signed with the stack's secret, and the status again signed
    # with another secret
    read = world.webhooks.meta(status, STACK_APP_SECRET)
    quality = world.webhooks.meta(fixture("meta/phone_number_quality_update.json"), STACK_APP_SECRET)
    forged = world.webhooks.meta(status, SECRET_A)

    # THEN the first two are accepted (read and delivered counted once), the forged one refused
    assert read.status == 200, read.body
    assert read.body["applied"] == 1
    assert (quality.status, quality.body["events"]) == (200, 1)
    assert forged.status == 403
    counters = world.tally(queue_id).counters
    assert (counters.delivered, counters.read) == (1, 1)
