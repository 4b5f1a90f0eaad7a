"""Contacts (bulk upsert with per-row rejections, tags) and opt-outs, through the HTTP API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import ApiClient, assert_error, phone

CONTACTS = "/api/whatsapp/contacts"
OPT_OUTS = "/api/whatsapp/opt-outs"


def _upsert(client: ApiClient, *rows: dict[str, Any]) -> dict[str, Any]:
    response = client.post(CONTACTS, {"contacts": list(rows)})
    assert response.status == 200, response.body
    return response.body  # type: ignore[no-any-return]


def _contacts(client: ApiClient, **query: Any) -> dict[str, dict[str, Any]]:
    response = client.get(CONTACTS, limit=100, **query)
    assert response.status == 200, response.body
    return {item["phoneNumber"]: item for item in response.body["items"]}


# Upsert --------------------------------------------------------------------------------------------------------
def test_upsert_creates_then_updates_and_counts_each(business: ApiClient) -> None:
    # GIVEN two new contacts
    first = _upsert(business, {"phoneNumber": phone(1), "name": "Ana"}, {"phoneNumber": phone(2), "name": "Luis"})

    # WHEN one of them and a third are upserted
    second = _upsert(business, {"phoneNumber": phone(2), "name": "Luis M."}, {"phoneNumber": phone(3)})

    # THEN the counts say so and the stored names follow
    assert first == {"created": 2, "updated": 0, "rejected": []}
    assert second == {"created": 1, "updated": 1, "rejected": []}
    names = {number: contact["name"] for number, contact in _contacts(business).items()}
    assert names == {phone(1): "Ana", phone(2): "Luis M.", phone(3): None}


def test_upsert_changes_only_the_fields_sent(business: ApiClient) -> None:
    # GIVEN a contact with every field set
    _upsert(
        business,
        {
            "phoneNumber": phone(1),
            "name": "Ana",
            "tags": ["vip"],
            "attributes": {"city": "Madrid", "orders": 3, "score": 4.5, "newsletter": True},
            "timezone": "Europe/Madrid",
        },
    )
    created = _contacts(business)[phone(1)]

    # WHEN only its attributes are sent
    _upsert(business, {"phoneNumber": phone(1), "attributes": {"city": "Sevilla"}})

    # THEN attributes are replaced whole, the rest is kept, updatedAt moves and createdAt does not
    contact = _contacts(business)[phone(1)]
    assert contact["attributes"] == {"city": "Sevilla"}
    assert (contact["name"], contact["tags"], contact["timezone"]) == ("Ana", ["vip"], "Europe/Madrid")
    assert contact["createdAt"] == created["createdAt"]
    assert contact["updatedAt"] != created["updatedAt"]


def test_upsert_keeps_attribute_value_types(business: ApiClient) -> None:
    # GIVEN / WHEN a contact with string, integer, float and boolean attributes is stored
    attributes = {"city": "Madrid", "orders": 3, "score": 4.5, "newsletter": True}
    _upsert(business, {"phoneNumber": phone(1), "attributes": attributes})

    # THEN they come back with the same JSON types
    assert _contacts(business)[phone(1)]["attributes"] == attributes


def test_upsert_reports_each_rejected_row_and_stores_the_others(business: ApiClient) -> None:
    # GIVEN a batch mixing valid rows and rows breaking one rule each
    rows = [
        {"phoneNumber": "+1 (415) 555-2671", "name": "Valid US"},
        {"phoneNumber": "612345678"},
        {"phoneNumber": phone(2), "tags": ["ok", "not ok"]},
        {"name": "No number"},
        {"phoneNumber": phone(3), "attributes": {"1st": "bad name"}},
        {"phoneNumber": phone(4), "timezone": "Atlantis/Capital"},
        {"phoneNumber": phone(5), "nickname": "unknown field"},
        {"phoneNumber": "0034612300006", "name": "Valid ES"},
        {"phoneNumber": phone(7), "name": "x" * 201},
    ]

    # WHEN it is upserted
    result = _upsert(business, *rows)

    # THEN the valid rows are created and every other row is reported by index, number and field
    assert (result["created"], result["updated"]) == (2, 0)
    rejected = {item["index"]: item for item in result["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4, 5, 6, 8]
    expected_fields = {
        1: "phoneNumber",
        2: "tags[1]",
        3: "phoneNumber",
        4: "attributes",
        5: "timezone",
        6: "nickname",
        8: "name",
    }
    for index, field in expected_fields.items():
        assert rejected[index]["field"] == field, rejected[index]
        assert rejected[index]["message"].startswith(f"{field}: "), rejected[index]
    assert rejected[1]["phoneNumber"] == "612345678"
    assert rejected[3]["phoneNumber"] is None
    assert rejected[3]["message"] == "phoneNumber: is required"
    assert rejected[6]["message"] == "nickname: is not a known field"
    assert sorted(_contacts(business)) == ["+14155552671", "+34612300006"]


def test_duplicate_numbers_in_one_request_keep_the_first_row(business: ApiClient) -> None:
    # GIVEN a batch where one number appears three times, written differently
    rows = [
        {"phoneNumber": "+34 612 300 001", "name": "First"},
        {"phoneNumber": phone(2), "name": "Other"},
        {"phoneNumber": "0034612300001", "name": "Second"},
        {"phoneNumber": phone(1), "name": "Third"},
    ]

    # WHEN it is upserted
    result = _upsert(business, *rows)

    # THEN the first row wins and the later ones are rejected as duplicates of row 0
    assert (result["created"], result["updated"]) == (2, 0)
    assert [(item["index"], item["field"]) for item in result["rejected"]] == [(2, "phoneNumber"), (3, "phoneNumber")]
    assert all("duplicate of row 0" in item["message"] for item in result["rejected"])
    assert _contacts(business)[phone(1)]["name"] == "First"


def test_more_than_1000_rows_is_refused_whole(business: ApiClient) -> None:
    # GIVEN 1001 valid rows
    rows = [{"phoneNumber": phone(index)} for index in range(1001)]

    # WHEN they are upserted
    response = business.post(CONTACTS, {"contacts": rows})

    # THEN 422 naming contacts, and nothing was stored
    assert_error(response, 422, "VALIDATION_ERROR", "contacts")
    assert _contacts(business) == {}


def test_1000_rows_are_accepted(business: ApiClient) -> None:
    # GIVEN exactly 1000 valid rows
    rows = [{"phoneNumber": phone(index), "tags": ["bulk"]} for index in range(1000)]

    # WHEN they are upserted
    result = _upsert(business, *rows)

    # THEN all are created, and the tag lists them (first page of 100 full)
    assert result == {"created": 1000, "updated": 0, "rejected": []}
    page = business.get(CONTACTS, tag="bulk", limit=100).body
    assert len(page["items"]) == 100
    assert page["nextToken"] is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [({"contacts": []}, "contacts"), ({}, "contacts"), ({"contacts": [5]}, "contacts[0]"), ({"rows": []}, "contacts")],
)
def test_malformed_upsert_body_is_refused(business: ApiClient, body: dict[str, Any], field: str) -> None:
    # GIVEN / WHEN a body that is not a list of row objects is posted
    response = business.post(CONTACTS, body)

    # THEN 422 naming the field
    assert_error(response, 422, "VALIDATION_ERROR", field)


# Tags ----------------------------------------------------------------------------------------------------------
def test_listing_by_tag_returns_only_tagged_contacts(business: ApiClient) -> None:
    # GIVEN contacts with and without the vip tag
    _upsert(
        business,
        {"phoneNumber": phone(1), "tags": ["vip", "madrid"]},
        {"phoneNumber": phone(2), "tags": ["madrid"]},
        {"phoneNumber": phone(3), "tags": ["vip"]},
        {"phoneNumber": phone(4)},
    )

    # WHEN listed by tag
    vip = _contacts(business, tag="vip")
    madrid = _contacts(business, tag="madrid")
    nobody = _contacts(business, tag="unused")

    # THEN each listing holds exactly the tagged contacts
    assert sorted(vip) == [phone(1), phone(3)]
    assert sorted(madrid) == [phone(1), phone(2)]
    assert nobody == {}


def test_retagging_moves_a_contact_between_tag_listings(business: ApiClient) -> None:
    # GIVEN a vip contact
    _upsert(business, {"phoneNumber": phone(1), "tags": ["vip"]}, {"phoneNumber": phone(2), "tags": ["vip"]})

    # WHEN its tags are replaced by "lapsed", and the other contact's tags are emptied
    result = _upsert(business, {"phoneNumber": phone(1), "tags": ["lapsed"]}, {"phoneNumber": phone(2), "tags": []})

    # THEN it is listed under the new tag only, and the other under none
    assert result["updated"] == 2
    assert _contacts(business, tag="vip") == {}
    assert sorted(_contacts(business, tag="lapsed")) == [phone(1)]
    assert _contacts(business)[phone(2)]["tags"] == []


def test_listing_by_malformed_tag_is_refused(business: ApiClient) -> None:
    # GIVEN / WHEN listed by a tag with a space
    response = business.get(CONTACTS, tag="big spender")

    # THEN 422 naming tag
    assert_error(response, 422, "VALIDATION_ERROR", "tag")


# Delete --------------------------------------------------------------------------------------------------------
def test_deleted_contact_disappears_from_every_listing_and_a_second_delete_is_404(business: ApiClient) -> None:
    # GIVEN a tagged contact and another one
    _upsert(business, {"phoneNumber": phone(1), "tags": ["vip"]}, {"phoneNumber": phone(2), "tags": ["vip"]})

    # WHEN it is deleted, and deleted again
    first = business.delete(f"{CONTACTS}/{phone(1)}")
    second = business.delete(f"{CONTACTS}/{phone(1)}")

    # THEN 204 then 404 naming phoneNumber; it is gone from the listing and the tag listing
    assert first.status == 204
    assert_error(second, 404, "NOT_FOUND", "phoneNumber")
    assert sorted(_contacts(business)) == [phone(2)]
    assert sorted(_contacts(business, tag="vip")) == [phone(2)]


@pytest.mark.parametrize("written", ["%2B34612300001", "0034612300001", "+34612300001"])
def test_delete_contact_accepts_the_number_url_encoded_or_in_00_form(business: ApiClient, written: str) -> None:
    # GIVEN a contact
    _upsert(business, {"phoneNumber": phone(1)})

    # WHEN it is deleted with the number written another way in the path
    response = business.delete(f"{CONTACTS}/{written}")

    # THEN it is found and deleted
    assert response.status == 204, response.body
    assert _contacts(business) == {}


def test_delete_contact_with_invalid_number_is_422(business: ApiClient) -> None:
    # GIVEN / WHEN a contact is deleted by something that is not a phone number
    response = business.delete(f"{CONTACTS}/not-a-number")

    # THEN 422 naming phoneNumber
    assert_error(response, 422, "VALIDATION_ERROR", "phoneNumber")


# Opt-outs ------------------------------------------------------------------------------------------------------
def test_opt_out_is_recorded_once_and_a_repeat_keeps_the_original(business: ApiClient) -> None:
    # GIVEN a number opted out with a reason
    first = business.post(OPT_OUTS, {"phoneNumber": "+34 612 300 001", "reason": "replied STOP"})

    # WHEN it is opted out again, written differently and with another reason
    second = business.post(OPT_OUTS, {"phoneNumber": "0034612300001", "reason": "asked by phone"})

    # THEN 201 then 200, and the second answer is the original record (reason, source and time kept)
    assert first.status == 201
    assert first.body["phoneNumber"] == phone(1)
    assert (first.body["reason"], first.body["source"]) == ("replied STOP", "api")
    assert second.status == 200
    assert second.body == first.body
    assert business.get(OPT_OUTS).body["items"] == [first.body]


def test_opt_out_can_be_removed_and_a_second_removal_is_404(business: ApiClient) -> None:
    # GIVEN an opt-out
    business.post(OPT_OUTS, {"phoneNumber": phone(1)})

    # WHEN it is removed twice
    first = business.delete(f"{OPT_OUTS}/%2B34612300001")
    second = business.delete(f"{OPT_OUTS}/{phone(1)}")

    # THEN 204 then 404 naming phoneNumber, and the listing is empty
    assert first.status == 204
    assert_error(second, 404, "NOT_FOUND", "phoneNumber")
    assert business.get(OPT_OUTS).body == {"items": [], "nextToken": None}

    # AND the number can be opted out again (a new record)
    assert business.post(OPT_OUTS, {"phoneNumber": phone(1)}).status == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phoneNumber": "612345678"}, "phoneNumber"),
        ({"phoneNumber": "+1415555"}, "phoneNumber"),
        ({"phoneNumber": "+34 612 300 001", "reason": "r" * 501}, "reason"),
        ({"reason": "no number"}, "phoneNumber"),
        ({"phoneNumber": "+34612300001", "source": "provider"}, "source"),
    ],
)
def test_invalid_opt_out_is_refused(business: ApiClient, body: dict[str, Any], field: str) -> None:
    # GIVEN / WHEN an opt-out breaking one rule is posted
    response = business.post(OPT_OUTS, body)

    # THEN 422 naming the field and nothing recorded
    assert_error(response, 422, "VALIDATION_ERROR", field)
    assert business.get(OPT_OUTS).body["items"] == []


def test_remove_opt_out_with_invalid_number_is_422(business: ApiClient) -> None:
    # GIVEN / WHEN an opt-out is removed by something that is not a phone number
    response = business.delete(f"{OPT_OUTS}/12")

    # THEN 422 naming phoneNumber
    assert_error(response, 422, "VALIDATION_ERROR", "phoneNumber")


def test_opt_outs_and_contacts_are_independent(business: ApiClient) -> None:
    # GIVEN a contact that opts out
    _upsert(business, {"phoneNumber": phone(1), "name": "Ana"})
    assert business.post(OPT_OUTS, {"phoneNumber": phone(1)}).status == 201

    # WHEN the contact is deleted
    assert business.delete(f"{CONTACTS}/{phone(1)}").status == 204

    # THEN the opt-out stays (deleting a contact must not let it be messaged again)
    assert [item["phoneNumber"] for item in business.get(OPT_OUTS).body["items"]] == [phone(1)]
