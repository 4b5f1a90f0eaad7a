"""Provider webhooks over real HTTP on the local stack: the routes need no key, the signatures are checked with
the secrets the stack wrote to local.json and the account's credentials, over the URL as the caller saw it."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

from tests.e2e.conftest import RunningLocalStack
from wabacast.providers.webhooks import meta_signature

TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"


def test_the_meta_handshake_uses_the_verify_token_in_local_json(
    local_stack: RunningLocalStack, anonymous: httpx.Client
) -> None:
    # GIVEN the verify token the stack generated
    token = local_stack.state["metaVerifyToken"]
    # WHEN Meta's handshake comes with it, and with another one
    good = anonymous.get(
        "/api/webhooks/meta", params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "42"}
    )
    bad = anonymous.get(
        "/api/webhooks/meta", params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"}
    )
    # THEN the challenge comes back as plain text, and the wrong token is refused
    assert (good.status_code, good.text) == (200, "42")
    assert good.headers["content-type"].startswith("text/plain")
    assert bad.status_code == 403


def test_a_sandbox_status_signed_with_the_stack_app_secret_is_acknowledged(
    local_stack: RunningLocalStack, anonymous: httpx.Client, demo_business: httpx.Client
) -> None:
    # GIVEN a sandbox account (Meta format, its phone number id is its account id)
    created = demo_business.post(
        "/api/whatsapp/accounts",
        json={"displayName": "Hooks", "phoneNumber": "+34612399001", "provider": "sandbox"},
    )
    assert created.status_code == 201, created.text
    account_id = created.json()["id"]
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"phone_number_id": account_id},
                                "statuses": [{"id": "wamid.unknown", "status": "delivered", "timestamp": "1"}],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    secret = local_stack.state["metaAppSecret"]
    # WHEN it is posted signed, and unsigned
    signed = anonymous.post(
        "/api/webhooks/meta",
        content=body,
        headers={"content-type": "application/json", "x-hub-signature-256": meta_signature(body, secret)},
    )
    unsigned = anonymous.post("/api/webhooks/meta", content=body, headers={"content-type": "application/json"})
    # THEN the signed one is acknowledged (a message it does not know: counted), the unsigned one refused
    assert signed.status_code == 200, signed.text
    assert signed.json()["unknown"] == 1
    assert unsigned.status_code == 403


def test_a_twilio_callback_is_verified_over_the_url_the_caller_used(
    local_stack: RunningLocalStack, anonymous: httpx.Client, demo_business: httpx.Client
) -> None:
    # GIVEN a Twilio account
    created = demo_business.post(
        "/api/whatsapp/accounts",
        json={
            "displayName": "Twilio hooks",
            "phoneNumber": "+34612399002",
            "provider": "twilio",
            "credentials": {"accountSid": "AC" + "0123456789abcdef" * 2, "authToken": TWILIO_TOKEN},
        },
    )
    assert created.status_code == 201, created.text
    account_id = created.json()["id"]
    path = f"/api/webhooks/twilio/{account_id}"
    params = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered", "AccountSid": "AC" + "0" * 32}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(f"{local_stack.api_url}{path}", params)
    form = {"content-type": "application/x-www-form-urlencoded"}
    # WHEN Twilio posts a signed status callback, and the same one with a changed field
    signed = anonymous.post(path, content=urlencode(params), headers={**form, "x-twilio-signature": signature})
    altered = anonymous.post(
        path,
        content=urlencode({**params, "MessageStatus": "read"}),
        headers={**form, "x-twilio-signature": signature},
    )
    # THEN the first is acknowledged (no job reference: an unknown message), the altered one refused
    assert signed.status_code == 200, signed.text
    assert signed.json()["unknown"] == 1
    assert altered.status_code == 403
