"""Replies on moto: stop and start keywords from signed Meta and Twilio webhooks, and the inbound listing route."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.client import BaseClient

from tests.integration.conftest import new_api_client, new_business
from tests.integration.webhooks.conftest import WebhookWorld, fixture, meta_account, twilio_account
from wabacast.bootstrap import issue_admin_key

SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
NUMBER_ID = "109876543210987"
TOKEN = "0123456789abcdef0123456789abcdef"
SENDER = "+34612300001"


def meta_text(text: str, message_id: str, timestamp: int = 1764406900) -> dict[str, Any]:
    """The documented inbound text payload, from SENDER to the account's number, saying `text`."""
    payload = fixture("meta/message_text.json")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update(id=message_id, timestamp=str(timestamp), text={"body": text})
    return payload


def twilio_text(text: str, sid: str) -> dict[str, str]:
    params: dict[str, str] = fixture("twilio/inbound_message.json")
    params.update(Body=text, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
    return params


def opt_outs(world: WebhookWorld) -> dict[str, dict[str, Any]]:
    response = world.business.get("/api/whatsapp/opt-outs")
    assert response.status == 200, response.body
    return {item["phoneNumber"]: item for item in response.body["items"]}


def test_a_signed_meta_baja_opts_the_sender_out_and_alta_opts_it_back_in(world: WebhookWorld) -> None:
    # GIVEN a Meta account
    account = meta_account(world, 1, NUMBER_ID, SECRET)

    # WHEN the person writes " bája " (signed by the account's app secret)
    response = world.webhooks.meta(meta_text(" bája ", "wamid.1", 1764406900), SECRET)

    # THEN the number is opted out of the business, as a reply
    assert response.status == 200, response.body
    assert opt_outs(world)[SENDER]["source"] == "stop_reply"

    # WHEN the person later writes ALTA
    response = world.webhooks.meta(meta_text("ALTA", "wamid.2", 1764406960), SECRET)

    # THEN the opt-out is gone, and the listing shows both messages newest first with what each did
    assert response.status == 200, response.body
    assert SENDER not in opt_outs(world)
    listed = world.business.get(f"/api/whatsapp/accounts/{account['id']}/inbound")
    assert listed.status == 200, listed.body
    assert [(item["text"], item["action"]) for item in listed.body["items"]] == [
        ("ALTA", "optedIn"),
        (" bája ", "optedOut"),
    ]
    assert listed.body["items"][0]["from"] == SENDER
    assert listed.body["items"][0]["type"] == "text"


def test_a_forged_stop_opts_nobody_out(world: WebhookWorld) -> None:
    # GIVEN a Meta account
    meta_account(world, 1, NUMBER_ID, SECRET)
    # WHEN a STOP arrives signed with another secret
    response = world.webhooks.meta(meta_text("STOP", "wamid.1"), "f" * 32)
    # THEN it is refused and nobody is opted out
    assert response.status == 403
    assert opt_outs(world) == {}


def test_a_sentence_with_a_keyword_in_it_is_kept_but_opts_nobody_out(world: WebhookWorld) -> None:
    account = meta_account(world, 1, NUMBER_ID, SECRET)
    response = world.webhooks.meta(meta_text("stop please", "wamid.1"), SECRET)
    assert response.status == 200, response.body
    assert opt_outs(world) == {}
    listed = world.business.get(f"/api/whatsapp/accounts/{account['id']}/inbound")
    assert [(item["text"], item["action"]) for item in listed.body["items"]] == [("stop please", None)]


def test_a_signed_twilio_stop_opts_the_sender_out(world: WebhookWorld) -> None:
    # GIVEN a Twilio account
    account = twilio_account(world, 1, TOKEN)
    # WHEN the person writes STOP (signed with the account's auth token)
    response = world.webhooks.twilio(account["id"], twilio_text("Stop", "SM" + "1" * 32), TOKEN, None)
    # THEN the number is opted out
    assert response.status == 200, response.body
    assert opt_outs(world)[SENDER]["source"] == "stop_reply"


def test_a_business_with_its_own_keywords_uses_them(world: WebhookWorld) -> None:
    # GIVEN a business whose stop keyword is "no más" only
    admin = new_api_client(issue_admin_key(world.settings, "keywords"))
    response = admin.put(f"/api/admin/businesses/{world.business_id}/keywords", {"stopKeywords": ["No más"]})
    assert response.status == 200, response.body
    assert response.body["stopKeywords"] == ["No más"]
    assert "ALTA" in response.body["startKeywords"]  # the defaults still apply to the other list
    account = twilio_account(world, 1, TOKEN)

    # WHEN the person writes STOP, then "NO MAS"
    world.webhooks.twilio(account["id"], twilio_text("STOP", "SM" + "1" * 32), TOKEN, None)
    assert opt_outs(world) == {}
    world.webhooks.twilio(account["id"], twilio_text("NO MAS", "SM" + "2" * 32), TOKEN, None)

    # THEN only the business's own word opted the number out
    assert SENDER in opt_outs(world)


def test_keyword_lists_are_validated_by_the_admin_route(world: WebhookWorld) -> None:
    admin = new_api_client(issue_admin_key(world.settings, "keywords"))
    for body in ({"stopKeywords": []}, {"stopKeywords": ["x" * 31]}, {"startKeywords": ["a\u0000"]}):
        response = admin.put(f"/api/admin/businesses/{world.business_id}/keywords", body)
        assert response.status in (400, 422), response.body
        assert "Keywords" in (response.body["error"].get("field") or ""), response.body
    missing = admin.put("/api/admin/businesses/biz_missing/keywords", {"stopKeywords": ["BAJA"]})
    assert missing.status == 404


def test_the_inbound_listing_pages_and_is_only_for_the_accounts_business(world: WebhookWorld) -> None:
    # GIVEN three messages to a Twilio account
    account = twilio_account(world, 1, TOKEN)
    for n in range(3):
        world.webhooks.twilio(account["id"], twilio_text(f"hola {n}", f"SM{n:032d}"), TOKEN, None)

    # WHEN its business lists them two at a time
    path = f"/api/whatsapp/accounts/{account['id']}/inbound"
    first = world.business.get(path, limit=2)
    assert first.status == 200, first.body
    assert first.body["nextToken"]
    second = world.business.get(path, limit=2, nextToken=first.body["nextToken"])

    # THEN every message comes once
    texts = [item["text"] for item in first.body["items"] + second.body["items"]]
    assert sorted(texts) == ["hola 0", "hola 1", "hola 2"]

    # AND another business gets the same 404 as for a missing account
    other = new_business(new_api_client(issue_admin_key(world.settings, "other")), "Other")
    assert other.get(f"/api/whatsapp/accounts/{account['id']}/inbound").status == 404
    assert other.get("/api/whatsapp/accounts/acc_missing/inbound").status == 404


WRITES = {"PutItem", "DeleteItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems"}


def test_an_inbound_message_costs_its_own_item_one_opt_out_write_and_a_start_its_time(
    world: WebhookWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a Twilio account, and every DynamoDB call recorded
    account = twilio_account(world, 1, TOKEN)
    calls: list[str] = []
    make_api_call = BaseClient._make_api_call

    def recording(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            calls.append(operation)
        return make_api_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)

    # WHEN a plain reply, a STOP, the same STOP again and an ALTA arrive
    writes = []
    for text, sid in (("hola", "1"), ("STOP", "2"), ("STOP", "2"), ("ALTA", "3")):
        calls.clear()
        response = world.webhooks.twilio(account["id"], twilio_text(text, "SM" + sid * 32), TOKEN, None)
        assert response.status == 200, response.body
        writes.append([call for call in calls if call in WRITES])

    # THEN each writes its own item, and a keyword one opt-out item (a repeat fails its condition, no second record);
    # a start also records when it was written (a small item of its own, so a late STOP written before it is told)
    assert writes == [
        ["BatchWriteItem"],
        ["PutItem", "BatchWriteItem"],
        ["PutItem", "BatchWriteItem"],
        ["PutItem", "DeleteItem", "BatchWriteItem"],
    ]


def test_a_meta_stop_retried_after_a_later_alta_opts_nobody_out(world: WebhookWorld) -> None:
    # GIVEN a person who wrote STOP, then ALTA a minute later; Meta delivered the ALTA first (the STOP's webhook
    # failed and was retried)
    meta_account(world, 1, NUMBER_ID, SECRET)
    assert world.webhooks.meta(meta_text("ALTA", "wamid.alta", 1764406960), SECRET).status == 200

    # WHEN the STOP arrives, twice
    first = world.webhooks.meta(meta_text("STOP", "wamid.stop", 1764406900), SECRET)
    second = world.webhooks.meta(meta_text("STOP", "wamid.stop", 1764406900), SECRET)

    # THEN the person is not opted out: what they wrote last stands
    assert (first.status, second.status) == (200, 200)
    assert SENDER not in opt_outs(world)

    # WHEN they write STOP again, after the ALTA
    world.webhooks.meta(meta_text("STOP", "wamid.stop2", 1764407020), SECRET)

    # THEN that one opts them out
    assert opt_outs(world)[SENDER]["source"] == "stop_reply"
