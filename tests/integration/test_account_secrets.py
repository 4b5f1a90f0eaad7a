"""Provider credentials: kept in Secrets Manager, never answered, never logged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import (
    META_CREDENTIALS,
    TWILIO_CREDENTIALS,
    ApiClient,
    ApiResponse,
    account_body,
    assert_error,
    create_account,
    new_api_client,
    new_business,
    phone,
)
from wabacast.bootstrap import issue_admin_key
from wabacast.settings import Settings

ACCOUNTS = "/api/whatsapp/accounts"
SECRET_VALUES = [
    TWILIO_CREDENTIALS["authToken"],
    META_CREDENTIALS["accessToken"],
    META_CREDENTIALS["appSecret"],
]
NEW_TWILIO = {"accountSid": "AC" + "9" * 32, "authToken": "e" * 32, "messagingServiceSid": "MG" + "1" * 32}


def _secret_name(business: ApiClient, account_id: str) -> str:
    return f"wabacast/{business.business_id}/accounts/{account_id}"  # type: ignore[attr-defined]


def _stored_secret(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        boto3.client("secretsmanager", region_name="us-east-1").get_secret_value(SecretId=name)["SecretString"]
    )
    return value


def _secret_names() -> list[str]:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    return sorted(secret["Name"] for secret in client.list_secrets()["SecretList"])


def _assert_no_secret_in(response: ApiResponse, *secrets: str) -> None:
    text = json.dumps(response.body)
    for secret in secrets or SECRET_VALUES:
        assert secret not in text
    for key in ("authToken", "accessToken", "appSecret"):
        assert key not in text


def test_twilio_credentials_are_stored_as_a_secret_and_answered_only_as_a_hint(business: ApiClient) -> None:
    # GIVEN a twilio account body with credentials
    # WHEN it is created, read, listed and renamed
    created = business.post(ACCOUNTS, account_body(phone(1), "twilio"))
    account_id = created.body["id"]
    answers = [
        created,
        business.get(f"{ACCOUNTS}/{account_id}"),
        business.get(ACCOUNTS),
        business.put(f"{ACCOUNTS}/{account_id}", {"displayName": "Renamed"}),
    ]

    # THEN no answer carries the token, each shows the summary with the SID hint
    assert [answer.status for answer in answers] == [201, 200, 200, 200]
    for answer in answers:
        _assert_no_secret_in(answer)
    expected = {"configured": True, "hint": "AC...cdef"}
    assert created.body["credentials"] == expected
    assert answers[1].body["credentials"] == expected
    assert answers[2].body["items"][0]["credentials"] == expected
    assert answers[3].body["credentials"] == expected

    # AND the secret holds the credentials under wabacast/{businessId}/accounts/{accountId}
    stored = _stored_secret(_secret_name(business, account_id))
    assert stored["account_sid"] == TWILIO_CREDENTIALS["accountSid"]
    assert stored["auth_token"] == TWILIO_CREDENTIALS["authToken"]


def test_meta_credentials_are_stored_as_a_secret_and_answered_only_as_a_hint(business: ApiClient) -> None:
    # GIVEN a meta account body with credentials
    # WHEN it is created and read
    created = business.post(ACCOUNTS, account_body(phone(2), "meta"))
    fetched = business.get(f"{ACCOUNTS}/{created.body['id']}")

    # THEN neither answer carries the access token or app secret; the hint is the phone number id's tail
    assert created.status == 201
    for answer in (created, fetched):
        _assert_no_secret_in(answer)
        assert answer.body["credentials"] == {"configured": True, "hint": "...0987"}

    # AND the secret holds all four values
    stored = _stored_secret(_secret_name(business, created.body["id"]))
    assert stored == {
        "phone_number_id": META_CREDENTIALS["phoneNumberId"],
        "waba_id": META_CREDENTIALS["wabaId"],
        "access_token": META_CREDENTIALS["accessToken"],
        "app_secret": META_CREDENTIALS["appSecret"],
    }


def test_sandbox_account_has_no_credentials_and_no_secret(business: ApiClient) -> None:
    # GIVEN / WHEN a sandbox account is created
    account = create_account(business, phone(3))

    # THEN it reports unconfigured credentials and no secret exists
    assert account["credentials"]["configured"] is False
    assert account["credentials"].get("hint") is None
    assert _secret_names() == []


def test_updating_credentials_replaces_the_secret_and_answers_the_new_hint(business: ApiClient) -> None:
    # GIVEN a twilio account
    account = create_account(business, phone(4), "twilio")
    path = f"{ACCOUNTS}/{account['id']}"

    # WHEN its credentials are replaced
    updated = business.put(path, {"credentials": NEW_TWILIO})

    # THEN the answer shows the new hint and no token, and the secret holds the new values
    assert updated.status == 200, updated.body
    _assert_no_secret_in(updated, NEW_TWILIO["authToken"], TWILIO_CREDENTIALS["authToken"])
    assert updated.body["credentials"] == {"configured": True, "hint": "AC...9999"}
    stored = _stored_secret(_secret_name(business, account["id"]))
    assert stored["auth_token"] == NEW_TWILIO["authToken"]
    assert stored["messaging_service_sid"] == NEW_TWILIO["messagingServiceSid"]
    assert business.get(path).body["credentials"]["hint"] == "AC...9999"


def test_refused_credentials_update_keeps_the_stored_secret(business: ApiClient) -> None:
    # GIVEN a twilio account
    account = create_account(business, phone(5), "twilio")

    # WHEN an update sends a malformed token
    response = business.put(f"{ACCOUNTS}/{account['id']}", {"credentials": {**NEW_TWILIO, "authToken": "short"}})

    # THEN it is refused, without echoing the value, and the secret still holds the old token
    assert_error(response, 422, "VALIDATION_ERROR", "credentials.authToken")
    assert "short" not in response.body["error"]["message"]
    assert _stored_secret(_secret_name(business, account["id"]))["auth_token"] == TWILIO_CREDENTIALS["authToken"]


def test_deleting_an_account_deletes_its_secret(business: ApiClient) -> None:
    # GIVEN a meta account with its secret
    account = create_account(business, phone(6), "meta")
    name = _secret_name(business, account["id"])
    assert _stored_secret(name)["waba_id"] == META_CREDENTIALS["wabaId"]

    # WHEN the account is deleted
    response = business.delete(f"{ACCOUNTS}/{account['id']}")

    # THEN the secret is gone
    assert response.status == 204
    with pytest.raises(ClientError) as raised:
        _stored_secret(name)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert _secret_names() == []


def test_refused_create_leaves_no_secret_behind(business: ApiClient, other_business: ApiClient) -> None:
    # GIVEN another business owns the number
    create_account(other_business, phone(7))

    # WHEN a twilio account with that number is created (credentials valid, number taken)
    response = business.post(ACCOUNTS, account_body(phone(7), "twilio"))

    # THEN 409 and no secret was left for this business
    assert_error(response, 409, "CONFLICT", "phoneNumber")
    assert not [name for name in _secret_names() if name.startswith(f"wabacast/{business.business_id}/")]  # type: ignore[attr-defined]


def test_invalid_credentials_create_no_secret(business: ApiClient) -> None:
    # GIVEN / WHEN a meta account with a malformed app secret is posted
    response = business.post(
        ACCOUNTS, account_body(phone(8), "meta", credentials={**META_CREDENTIALS, "appSecret": "x"})
    )

    # THEN it is refused and no secret exists
    assert_error(response, 422, "VALIDATION_ERROR", "credentials.appSecret")
    assert _secret_names() == []


# Logs ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def verbose_clients(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> tuple[ApiClient, ApiClient]:
    """Admin and business clients built with the loudest logging an operator could switch on."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    admin = new_api_client(issue_admin_key(settings, "logs"))
    return admin, new_business(admin, "Loud")


