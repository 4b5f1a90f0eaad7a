"""Meta's account webhooks act on account health: quality (FLAGGED, tier), template status, account bans. Signed as
Meta signs (HMAC-SHA256 of the raw body with the app secret of an account of the WABA the entry names)."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import META_CREDENTIALS, create_account, create_queue, set_queue_status
from tests.integration.webhooks.conftest import WebhookWorld, fixture
from wabacast.domain.models import QueueStatus

SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
OTHER_SECRET = "0f0e0d0c0b0a09080706050403020100"
WABA = META_CREDENTIALS["wabaId"]
NUMBER = "+14155550123"


def verified_meta_account(world: WebhookWorld, **credentials: str) -> dict[str, Any]:
    return create_account(
        world.business, NUMBER, "meta", credentials={**META_CREDENTIALS, "appSecret": SECRET, **credentials}
    )


def processing_queue(world: WebhookWorld, account_id: str, template: str = "spring_sale") -> str:
    queue = create_queue(world.business, accountId=account_id, template={"name": template, "language": "en_US"})
    set_queue_status(world.settings, world.business_id, queue["id"], QueueStatus.PROCESSING)
    return str(queue["id"])


def quality_update(event: str, limit: str = "TIER_250") -> dict[str, Any]:
    payload = fixture("meta/phone_number_quality_update.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value.update(display_phone_number=NUMBER.removeprefix("+"), event=event, current_limit=limit)
    return payload  # type: ignore[no-any-return]


def queue_of(world: WebhookWorld, queue_id: str) -> dict[str, Any]:
    return world.business.get(f"/api/whatsapp/queue/{queue_id}").body  # type: ignore[no-any-return]


def account_of(world: WebhookWorld, account_id: str) -> dict[str, Any]:
    return world.business.get(f"/api/whatsapp/accounts/{account_id}").body  # type: ignore[no-any-return]


def test_a_flagged_number_stops_sending_and_its_processing_queue_is_paused(world: WebhookWorld) -> None:
    # GIVEN a verified Meta account with a PROCESSING queue (and no default account to fall back to)
    account = verified_meta_account(world)
    queue_id = processing_queue(world, account["id"])

    # WHEN Meta reports the number FLAGGED, with a lower limit, signed with the account's app secret
    response = world.webhooks.meta(quality_update("FLAGGED"), SECRET)

    # THEN the account is flagged, on the new tier, and the queue is PAUSED with the reason
    assert response.status == 200, response.body
    assert response.body["healthChanges"] == 1
    after = account_of(world, account["id"])
    assert after["flagged"] is True
    assert after["messagingTier"] == "TIER_250"
    queue = queue_of(world, queue_id)
    assert queue["status"] == "PAUSED"
    assert "FLAGGED" in queue["statusReason"]


def test_unflagged_lets_the_number_send_again(world: WebhookWorld) -> None:
    # GIVEN a flagged account
    account = verified_meta_account(world)
    assert world.webhooks.meta(quality_update("FLAGGED"), SECRET).status == 200

    # WHEN Meta reports it UNFLAGGED
    response = world.webhooks.meta(quality_update("UNFLAGGED", "TIER_1K"), SECRET)

    # THEN it is no longer flagged
    assert response.status == 200
    after = account_of(world, account["id"])
    assert after["flagged"] is False
    assert after["messagingTier"] == "TIER_1K"


def test_a_forged_quality_update_changes_nothing(world: WebhookWorld) -> None:
    # GIVEN a verified Meta account with a PROCESSING queue
    account = verified_meta_account(world)
    queue_id = processing_queue(world, account["id"])

    # WHEN a FLAGGED update arrives signed with another secret, and one whose body was altered after signing
    forged = world.webhooks.meta(quality_update("FLAGGED"), OTHER_SECRET)
    tampered = world.webhooks.meta(quality_update("FLAGGED"), SECRET, tamper=True)

    # THEN both are refused and nothing changed
    assert forged.status == 403
    assert tampered.status == 403
    after = account_of(world, account["id"])
    assert after["flagged"] is False
    assert after["messagingTier"] == account["messagingTier"]
    assert queue_of(world, queue_id)["status"] == "PROCESSING"


def test_a_paused_template_pauses_only_the_queues_sending_it(world: WebhookWorld) -> None:
    # GIVEN a verified Meta account with a queue sending spring_sale and one sending another template
    account = verified_meta_account(world)
    sending_it = processing_queue(world, account["id"], "spring_sale")
    other = processing_queue(world, account["id"], "order_update")

    # WHEN Meta reports spring_sale (en_US) PAUSED
    response = world.webhooks.meta(fixture("meta/message_template_status_update.json"), SECRET)

    # THEN the template is listed PAUSED for the account, only its queue is paused
    assert response.status == 200, response.body
    templates = world.business.get(f"/api/whatsapp/accounts/{account['id']}/templates").body["items"]
    assert [(t["name"], t["language"], t["status"]) for t in templates] == [("spring_sale", "en_US", "PAUSED")]
    assert queue_of(world, sending_it)["status"] == "PAUSED"
    assert "spring_sale (en_US) is PAUSED" in queue_of(world, sending_it)["statusReason"]
    assert queue_of(world, other)["status"] == "PROCESSING"


def test_a_paused_template_answers_409_when_its_queue_is_processed(world: WebhookWorld) -> None:
    # GIVEN a template Meta paused, and a draft queue sending it
    account = verified_meta_account(world)
    assert world.webhooks.meta(fixture("meta/message_template_status_update.json"), SECRET).status == 200
    queue = create_queue(world.business, accountId=account["id"], template={"name": "spring_sale", "language": "en_US"})

    # WHEN the queue is processed
    response = world.business.post(f"/api/whatsapp/queue/{queue['id']}/process")

    # THEN 409 names the template's status, and the queue did not start
    assert response.status == 409
    assert response.body["error"]["code"] == "TEMPLATE_NOT_APPROVED"
    assert "PAUSED" in response.body["error"]["message"]
    assert queue_of(world, queue["id"])["status"] == "DRAFT"


def test_a_disabled_waba_suspends_its_numbers(world: WebhookWorld) -> None:
    # GIVEN a verified Meta account
    account = verified_meta_account(world)
    payload = fixture("meta/account_update.json")
    payload["entry"][0]["changes"][0]["value"] = {
        "event": "DISABLED_UPDATE",
        "ban_info": {"waba_ban_state": ["DISABLE"], "waba_ban_date": "2026-11-29"},
    }

    # WHEN Meta reports the WABA disabled
    response = world.webhooks.meta(payload, SECRET)

    # THEN the account is SUSPENDED by the provider, with the reason
    assert response.status == 200, response.body
    after = account_of(world, account["id"])
    assert after["status"] == "SUSPENDED"
    assert after["suspendedByProvider"] is True
    assert "DISABLED_UPDATE" in after["statusReason"]


def test_events_for_an_unverified_account_change_nothing(world: WebhookWorld) -> None:
    # GIVEN a Meta account whose ownership no sync has confirmed (anyone may type a WABA id)
    response = world.business.post(
        "/api/whatsapp/accounts",
        {
            "displayName": "Claimed",
            "phoneNumber": NUMBER,
            "provider": "meta",
            "credentials": {**META_CREDENTIALS, "appSecret": SECRET},
        },
    )
    assert response.status == 201, response.body
    assert response.body["status"] == "PENDING"

    # WHEN a FLAGGED update for that WABA and number arrives, signed with its secret
    acknowledged = world.webhooks.meta(quality_update("FLAGGED"), SECRET)

    # THEN it is acknowledged but changes nothing
    assert acknowledged.status == 200
    assert acknowledged.body["healthChanges"] == 0
    assert account_of(world, response.body["id"])["flagged"] is False
