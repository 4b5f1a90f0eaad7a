"""The API as an attacker probes it: authentication before anything else, bounded and well-formed input, printable
text, strict types, identifiers that fit DynamoDB's keys, no sandbox accounts outside the local stack."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import (
    ApiClient,
    account_body,
    assert_error,
    create_account,
    new_api_client,
    phone,
    queue_body,
)
from wabacast.api.guard import MAX_BODY_BYTES

ACCOUNTS = "/api/whatsapp/accounts"
QUEUES = "/api/whatsapp/queue"
ADMIN_KEYS = "/api/admin/keys"


# Authentication comes first --------------------------------------------------------------------------------------
def test_a_bad_key_with_an_invalid_body_is_401_not_422(module_business: ApiClient) -> None:
    # GIVEN an unknown key and a body that breaks every rule
    intruder = module_business.as_key("wbk_not-a-key")

    # WHEN it is posted
    response = intruder.post(ACCOUNTS, {"displayName": "", "provider": "nope", "unknown": 1})

    # THEN the answer is 401, and says nothing about the fields
    error = assert_error(response, 401, "UNAUTHENTICATED")
    assert "details" not in error


def test_a_bad_key_with_a_huge_or_malformed_body_is_401(module_business: ApiClient) -> None:
    # GIVEN an unknown key
    intruder = module_business.as_key("wbk_not-a-key")

    # WHEN a body over the size limit, and one that is not JSON, are posted
    huge = intruder.request("POST", ACCOUNTS, raw_body="[" * (MAX_BODY_BYTES + 1))
    malformed = intruder.request("POST", ACCOUNTS, raw_body='{"displayName": ')

    # THEN both are 401: the body was not looked at
    assert_error(huge, 401, "UNAUTHENTICATED")
    assert_error(malformed, 401, "UNAUTHENTICATED")


def test_a_business_key_on_an_admin_route_is_403_before_validation(module_business: ApiClient) -> None:
    # GIVEN a business key and an invalid admin body
    # WHEN it is posted to an admin route
    response = module_business.post("/api/admin/businesses", {"name": "", "extra": True})

    # THEN 403, not the validation errors of a route the key may not use
    assert_error(response, 403, "FORBIDDEN")


# Body size and shape ------------------------------------------------------------------------------------------------
def test_a_body_over_6_mb_is_413_with_the_limit_in_the_message(module_business: ApiClient) -> None:
    # GIVEN a JSON body one byte over Lambda's 6 MB
    body = json.dumps({"contacts": [{"phoneNumber": phone(1), "name": "x" * MAX_BODY_BYTES}]})

    # WHEN it is posted
    response = module_business.request("POST", "/api/whatsapp/contacts", raw_body=body)

    # THEN 413 in the API's format, naming the limit
    error = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert "6,291,456 bytes" in error["message"]


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_json_nested_too_deeply_is_400_not_500(module_business: ApiClient, depth: int) -> None:
    # GIVEN an object nested deeper than the JSON parser recurses
    body = '{"a":' * depth + "1" + "}" * depth

    # WHEN it is posted
    response = module_business.request("POST", QUEUES, raw_body=body)

    # THEN 400 MALFORMED_JSON, not a server error
    error = assert_error(response, 400, "MALFORMED_JSON")
    assert "deeply" in error["message"]


def test_a_deep_but_parseable_body_is_a_field_error(module_business: ApiClient) -> None:
    # GIVEN variables whose value is a structure nested 500 levels deep (parseable, but not a string)
    body = json.dumps(queue_body()).removesuffix("}") + ', "variables": {"1": ' + "[" * 500 + "]" * 500 + "}}"

    # WHEN it is posted
    response = module_business.request("POST", QUEUES, raw_body=body)

    # THEN a 422 that names the field
    assert_error(response, 422, "VALIDATION_ERROR", "variables.1")


# Identifiers ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"{QUEUES}/{'q' * 3000}", "queueId"),
        (f"{QUEUES}/{'q' * 65}/process", "queueId"),
        (f"{ACCOUNTS}/acc%00nul", "accountId"),
        (f"{ACCOUNTS}/acc.with.dots", "accountId"),
        (f"/api/admin/businesses/{'b' * 2049}/keys", "businessId"),
    ],
)
def test_an_identifier_that_cannot_be_a_key_is_400_naming_it(
    module_admin: ApiClient, module_business: ApiClient, path: str, field: str
) -> None:
    # GIVEN a path whose identifier is too long for a DynamoDB key, or has characters no identifier has
    client = module_admin if path.startswith("/api/admin") else module_business

    # WHEN it is requested
    response = client.get(path)

    # THEN 400 naming the parameter and the rule, not a 500 from DynamoDB
    error = assert_error(response, 400, "INVALID_PATH_PARAMETER", field)
    assert error["message"] == f"{field}: must be 1..64 letters, digits, '_' or '-'"


def test_an_account_id_too_long_in_a_body_or_query_is_a_field_error(module_business: ApiClient) -> None:
    # GIVEN an account id longer than any id
    long_id = "acc_" + "x" * 3000

    # WHEN a queue names it, and the queue listing filters on it
    created = module_business.post(QUEUES, queue_body(accountId=long_id))
    listed = module_business.get(QUEUES, accountId=long_id)

    # THEN both are 422 naming accountId, not 500
    assert_error(created, 422, "VALIDATION_ERROR", "accountId")
    assert_error(listed, 422, "VALIDATION_ERROR", "accountId")


# Free text -----------------------------------------------------------------------------------------------------------
TEXT_CASES = {
    "NUL": "Spring\x00sale",
    "right-to-left override": "Invoice \u202egnp.exe",
    "zero-width space": "Spr\u200bing",
    "new line": "Spring\nsale",
    "byte order mark": "\ufeffSpring",
}


@pytest.mark.parametrize("text", TEXT_CASES.values(), ids=TEXT_CASES.keys())
def test_control_and_invisible_characters_are_refused_in_free_text(module_business: ApiClient, text: str) -> None:
    # GIVEN free text with a control or invisible formatting character, in each kind of free-text field
    # WHEN it is sent as a queue name, a variable value, an account name and an opt-out reason
    queue_name = module_business.post(QUEUES, queue_body(name=text))
    variable = module_business.post(QUEUES, queue_body(variables={"1": text}))
    account_name = module_business.post(ACCOUNTS, account_body(phone(700), displayName=text))
    reason = module_business.post("/api/whatsapp/opt-outs", {"phoneNumber": phone(701), "reason": text})

    # THEN each is a 422 naming the field and the rule
    for response, field in ((queue_name, "name"), (variable, "variables.1"), (account_name, "displayName")):
        error = assert_error(response, 422, "VALIDATION_ERROR", field)
        assert "control or invisible formatting characters" in error["message"]
    assert_error(reason, 422, "VALIDATION_ERROR", "reason")


def test_a_contact_row_with_a_control_character_is_rejected_alone(module_business: ApiClient) -> None:
    # GIVEN two contact rows, one whose name holds a NUL and an attribute a bidi override
    rows = [
        {"phoneNumber": phone(710), "name": "Ana\x00"},
        {"phoneNumber": phone(711), "attributes": {"city": "Ma\u202edrid"}},
        {"phoneNumber": phone(712), "name": "Ana"},
    ]

    # WHEN they are upserted
    response = module_business.post("/api/whatsapp/contacts", {"contacts": rows})

    # THEN the two rows are rejected, naming their field, and the clean one is stored
    assert response.status == 200, response.body
    rejected = {row["index"]: row["field"] for row in response.body["rejected"]}
    assert rejected == {0: "name", 1: "attributes"}
    assert response.body["created"] == 1


def test_ordinary_unicode_text_is_kept(business: ApiClient) -> None:
    # GIVEN names in other scripts, with accents and an emoji, and an account to send from
    name = "Soldes d'été - 夏のセール 🎉"
    create_account(business, phone(720))

    # WHEN a queue is created with it
    created = business.post(QUEUES, queue_body(name=name))

    # THEN it is stored as sent
    assert created.status == 201, created.body
    assert created.body["name"] == name


# Strict numbers and booleans -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"priority": "5"}, "priority"),
        ({"priority": True}, "priority"),
        ({"priority": 5.0}, "priority"),
        ({"maxAttempts": "3"}, "maxAttempts"),
        ({"maxAttempts": False}, "maxAttempts"),
    ],
)
def test_queue_numbers_are_strict(module_business: ApiClient, fields: dict[str, Any], field: str) -> None:
    # GIVEN a number sent as a string, a boolean or a float
    # WHEN the queue is created
    response = module_business.post(QUEUES, queue_body(**fields))

    # THEN it is refused, naming the field
    assert_error(response, 422, "VALIDATION_ERROR", field)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"isPrimary": "true"}, "isPrimary"),
        ({"isDefault": 1}, "isDefault"),
        ({"limits": {"messagesPerSecond": "80"}}, "limits.messagesPerSecond"),
        ({"limits": {"dailyRecipientLimit": True}}, "limits.dailyRecipientLimit"),
    ],
)
def test_account_numbers_and_flags_are_strict(module_business: ApiClient, fields: dict[str, Any], field: str) -> None:
    # GIVEN a boolean or number of the wrong JSON type
    # WHEN the account is created
    response = module_business.post(ACCOUNTS, account_body(phone(730), **fields))

    # THEN it is refused, naming the field
    assert_error(response, 422, "VALIDATION_ERROR", field)


# Sandbox accounts ----------------------------------------------------------------------------------------------------
def test_sandbox_accounts_are_refused_at_creation_outside_the_local_stack(
    admin: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an API whose environment does not allow sandbox accounts (as in AWS), even with a sandbox URL set
    monkeypatch.delenv("ALLOW_SANDBOX_ACCOUNTS")
    cloud_admin = new_api_client(admin.api_key)
    response = cloud_admin.post("/api/admin/businesses", {"name": "Cloud"})
    tenant = cloud_admin.as_key(response.body["apiKey"])

    # WHEN a tenant creates a sandbox account, and a Meta one
    sandbox = tenant.post(ACCOUNTS, account_body(phone(740), "sandbox"))
    meta = tenant.post(ACCOUNTS, account_body(phone(741), "meta"))

    # THEN the sandbox account is refused, naming the provider; the Meta account is created
    error = assert_error(sandbox, 422, "VALIDATION_ERROR", "provider")
    assert "local stack" in error["message"]
    assert meta.status == 201, meta.body
    assert [account["provider"] for account in tenant.get(ACCOUNTS).body["items"]] == ["meta"]