@pytest.fixture
def service_log(verbose_clients: tuple[ApiClient, ApiClient]) -> Iterator[io.StringIO]:
    """What the Powertools service logger writes (its JSON lines), captured at DEBUG."""
    service = logging.getLogger("wabacast")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    powertools_handlers = [existing for existing in service.handlers if existing.formatter is not None]
    assert powertools_handlers, "the Powertools logger should be configured by the handler modules"
    handler.setFormatter(powertools_handlers[0].formatter)
    previous_level = service.level
    service.addHandler(handler)
    service.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        service.removeHandler(handler)
        service.setLevel(previous_level)


def test_secret_values_and_api_keys_never_appear_in_logs(
    verbose_clients: tuple[ApiClient, ApiClient],
    service_log: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN DEBUG logging with event logging switched on, and a business client
    _, business = verbose_clients
    caplog.set_level(logging.DEBUG)

    # WHEN accounts are created, updated, refused (with the token in the refused body) and a bad key is used
    twilio = business.post(ACCOUNTS, account_body(phone(10), "twilio"))
    meta = business.post(ACCOUNTS, account_body(phone(11), "meta"))
    business.put(f"{ACCOUNTS}/{twilio.body['id']}", {"credentials": NEW_TWILIO})
    refused = business.post(
        ACCOUNTS, account_body(phone(12), "meta", credentials={**META_CREDENTIALS, "phoneNumberId": "x"})
    )
    refused_update = business.put(
        f"{ACCOUNTS}/{meta.body['id']}", {"credentials": {**NEW_TWILIO, "accountSid": "nope"}}
    )
    unknown_key = business.as_key("wbk_unknown").get(ACCOUNTS)

    # THEN the requests did what they should
    assert [twilio.status, meta.status, refused.status, refused_update.status, unknown_key.status] == [
        201,
        201,
        422,
        422,
        401,
    ]

    # AND the capture works (the authorizer's line about the unknown key is there) ...
    logged = service_log.getvalue()
    assert "unknown API key" in logged
    # ... but no secret value, and no API key, appears in the service log, in stdout/stderr,
    # or in any record of our or Powertools' loggers
    captured = capsys.readouterr()
    records = "\n".join(
        record.getMessage() + " " + json.dumps(record.__dict__, default=str)
        for record in caplog.records
        if record.name.startswith(("wabacast", "aws_lambda_powertools"))
    )
    secrets = [*SECRET_VALUES, NEW_TWILIO["authToken"], business.api_key, "wbk_unknown"]
    for text in (logged, captured.out, captured.err, records):
        for secret in secrets:
            assert secret not in text
