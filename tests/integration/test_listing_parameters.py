"""Listing parameters that must be refused: page sizes outside 1..100 and tokens no listing returned.

Every request here is refused, so the module shares one business (module scope).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.integration.conftest import ApiClient, assert_error

ACCOUNTS = "/api/whatsapp/accounts"
QUEUES = "/api/whatsapp/queue"
CONTACTS = "/api/whatsapp/contacts"
OPT_OUTS = "/api/whatsapp/opt-outs"


def _token(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", [ACCOUNTS, QUEUES, CONTACTS, OPT_OUTS, "/api/admin/businesses"])
@pytest.mark.parametrize("limit", [0, 101, -1, "ten"])
def test_limit_outside_1_to_100_is_refused(
    module_business: ApiClient, module_admin: ApiClient, path: str, limit: Any
) -> None:
    # GIVEN a listing
    client = module_admin if path.startswith("/api/admin") else module_business

    # WHEN it is asked for a page size outside 1..100
    response = client.get(path, limit=limit)

    # THEN 422 naming limit
    assert_error(response, 422, "VALIDATION_ERROR", "limit")


@pytest.mark.parametrize(
    "token",
    [
        "not a token!",
        "%%%",
        base64.urlsafe_b64encode(b"\xff\xfe\x00binary").decode(),
        _token(["PK", "SK"]),
        _token({"PK": {"S": "BIZ#biz_someone_else"}, "SK": {"S": "ACCOUNT#acc_x"}}),
        _token({"PK": {"N": "1"}, "SK": {"S": "ACCOUNT#acc_x"}}),
    ],
    ids=["garbage", "percent", "binary", "json-list", "other-partition", "wrong-type"],
)
@pytest.mark.parametrize("path", [ACCOUNTS, QUEUES, CONTACTS, OPT_OUTS])
def test_invalid_next_token_is_refused(module_business: ApiClient, path: str, token: str) -> None:
    # GIVEN a token this listing never returned
    # WHEN it is used
    response = module_business.get(path, nextToken=token)

    # THEN 422 naming nextToken
    assert_error(response, 422, "VALIDATION_ERROR", "nextToken")


@pytest.mark.parametrize("path", [ACCOUNTS, QUEUES, CONTACTS, OPT_OUTS])
def test_tampered_token_of_own_partition_is_refused(module_business: ApiClient, path: str) -> None:
    # GIVEN tokens naming the caller's own partition but no real position in this listing
    partition = f"BIZ#{module_business.business_id}"  # type: ignore[attr-defined]
    tampered = [
        _token({"PK": {"S": partition}}),
        _token({"PK": {"S": partition}, "SK": {"S": "SOMETHING#else"}}),
        _token({"PK": {"S": partition}, "SK": {"S": "ACCOUNT#acc_x"}, "extra": {"S": "x"}}),
    ]

    # WHEN each is used
    responses = [module_business.get(path, nextToken=token) for token in tampered]

    # THEN each is a 422 nextToken (not a 500 from DynamoDB refusing the start key)
    for response in responses:
        assert_error(response, 422, "VALIDATION_ERROR", "nextToken")
