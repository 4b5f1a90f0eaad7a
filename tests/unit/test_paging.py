"""wabacast.adapters.paging: opaque tokens that never let a caller page into another partition."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.unit.fakes import phone
from wabacast.adapters.paging import decode_token, encode_token
from wabacast.errors import InvalidInputError
from wabacast.logic.contacts import ContactDraft, ContactService

MINE = {"PK": {"S": "BIZ#biz_mine"}, "SK": {"S": "CONTACT#+34612300001"}}


def _raw_token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _decode(token: str | None, **options: Any) -> dict[str, Any] | None:
    return decode_token(token, partition_attribute="PK", partition_value="BIZ#biz_mine", **options)


def test_round_trip() -> None:
    # GIVEN a LastEvaluatedKey
    # WHEN it is encoded and decoded for the same partition
    token = encode_token(MINE)
    # THEN the key comes back unchanged, from a URL-safe token without padding
    assert token is not None
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert _decode(token) == MINE


def test_round_trip_with_index_keys_and_unicode() -> None:
    # GIVEN an index key with the table key, and a non-ASCII sort value
    key = {
        "PK": {"S": "BIZ#biz_mine"},
        "SK": {"S": "QUEUE#q_ñ"},
        "GSI1PK": {"S": "BIZ#biz_mine#QSTATUS#DRAFT"},
        "GSI1SK": {"S": "q_ñ"},
    }
    # WHEN it is encoded and decoded against the index partition
    token = encode_token(key)
    decoded = decode_token(
        token,
        partition_attribute="GSI1PK",
        partition_value="BIZ#biz_mine#QSTATUS#DRAFT",
        sort_attribute="GSI1SK",
        key_attributes={"PK", "SK", "GSI1PK", "GSI1SK"},
    )
    # THEN it is the same key
    assert decoded == key


@pytest.mark.parametrize("key", [None, {}])
def test_no_last_key_means_no_token(key: dict[str, Any] | None) -> None:
    # GIVEN the last page (no LastEvaluatedKey)
    # WHEN it is encoded
    # THEN there is no token
    assert encode_token(key) is None


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_means_the_first_page(token: str | None) -> None:
    # GIVEN no token
    # WHEN it is decoded
    # THEN there is no start key
    assert _decode(token) is None


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "!!!!",
        "a",
        "%%%",
        "ñandú",
        _raw_token("just a string"),
        _raw_token([1, 2]),
        _raw_token(7),
        _raw_token(None),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
        base64.urlsafe_b64encode(b"{not json").decode(),
        _raw_token({"PK": {"S": "BIZ#biz_mine"}, "SK": {"N": "1"}}),
        _raw_token({"PK": {"S": "BIZ#biz_mine"}, "SK": {"S": "x", "N": "1"}}),
        _raw_token({"PK": {"S": "BIZ#biz_mine"}, "SK": "CONTACT#x"}),
        _raw_token({"PK": {"S": "BIZ#biz_mine"}, "SK": {"S": 123}}),
        _raw_token({"PK": {"S": "BIZ#biz_mine"}, "SK": {"S": ["CONTACT#x"]}}),
        _raw_token({"PK": {"S": "BIZ#biz_mine"}, "SK": {"S": None}}),
        _raw_token({"PK": "BIZ#biz_mine"}),
        _raw_token({"SK": {"S": "CONTACT#x"}}),
        _raw_token("[" * 5000),
        base64.urlsafe_b64encode(b"[" * 5000).decode(),
    ],
)
def test_garbage_and_tampered_tokens_are_invalid_input(token: str) -> None:
    # GIVEN a token this API never issued (garbage, wrong shapes, non-string key values, deep nesting)
    # WHEN it is decoded
    with pytest.raises(InvalidInputError) as caught:
        _decode(token)
    # THEN it is refused on nextToken, never passed on to DynamoDB
    assert caught.value.field == "nextToken"
    assert "nextToken" in caught.value.message


def test_token_of_another_partition_is_refused() -> None:
    # GIVEN a genuine token of another business's listing
    theirs = encode_token({"PK": {"S": "BIZ#biz_theirs"}, "SK": {"S": "CONTACT#+34612300001"}})
    # WHEN it is presented to my listing
    with pytest.raises(InvalidInputError) as caught:
        _decode(theirs)
    # THEN it is refused
    assert caught.value.field == "nextToken"


def test_tampered_partition_is_refused() -> None:
    # GIVEN my token, edited to point at another business
    edited = json.loads(base64.urlsafe_b64decode(encode_token(MINE) + "=="))  # type: ignore[operator]
    edited["PK"]["S"] = "BIZ#biz_theirs"
    # WHEN it is decoded for my partition
    # THEN it is refused
    with pytest.raises(InvalidInputError):
        _decode(_raw_token(edited))


def test_token_of_another_listing_in_the_same_partition_is_refused() -> None:
    # GIVEN a token of my accounts listing
    accounts_token = encode_token({"PK": {"S": "BIZ#biz_mine"}, "SK": {"S": "ACCOUNT#acc_1"}})
    # WHEN it is used for my contacts listing (same partition, other sort-key prefix)
    # THEN it is refused rather than sent to DynamoDB
    with pytest.raises(InvalidInputError):
        _decode(accounts_token, sort_attribute="SK", sort_prefix="CONTACT#", key_attributes={"PK", "SK"})


def test_token_with_extra_or_missing_key_attributes_is_refused() -> None:
    # GIVEN tokens with an attribute too many, or one too few, for the listing's key
    extra = encode_token({**MINE, "GSI1PK": {"S": "x"}})
    missing = encode_token({"PK": MINE["PK"]})
    # WHEN they are decoded with the listing's key attributes
    # THEN both are refused
    for token in (extra, missing):
        with pytest.raises(InvalidInputError):
            _decode(token, sort_attribute="SK", sort_prefix="CONTACT#", key_attributes={"PK", "SK"})


def test_listing_refuses_another_business_token(contact_service: ContactService) -> None:
    # GIVEN two businesses with contacts, and a next-page token of the first
    rows = [(n, ContactDraft(phone_number=phone(n))) for n in range(3)]
    contact_service.upsert("biz_a", rows, [])
    contact_service.upsert("biz_b", rows, [])
    token = contact_service.list("biz_a", tag=None, limit=1, next_token=None).next_token
    assert token is not None
    # WHEN the second business pages with it
    # THEN it is refused instead of leaking the first business's contacts
    with pytest.raises(InvalidInputError) as caught:
        contact_service.list("biz_b", tag=None, limit=1, next_token=token)
    assert caught.value.field == "nextToken"
    # AND the first business can use it
    assert contact_service.list("biz_a", tag=None, limit=1, next_token=token).items[0].phone_number == phone(1)
