"""POST /api/webhooks/twilio/{accountId} on moto: RequestValidator signatures over the URL Twilio saw."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.integration.webhooks.conftest import (
    PUBLIC_HOST,
    WebhookWorld,
    fixture,
    queue_for,
    twilio_account,
)
from wabacast.domain.jobs import DeliveryState, JobStatus
from wabacast.domain.receipts import job_reference

TOKEN_A = "0123456789abcdef0123456789abcdef"
TOKEN_B = "fedcba9876543210fedcba9876543210"


def callback(name: str, sid: str | None) -> dict[str, str]:
    params: dict[str, str] = fixture(name)
    params["MessageSid"] = params["SmsSid"] = sid or params["MessageSid"]
    return params


def test_signed_callbacks_move_the_job_forward_once(world: WebhookWorld) -> None:
    # GIVEN a sent job of a Twilio account
    account = twilio_account(world, 1, TOKEN_A)
    queue_id = queue_for(world, account["id"], twilio=True)
    (job,) = world.sent_jobs(queue_id, account["id"], 1, prefix="SM")
    reference = job_reference(job.queue_id, job.id)

    # WHEN read arrives before delivered, and delivered twice
    for name in ("twilio/status_read.json", "twilio/status_delivered.json", "twilio/status_delivered.json"):
        response = world.webhooks.twilio(account["id"], callback(name, job.provider_message_id), TOKEN_A, reference)
        assert response.status == 200, response.body

    # THEN the job was read, and delivered and read each count once
    assert world.job(job).delivery == DeliveryState.READ
    counters = world.tally(queue_id).counters
    assert (counters.delivered, counters.read) == (1, 1)


def test_an_undelivered_callback_fails_the_job_with_its_error_code(world: WebhookWorld) -> None:
    account = twilio_account(world, 1, TOKEN_A)
    queue_id = queue_for(world, account["id"], twilio=True)
    (job,) = world.sent_jobs(queue_id, account["id"], 1, prefix="SM")
    params = callback("twilio/status_undelivered.json", job.provider_message_id)

    response = world.webhooks.twilio(account["id"], params, TOKEN_A, job_reference(job.queue_id, job.id))

    assert response.status == 200, response.body
    stored = world.job(job)
    assert stored.status == JobStatus.FAILED
    assert stored.last_error is not None
    assert stored.last_error.code == "63016"


@pytest.mark.parametrize("case", ["unsigned", "wrong account", "changed field", "other host", "unknown account"])
def test_unverifiable_callbacks_are_refused_and_change_nothing(world: WebhookWorld, case: str) -> None:
    # GIVEN two Twilio accounts and a sent job of the first
    account = twilio_account(world, 1, TOKEN_A)
    twilio_account(world, 2, TOKEN_B)
    queue_id = queue_for(world, account["id"], twilio=True)
    (job,) = world.sent_jobs(queue_id, account["id"], 1, prefix="SM")
    reference = job_reference(job.queue_id, job.id)
    params = callback("twilio/status_delivered.json", job.provider_message_id)
    before = world.job(job)

    # WHEN the callback is unsigned, signed with the other account's token, altered, signed for another URL, or
    # sent to an account that does not exist
    if case == "unsigned":
        response = world.webhooks.twilio(account["id"], params, None, reference)
    elif case == "wrong account":
        response = world.webhooks.twilio(account["id"], params, TOKEN_B, reference)
    elif case == "changed field":
        from twilio.request_validator import RequestValidator

        url = f"https://{PUBLIC_HOST}/api/webhooks/twilio/{account['id']}?ref={reference.replace('/', '%2F')}"
        signature = RequestValidator(TOKEN_A).compute_signature(url, params)
        altered = {**params, "MessageStatus": "read"}
        response = world.webhooks.call(
            "POST",
            f"/api/webhooks/twilio/{account['id']}",
            body=urlencode(altered).encode(),
            headers={"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature},
            query=f"ref={reference.replace('/', '%2F')}",
        )
    elif case == "other host":
        other = f"https://evil.example.com/api/webhooks/twilio/{account['id']}"
        response = world.webhooks.twilio(account["id"], params, TOKEN_A, reference, signed_url=other)
    else:
        response = world.webhooks.twilio("acc_missing", params, TOKEN_A, reference)

    # THEN 403, and nothing moved
    assert response.status == 403, response.body
    assert world.job(job) == before
    assert world.tally(queue_id).counters.delivered == 0


def test_unknown_messages_and_inbound_messages_are_acknowledged(world: WebhookWorld) -> None:
    account = twilio_account(world, 1, TOKEN_A)
    unknown = world.webhooks.twilio(account["id"], callback("twilio/status_delivered.json", None), TOKEN_A, None)
    inbound = world.webhooks.twilio(account["id"], fixture("twilio/inbound_message.json"), TOKEN_A, None)
    assert (unknown.status, unknown.body["unknown"]) == (200, 1)
    assert (inbound.status, inbound.body["inbound"]) == (200, 1)
    (kept,) = world.inbound(account["id"])
    assert (kept["from_number"], kept["text"]) == ("+34612300001", "STOP")
