"""Account input rules through the HTTP API: every refused field is named in error.field.

These tests share one business (module scope): each request here must be refused, so none changes what the
next test sees. Tests that create accounts on purpose live in the other modules.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import (
    META_CREDENTIALS,
    TWILIO_CREDENTIALS,
    ApiClient,
    account_body,
    assert_error,
    create_account,
    phone,
)

ACCOUNTS = "/api/whatsapp/accounts"
HEX32 = "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def twilio_account(module_business: ApiClient) -> dict[str, Any]:
    return create_account(module_business, phone(1), "twilio")


@pytest.fixture(scope="module")
def meta_account(module_business: ApiClient) -> dict[str, Any]:
    return create_account(module_business, phone(2), "meta")


def _twilio(**credentials: Any) -> dict[str, Any]:
    return {"provider": "twilio", "credentials": {**TWILIO_CREDENTIALS, **credentials}}


def _meta(**credentials: Any) -> dict[str, Any]:
    return {"provider": "meta", "credentials": {**META_CREDENTIALS, **credentials}}


CREATE_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "display name empty": ({"displayName": ""}, "displayName"),
    "display name too long": ({"displayName": "x" * 201}, "displayName"),
    "phone number without plus": ({"phoneNumber": "14155552671"}, "phoneNumber"),
    "phone number invalid for its country": ({"phoneNumber": "+1415555"}, "phoneNumber"),
    "phone number not a number": ({"phoneNumber": "call me maybe"}, "phoneNumber"),
    "provider unknown": ({"provider": "whatsapp"}, "provider"),
    "twilio without credentials": ({"provider": "twilio"}, "credentials"),
    "meta without credentials": ({"provider": "meta"}, "credentials"),
    "credentials not an object": ({"provider": "twilio", "credentials": "AC123"}, "credentials"),
    "twilio accountSid without AC": (_twilio(accountSid="XX" + HEX32), "credentials.accountSid"),
    "twilio accountSid too short": (_twilio(accountSid="AC" + HEX32[:-1]), "credentials.accountSid"),
    "twilio authToken not hex": (_twilio(authToken="not-a-hex-token-not-a-hex-token!"), "credentials.authToken"),
    "twilio authToken missing": (
        {"provider": "twilio", "credentials": {"accountSid": TWILIO_CREDENTIALS["accountSid"]}},
        "credentials.authToken",
    ),
    "twilio messagingServiceSid without MG": (
        _twilio(messagingServiceSid="MX" + HEX32),
        "credentials.messagingServiceSid",
    ),
    "twilio unknown credential key": (_twilio(password="hunter2"), "credentials.password"),
    "meta phoneNumberId not digits": (_meta(phoneNumberId="12ab5"), "credentials.phoneNumberId"),
    "meta wabaId too short": (_meta(wabaId="1234"), "credentials.wabaId"),
    "meta accessToken too short": (_meta(accessToken="short"), "credentials.accessToken"),
    "meta appSecret not hex": (_meta(appSecret="z" * 32), "credentials.appSecret"),
    "meta accessToken missing": (
        {"provider": "meta", "credentials": {k: v for k, v in META_CREDENTIALS.items() if k != "accessToken"}},
        "credentials.accessToken",
    ),
    "meta given twilio credentials": (
        {"provider": "meta", "credentials": dict(TWILIO_CREDENTIALS)},
        "credentials.accountSid",
    ),
    "sandbox with credentials": ({"provider": "sandbox", "credentials": dict(TWILIO_CREDENTIALS)}, "credentials"),
    "messagesPerSecond zero": ({"limits": {"messagesPerSecond": 0}}, "limits.messagesPerSecond"),
    "messagesPerSecond 1001": ({"limits": {"messagesPerSecond": 1001}}, "limits.messagesPerSecond"),
    "dailyRecipientLimit zero": ({"limits": {"dailyRecipientLimit": 0}}, "limits.dailyRecipientLimit"),
    "limits unknown key": ({"limits": {"burst": 5}}, "limits.burst"),
    "status unknown": ({"status": "DELETED"}, "status"),
    "qualityRating unknown": ({"qualityRating": "BLUE"}, "qualityRating"),
    "verificationStatus unknown": ({"verificationStatus": "MAYBE"}, "verificationStatus"),
    "messagingTier unknown": ({"messagingTier": "TIER_2"}, "messagingTier"),
    "isPrimary not a boolean": ({"isPrimary": "perhaps"}, "isPrimary"),
    "unknown top-level field": ({"color": "green"}, "color"),
}


@pytest.mark.parametrize(("overrides", "field"), CREATE_CASES.values(), ids=CREATE_CASES.keys())
def test_create_account_refuses_each_broken_rule_and_names_the_field(
    module_business: ApiClient, overrides: dict[str, Any], field: str
) -> None:
    # GIVEN an otherwise valid sandbox account body with one rule broken
    body = {**account_body(phone(100)), **overrides}

    # WHEN it is posted
    response = module_business.post(ACCOUNTS, body)

    # THEN it is refused with 422 naming exactly that field, and nothing was created
    assert_error(response, 422, "VALIDATION_ERROR", field)
    listed = module_business.get(ACCOUNTS, limit=100).body["items"]
    assert phone(100) not in [account["phoneNumber"] for account in listed]


def test_create_account_without_display_name_says_it_is_required(module_business: ApiClient) -> None:
    # GIVEN a body that leaves out displayName
    body = account_body(phone(101))
    del body["displayName"]

    # WHEN it is posted
    response = module_business.post(ACCOUNTS, body)

    # THEN the error names the missing field
    error = assert_error(response, 422, "VALIDATION_ERROR", "displayName")
    assert error["message"] == "displayName: is required"


def test_malformed_json_is_a_400_malformed_json(module_business: ApiClient) -> None:
    # GIVEN a body that is not JSON
    # WHEN it is posted as application/json
    response = module_business.request("POST", ACCOUNTS, raw_body='{"displayName": "A",')

    # THEN the answer is 400 MALFORMED_JSON, no field
    assert_error(response, 400, "MALFORMED_JSON")


@pytest.mark.parametrize(
    ("content_type", "raw_body"),
    [
        ("text/plain", "displayName: A"),
        ("application/xml", "<account><displayName>A</displayName></account>"),
        ("application/x-www-form-urlencoded", "displayName=A&phoneNumber=%2B34612300100&provider=sandbox"),
    ],
)
def test_non_json_content_type_is_a_415(module_business: ApiClient, content_type: str, raw_body: str) -> None:
    # GIVEN a body that is not JSON, labelled with its own content type
    # WHEN it is posted
    response = module_business.request("POST", ACCOUNTS, raw_body=raw_body, headers={"content-type": content_type})

    # THEN the answer is 415 in the API's error format
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_json_array_of_accounts_is_refused_and_creates_nothing(module_business: ApiClient) -> None:
    # GIVEN a JSON array of two valid account bodies (not the object the route takes)
    body = [account_body(phone(102)), account_body(phone(104))]

    # WHEN it is posted
    response = module_business.post(ACCOUNTS, body)

    # THEN it is a validation error and neither account exists (no silent "first element wins")
    assert_error(response, 422, "VALIDATION_ERROR")
    listed = [account["phoneNumber"] for account in module_business.get(ACCOUNTS, limit=100).body["items"]]
    assert phone(102) not in listed
    assert phone(104) not in listed


def test_every_problem_is_listed_in_details_when_several_fields_are_wrong(module_business: ApiClient) -> None:
    # GIVEN a body with three broken fields
    body = {**account_body(phone(103)), "displayName": "", "status": "GONE", "limits": {"messagesPerSecond": 0}}

    # WHEN it is posted
    response = module_business.post(ACCOUNTS, body)

    # THEN error.details names each field
    assert response.status == 422
    fields = {detail["field"] for detail in response.body["error"]["details"]}
    assert fields == {"displayName", "status", "limits.messagesPerSecond"}


UPDATE_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "display name empty": ({"displayName": ""}, "displayName"),
    "display name null": ({"displayName": None}, "displayName"),
    "status null": ({"status": None}, "status"),
    "phone number invalid": ({"phoneNumber": "+1415555"}, "phoneNumber"),
    "provider cannot change": ({"provider": "meta"}, "provider"),
    "credentials null for twilio": ({"credentials": None}, "credentials"),
    "authToken wrong shape": ({"credentials": {**TWILIO_CREDENTIALS, "authToken": "123"}}, "credentials.authToken"),
    "meta credentials on twilio": ({"credentials": dict(META_CREDENTIALS)}, "credentials.accessToken"),
    "messagesPerSecond 1001": ({"limits": {"messagesPerSecond": 1001}}, "limits.messagesPerSecond"),
    "qualityRating unknown": ({"qualityRating": "PURPLE"}, "qualityRating"),
    "unknown field": ({"nickname": "x"}, "nickname"),
}


@pytest.mark.parametrize(("body", "field"), UPDATE_CASES.values(), ids=UPDATE_CASES.keys())
def test_update_account_refuses_each_broken_rule_and_keeps_the_account(
    module_business: ApiClient, twilio_account: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    # GIVEN a stored twilio account
    path = f"{ACCOUNTS}/{twilio_account['id']}"
    before = module_business.get(path).body

    # WHEN a PUT breaks one rule
    response = module_business.put(path, body)

    # THEN it is refused naming the field, and the account is as it was
    assert_error(response, 422, "VALIDATION_ERROR", field)
    assert module_business.get(path).body == before


def test_update_meta_account_checks_meta_credential_shape(
    module_business: ApiClient, meta_account: dict[str, Any]
) -> None:
    # GIVEN a stored meta account
    path = f"{ACCOUNTS}/{meta_account['id']}"

    # WHEN its credentials are replaced by ones with a malformed app secret
    response = module_business.put(path, {"credentials": {**META_CREDENTIALS, "appSecret": "nothex"}})

    # THEN the meta field is named
    assert_error(response, 422, "VALIDATION_ERROR", "credentials.appSecret")


def test_update_of_unknown_account_is_404(module_business: ApiClient) -> None:
    # GIVEN no account with this id
    # WHEN it is updated
    response = module_business.put(f"{ACCOUNTS}/acc_doesnotexist", {"displayName": "X"})

    # THEN 404 NOT_FOUND
    assert_error(response, 404, "NOT_FOUND")
