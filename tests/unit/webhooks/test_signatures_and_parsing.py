"""Signatures with the providers' algorithms, and the documented payloads parsed into receipts."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twilio.request_validator import RequestValidator

from wabacast.domain.jobs import ErrorClass
from wabacast.domain.receipts import ReceiptStatus, parse_job_reference
from wabacast.providers.webhooks import (
    MetaNotification,
    TwilioCallback,
    meta_receipt,
    meta_signature_valid,
    twilio_receipt,
    twilio_signature_valid,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_meta_signature_is_hmac_sha256_of_the_raw_body() -> None:
    # GIVEN a body signed as Meta signs it
    body = (FIXTURES / "meta/status_delivered.json").read_bytes()
    header = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    # THEN it verifies, and any change to the body, the secret or the header does not
    assert meta_signature_valid(body, header, SECRET)
    assert meta_signature_valid(body, header.upper().replace("SHA256=", "sha256="), SECRET)
    assert not meta_signature_valid(body[:-2] + b" }", header, SECRET)
    assert not meta_signature_valid(json.dumps(json.loads(body)).encode(), header, SECRET)  # re-serialized
    assert not meta_signature_valid(body, header, "0" * 32)
    assert not meta_signature_valid(body, None, SECRET)
    assert not meta_signature_valid(body, header.removeprefix("sha256="), SECRET)


def test_twilio_signature_uses_the_url_and_the_parameters() -> None:
    params = load("twilio/status_delivered.json")
    url = "https://abc.execute-api.us-east-1.amazonaws.com/api/webhooks/twilio/acc_1?ref=q_1%2Fjob_1"
    signature = RequestValidator(SECRET).compute_signature(url, params)
    assert twilio_signature_valid(url, params, signature, SECRET)
    assert not twilio_signature_valid(url.replace("job_1", "job_2"), params, signature, SECRET)
    assert not twilio_signature_valid(url, {**params, "MessageStatus": "read"}, signature, SECRET)
    assert not twilio_signature_valid(url, params, None, SECRET)


def test_meta_status_fixtures_parse_into_receipts() -> None:
    expected = {
        "meta/status_sent.json": ReceiptStatus.SENT,
        "meta/status_delivered.json": ReceiptStatus.DELIVERED,
        "meta/status_read.json": ReceiptStatus.READ,
        "meta/status_failed.json": ReceiptStatus.FAILED,
    }
    for name, status in expected.items():
        notification = MetaNotification.model_validate(load(name))
        (meta_status,) = notification.entry[0].changes[0].value.statuses
        receipt = meta_receipt(meta_status, NOW)
        assert receipt is not None
        assert receipt.status == status
        assert receipt.at == datetime.fromtimestamp(1764406800, UTC)
        assert notification.phone_number_ids() == {"109876543210987"}


def test_a_failed_meta_status_carries_its_classified_error() -> None:
    notification = MetaNotification.model_validate(load("meta/status_failed.json"))
    receipt = meta_receipt(notification.entry[0].changes[0].value.statuses[0], NOW)
    assert receipt is not None
    assert receipt.error is not None
    assert receipt.error.code == "131026"
    assert receipt.error.error_class == ErrorClass.PERMANENT
    assert "Message Undeliverable." in receipt.error.message


def test_sent_and_delivered_carry_pricing_and_conversation() -> None:
    value = MetaNotification.model_validate(load("meta/status_sent.json")).entry[0].changes[0].value
    assert value.statuses[0].pricing is not None
    assert value.statuses[0].pricing.category == "marketing"
    assert value.statuses[0].conversation is not None


def test_inbound_and_account_fields_parse() -> None:
    text = MetaNotification.model_validate(load("meta/message_text.json")).entry[0].changes[0].value
    button = MetaNotification.model_validate(load("meta/message_button.json")).entry[0].changes[0].value
    quality = MetaNotification.model_validate(load("meta/phone_number_quality_update.json")).entry[0].changes[0]
    template = MetaNotification.model_validate(load("meta/message_template_status_update.json")).entry[0].changes[0]
    assert text.messages[0].text is not None
    assert text.messages[0].text.body == "BAJA"
    assert button.messages[0].button is not None
    assert button.messages[0].button.payload == "STOP_PROMOTIONS"
    assert (quality.field, quality.value.event, quality.value.current_limit) == (
        "phone_number_quality_update",
        "DOWNGRADE",
        "TIER_1K",
    )
    assert (template.value.event, template.value.message_template_name) == ("PAUSED", "spring_sale")


def test_twilio_callbacks_map_their_status() -> None:
    mapping = {
        "twilio/status_sent.json": ReceiptStatus.SENT,
        "twilio/status_delivered.json": ReceiptStatus.DELIVERED,
        "twilio/status_read.json": ReceiptStatus.READ,
        "twilio/status_undelivered.json": ReceiptStatus.FAILED,
    }
    for name, status in mapping.items():
        receipt = twilio_receipt(TwilioCallback.model_validate(load(name)), NOW)
        assert receipt is not None
        assert receipt.status == status
    failed = twilio_receipt(TwilioCallback.model_validate(load("twilio/status_undelivered.json")), NOW)
    assert failed is not None
    assert failed.error is not None
    assert failed.error.code == "63016"
    queued = TwilioCallback.model_validate({**load("twilio/status_sent.json"), "MessageStatus": "queued"})
    assert twilio_receipt(queued, NOW) is None


def test_job_references_round_trip_and_refuse_anything_else() -> None:
    assert parse_job_reference("q_1/job_abc") == ("q_1", "job_abc")
    for bad in (None, "", "q_1", "q_1/", "/job", "q 1/job", "q/j/extra", "x" * 65 + "/job"):
        assert parse_job_reference(bad) is None, bad
