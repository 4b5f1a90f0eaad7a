"""Accounts: what is stored and answered on create, read, partial update and delete."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.integration.conftest import ApiClient, assert_error, create_account, phone

ACCOUNTS = "/api/whatsapp/accounts"


def test_created_account_answers_every_field_with_defaults(business: ApiClient) -> None:
    # GIVEN / WHEN a minimal sandbox account is created
    response = business.post(ACCOUNTS, {"displayName": "Support", "phoneNumber": phone(1), "provider": "sandbox"})

    # THEN 201 with the documented defaults, an id, timestamps, and nothing internal
    assert response.status == 201, response.body
    account = response.body
    assert account["id"].startswith("acc_")
    expected = {
        "displayName": "Support",
        "phoneNumber": phone(1),
        "provider": "sandbox",
        "status": "ACTIVE",
        "isPrimary": True,
        "isDefault": False,
        "limits": {"messagesPerSecond": 80, "dailyRecipientLimit": 1000},
        "verificationStatus": "UNKNOWN",
        "qualityRating": "UNKNOWN",
        "messagingTier": "TIER_1K",
    }
    assert {key: account[key] for key in expected} == expected
    assert account["createdAt"] == account["updatedAt"]
    assert "businessId" not in account
    assert account["cost"] == {"currency": "USD", "total": "0.000000", "perRun": None}
    assert business.get(f"{ACCOUNTS}/{account['id']}").body == account


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("+1 (415) 555-2671", "+14155552671"),
        ("0034612345678", "+34612345678"),
        ("+34 612-34-56-78", "+34612345678"),
        ("  +44 20 7946 0958 ", "+442079460958"),
    ],
)
def test_account_phone_number_is_stored_in_e164(business: ApiClient, written: str, stored: str) -> None:
    # GIVEN / WHEN an account is created with a number written for humans
    account = create_account(business, written)

    # THEN it is stored and answered in E.164
    assert account["phoneNumber"] == stored
    assert business.get(f"{ACCOUNTS}/{account['id']}").body["phoneNumber"] == stored


def test_all_optional_fields_are_stored_as_sent(business: ApiClient) -> None:
    # GIVEN / WHEN an account is created setting every optional field
    account = create_account(
        business,
        phone(2),
        status="PENDING",
        limits={"messagesPerSecond": 1000, "dailyRecipientLimit": 10_000_000},
        verificationStatus="VERIFIED",
        qualityRating="GREEN",
        messagingTier="TIER_UNLIMITED",
    )

    # THEN each comes back as sent
    assert account["status"] == "PENDING"
    assert account["limits"] == {"messagesPerSecond": 1000, "dailyRecipientLimit": 10_000_000}
    assert (account["verificationStatus"], account["qualityRating"], account["messagingTier"]) == (
        "VERIFIED",
        "GREEN",
        "TIER_UNLIMITED",
    )


def test_partial_update_changes_only_the_fields_sent(business: ApiClient) -> None:
    # GIVEN an account
    account = create_account(business, phone(3), "twilio", qualityRating="GREEN")
    path = f"{ACCOUNTS}/{account['id']}"

    # WHEN its status and limits are updated
    response = business.put(path, {"status": "SUSPENDED", "limits": {"messagesPerSecond": 10}})

    # THEN those change (limits as a whole, with defaults for the unsent limit), the rest is kept
    assert response.status == 200, response.body
    updated = response.body
    assert updated["status"] == "SUSPENDED"
    assert updated["limits"] == {"messagesPerSecond": 10, "dailyRecipientLimit": 1000}
    for kept in ("displayName", "phoneNumber", "provider", "credentials", "qualityRating", "isPrimary", "createdAt"):
        assert updated[kept] == account[kept], kept
    assert datetime.fromisoformat(updated["updatedAt"]) > datetime.fromisoformat(account["updatedAt"])
    assert business.get(path).body == updated


def test_consecutive_updates_all_apply(business: ApiClient) -> None:
    # GIVEN an account
    account = create_account(business, phone(4))
    path = f"{ACCOUNTS}/{account['id']}"

    # WHEN it is updated three times in a row
    answers = [business.put(path, {"displayName": f"Name {index}"}) for index in range(3)]

    # THEN every update succeeds (the optimistic lock follows the stored version) and the last one wins
    assert [answer.status for answer in answers] == [200, 200, 200]
    assert business.get(path).body["displayName"] == "Name 2"


def test_empty_update_is_accepted_and_changes_nothing_visible(business: ApiClient) -> None:
    # GIVEN an account
    account = create_account(business, phone(5))

    # WHEN an empty PUT is sent
    response = business.put(f"{ACCOUNTS}/{account['id']}", {})

    # THEN it succeeds and every field but updatedAt is unchanged
    assert response.status == 200, response.body
    assert {k: v for k, v in response.body.items() if k != "updatedAt"} == {
        k: v for k, v in account.items() if k != "updatedAt"
    }


def test_unknown_account_is_404_for_read_and_delete(business: ApiClient) -> None:
    # GIVEN no such account
    # WHEN it is read and deleted
    read = business.get(f"{ACCOUNTS}/acc_missing")
    deleted = business.delete(f"{ACCOUNTS}/acc_missing")

    # THEN both are 404 NOT_FOUND
    assert_error(read, 404, "NOT_FOUND")
    assert_error(deleted, 404, "NOT_FOUND")


def test_unknown_route_is_404_json(business: ApiClient) -> None:
    # GIVEN / WHEN a route that does not exist is called
    response = business.get("/api/whatsapp/templates")

    # THEN 404 in the API's error format
    assert_error(response, 404, "NOT_FOUND")
