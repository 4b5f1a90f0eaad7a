"""Meta's account fields parsed into account-health updates (wabacast.providers.webhooks.meta_account_event)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wabacast.domain.health import AccountUpdate, QualityUpdate, TemplateStatus, TemplateStatusUpdate
from wabacast.domain.models import MessagingTier
from wabacast.providers.webhooks import MetaNotification, meta_account_event

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "meta"


def parsed(payload: dict[str, Any]) -> object:
    notification = MetaNotification.model_validate(payload)
    entry = notification.entry[0]
    return meta_account_event(entry, entry.changes[0])


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())  # type: ignore[no-any-return]


def test_a_quality_update_names_the_waba_the_number_the_event_and_the_tier() -> None:
    # WHEN Meta's documented quality update is parsed
    event = parsed(fixture("phone_number_quality_update.json"))

    # THEN it is a QualityUpdate of the WABA in entry.id, at the entry's time
    assert event == QualityUpdate(
        waba_id="209876543210",
        display_phone_number="15550783881",
        event="DOWNGRADE",
        messaging_tier=MessagingTier.TIER_1K,
        occurred_at=datetime.fromtimestamp(1764407000, UTC),
    )


def test_an_unknown_limit_leaves_the_tier_unsaid() -> None:
    # GIVEN a limit wabacast has no tier for
    payload = fixture("phone_number_quality_update.json")
    payload["entry"][0]["changes"][0]["value"]["current_limit"] = "TIER_3K"

    # WHEN it is parsed
    event = parsed(payload)

    # THEN no tier is set from it
    assert isinstance(event, QualityUpdate)
    assert event.messaging_tier is None


def test_the_2k_tier_meta_added_is_read_as_such() -> None:
    # GIVEN a quality update naming Meta's 2,000-recipient tier
    payload = fixture("phone_number_quality_update.json")
    payload["entry"][0]["changes"][0]["value"]["current_limit"] = "TIER_2K"
    # WHEN it is parsed  THEN the tier is TIER_2K
    event = parsed(payload)
    assert isinstance(event, QualityUpdate)
    assert event.messaging_tier is MessagingTier.TIER_2K


def test_a_template_status_update_carries_name_language_status_and_id() -> None:
    # WHEN Meta's documented template status update is parsed
    event = parsed(fixture("message_template_status_update.json"))

    # THEN its reason "NONE" is no reason
    assert event == TemplateStatusUpdate(
        waba_id="209876543210",
        name="spring_sale",
        language="en_US",
        status=TemplateStatus.PAUSED,
        provider_template_id="1689556908129832",
        reason=None,
        occurred_at=datetime.fromtimestamp(1764407000, UTC),
    )


def test_an_account_update_carries_its_event_number_and_ban_state() -> None:
    # GIVEN a WABA disable notice and the documented violation notice
    disabled = fixture("account_update.json")
    disabled["entry"][0]["changes"][0]["value"] = {
        "event": "DISABLED_UPDATE",
        "ban_info": {"waba_ban_state": ["DISABLE"]},
    }

    # WHEN both are parsed
    violation = parsed(fixture("account_update.json"))
    ban = parsed(disabled)

    # THEN each says what Meta said
    assert isinstance(violation, AccountUpdate)
    assert (violation.event, violation.phone_number, violation.ban_state) == ("ACCOUNT_VIOLATION", "15550783881", None)
    assert isinstance(ban, AccountUpdate)
    assert (ban.event, ban.phone_number, ban.ban_state) == ("DISABLED_UPDATE", None, "DISABLE")


def test_a_message_change_is_no_account_event() -> None:
    # WHEN a status notification is parsed as an account field
    event = parsed(fixture("status_sent.json"))

    # THEN it is none
    assert event is None
