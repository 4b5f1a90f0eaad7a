"""Who may call what, and what one business can see of another's data: nothing, not even that it exists."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import (
    ApiClient,
    ApiResponse,
    assert_error,
    create_account,
    create_queue,
    phone,
)

ACCOUNTS = "/api/whatsapp/accounts"
QUEUES = "/api/whatsapp/queue"
CONTACTS = "/api/whatsapp/contacts"
OPT_OUTS = "/api/whatsapp/opt-outs"
BUSINESSES = "/api/admin/businesses"


def _same_as_missing(foreign: ApiResponse, missing: ApiResponse) -> None:
    """A foreign id must be indistinguishable from an id that does not exist."""
    assert foreign.status == 404, foreign.body
    assert missing.status == 404, missing.body
    assert foreign.body == missing.body


@pytest.fixture
def a_account(business: ApiClient) -> dict[str, Any]:
    return create_account(business, phone(1), "twilio")


@pytest.fixture
def a_queue(business: ApiClient, a_account: dict[str, Any]) -> dict[str, Any]:
    return create_queue(business, template={"name": "promo", "language": "en", "contentSid": "HX" + "ab" * 16})


# Keys and roles ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [ACCOUNTS, QUEUES, CONTACTS, OPT_OUTS, BUSINESSES])
def test_no_key_is_401(anonymous: ApiClient, path: str) -> None:
    # GIVEN no Authorization header
    # WHEN any protected route is called
    response = anonymous.get(path)

    # THEN API Gateway answers 401 before any Lambda runs
    assert response.status == 401


@pytest.mark.parametrize(
    "authorization",
    ["Bearer wbk_this-key-was-never-issued", "Bearer garbage", "Basic dXNlcjpwYXNz", "Bearer ", "wbk_no_scheme"],
)
def test_unknown_or_malformed_key_is_401_json_error(business: ApiClient, authorization: str) -> None:
    # GIVEN a header that does not carry an issued key
    # WHEN the accounts are listed with it
    response = business.as_key(None).request("GET", ACCOUNTS, headers={"authorization": authorization})

    # THEN the API answers 401 in its own error format
    assert_error(response, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", BUSINESSES, None),
        ("POST", BUSINESSES, {"name": "Sneaky", "timezone": "UTC"}),
        ("GET", f"{BUSINESSES}/{{own}}/keys", None),
        ("POST", f"{BUSINESSES}/{{own}}/keys", {"label": "more power"}),
    ],
)
def test_business_key_on_admin_routes_is_403(
    business: ApiClient, admin: ApiClient, method: str, path: str, body: Any
) -> None:
    # GIVEN a valid business key, even on its own business's admin routes
    target = path.replace("{own}", business.business_id)  # type: ignore[attr-defined]

    # WHEN an admin route is called
    response = business.request(method, target, body=body)

    # THEN 403 FORBIDDEN, and nothing was created
    assert_error(response, 403, "FORBIDDEN")
    assert [item["name"] for item in admin.get(BUSINESSES).body["items"]] == ["Acme"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", ACCOUNTS, None),
        ("POST", ACCOUNTS, {"displayName": "X", "phoneNumber": "+34612300009", "provider": "sandbox"}),
        ("GET", QUEUES, None),
        ("GET", CONTACTS, None),
        ("POST", CONTACTS, {"contacts": [{"phoneNumber": "+34612300009"}]}),
        ("GET", OPT_OUTS, None),
        ("POST", OPT_OUTS, {"phoneNumber": "+34612300009"}),
    ],
)
def test_admin_key_on_business_routes_is_403(admin: ApiClient, method: str, path: str, body: Any) -> None:
    # GIVEN an admin key (it belongs to no business)
    # WHEN a business route is called
    response = admin.request(method, path, body=body)

    # THEN 403 FORBIDDEN
    assert_error(response, 403, "FORBIDDEN")


def test_revoked_key_is_401_while_the_other_key_keeps_working(admin: ApiClient, business: ApiClient) -> None:
    # GIVEN a business with a second key
    business_id = business.business_id  # type: ignore[attr-defined]
    issued = admin.post(f"{BUSINESSES}/{business_id}/keys", {"label": "ci"})
    assert issued.status == 201
    second = business.as_key(issued.body["apiKey"])
    assert second.get(ACCOUNTS).status == 200

    # WHEN the second key is revoked
    revoked = admin.delete(f"{BUSINESSES}/{business_id}/keys/{issued.body['keyId']}")

    # THEN it is refused with 401, the first key still works, and the key list no longer shows it
    assert revoked.status == 204
    assert_error(second.get(ACCOUNTS), 401, "UNAUTHENTICATED")
    assert business.get(ACCOUNTS).status == 200
    listed = [key["keyId"] for key in admin.get(f"{BUSINESSES}/{business_id}/keys").body["items"]]
    assert issued.body["keyId"] not in listed
    assert len(listed) == 1


def test_api_keys_are_never_listed(admin: ApiClient, business: ApiClient) -> None:
    # GIVEN a business whose key was shown once at creation
    business_id = business.business_id  # type: ignore[attr-defined]

    # WHEN the admin lists its keys and the businesses
    keys = admin.get(f"{BUSINESSES}/{business_id}/keys")
    businesses = admin.get(BUSINESSES)

    # THEN neither answer contains the key, nor its hash field
    assert keys.status == 200
    assert businesses.status == 200
    for text in (str(keys.body), str(businesses.body)):
        assert business.api_key not in text
        assert "hash" not in text.lower()


# Accounts ------------------------------------------------------------------------------------------------------
def test_other_business_cannot_read_update_or_delete_an_account_by_its_real_id(
    business: ApiClient, other_business: ApiClient, a_account: dict[str, Any]
) -> None:
    # GIVEN business A's account and its real id
    path = f"{ACCOUNTS}/{a_account['id']}"
    missing = f"{ACCOUNTS}/acc_0000000000000000000000000000"

    # WHEN business B reads, updates and deletes it
    # THEN each answer is exactly the answer for an id that does not exist
    _same_as_missing(other_business.get(path), other_business.get(missing))
    _same_as_missing(
        other_business.put(path, {"displayName": "Hijacked"}), other_business.put(missing, {"displayName": "Hijacked"})
    )
    _same_as_missing(other_business.delete(path), other_business.delete(missing))

    # AND A's account is untouched and still listed for A only
    assert business.get(path).body == a_account
    assert other_business.get(ACCOUNTS).body["items"] == []
    assert [item["id"] for item in business.get(ACCOUNTS).body["items"]] == [a_account["id"]]


def test_other_business_cannot_make_a_foreign_account_primary(
    business: ApiClient, other_business: ApiClient, a_account: dict[str, Any]
) -> None:
    # GIVEN B has its own primary account and A's account id is known
    own = create_account(other_business, phone(2))

    # WHEN B tries to make A's account its primary
    response = other_business.put(f"{ACCOUNTS}/{a_account['id']}", {"isPrimary": True})

    # THEN 404, and B's primary is unchanged
    assert_error(response, 404, "NOT_FOUND")
    assert other_business.get(f"{ACCOUNTS}/{own['id']}").body["isPrimary"] is True


def test_same_phone_number_cannot_be_registered_by_two_businesses(
    business: ApiClient, other_business: ApiClient
) -> None:
    # GIVEN business A registered a number
    create_account(business, "+14155552671")

    # WHEN business B registers the same number written differently
    response = other_business.post(
        ACCOUNTS, {"displayName": "Copy", "phoneNumber": "+1 (415) 555-2671", "provider": "sandbox"}
    )

    # THEN 409 naming phoneNumber, and B has no account
    assert_error(response, 409, "CONFLICT", "phoneNumber")
    assert other_business.get(ACCOUNTS).body["items"] == []


def test_a_number_is_free_again_once_its_account_is_deleted(business: ApiClient, other_business: ApiClient) -> None:
    # GIVEN business A registered a number and deleted the account
    account = create_account(business, phone(3))
    assert business.delete(f"{ACCOUNTS}/{account['id']}").status == 204

    # WHEN business B registers that number
    response = other_business.post(ACCOUNTS, {"displayName": "B", "phoneNumber": phone(3), "provider": "sandbox"})

    # THEN it succeeds
    assert response.status == 201, response.body
    assert response.body["phoneNumber"] == phone(3)


def test_changing_to_a_number_of_another_business_is_409_and_keeps_the_old_number(
    business: ApiClient, other_business: ApiClient
) -> None:
    # GIVEN A and B each have an account
    mine = create_account(business, phone(4))
    create_account(other_business, phone(5))

    # WHEN A changes its account to B's number
    response = business.put(f"{ACCOUNTS}/{mine['id']}", {"phoneNumber": phone(5)})

    # THEN 409 phoneNumber, A keeps its number, and that number is still claimed (B cannot take it)
    assert_error(response, 409, "CONFLICT", "phoneNumber")
    assert business.get(f"{ACCOUNTS}/{mine['id']}").body["phoneNumber"] == phone(4)
    taken = other_business.post(ACCOUNTS, {"displayName": "B2", "phoneNumber": phone(4), "provider": "sandbox"})
    assert_error(taken, 409, "CONFLICT", "phoneNumber")


def test_changing_number_releases_the_old_one(business: ApiClient, other_business: ApiClient) -> None:
    # GIVEN A's account moved from one number to another
    mine = create_account(business, phone(6))
    moved = business.put(f"{ACCOUNTS}/{mine['id']}", {"phoneNumber": "0034 612 300 007"})
    assert moved.status == 200, moved.body
    assert moved.body["phoneNumber"] == phone(7)

    # WHEN B registers the old number
    response = other_business.post(ACCOUNTS, {"displayName": "B", "phoneNumber": phone(6), "provider": "sandbox"})

    # THEN it is free
    assert response.status == 201, response.body


# Queues --------------------------------------------------------------------------------------------------------
def test_other_business_cannot_read_update_or_delete_a_queue_by_its_real_id(
    business: ApiClient, other_business: ApiClient, a_queue: dict[str, Any]
) -> None:
    # GIVEN business A's queue and B with an account of its own
    create_account(other_business, phone(8))
    path = f"{QUEUES}/{a_queue['id']}"
    missing = f"{QUEUES}/q_0000000000000000000000000000"

    # WHEN B reads, updates and deletes it
    # THEN each answer is exactly the answer for a missing id
    _same_as_missing(other_business.get(path), other_business.get(missing))
    _same_as_missing(other_business.put(path, {"name": "Mine"}), other_business.put(missing, {"name": "Mine"}))
    _same_as_missing(other_business.delete(path), other_business.delete(missing))

    # AND A's queue is untouched and B lists nothing, even filtering by A's account
    assert business.get(path).body == a_queue
    assert other_business.get(QUEUES).body["items"] == []
    assert other_business.get(QUEUES, accountId=a_queue["accountId"]).body["items"] == []


def test_queue_cannot_use_another_business_account(
    business: ApiClient, other_business: ApiClient, a_account: dict[str, Any]
) -> None:
    # GIVEN B has an account of its own and knows A's account id
    create_account(other_business, phone(9))
    body = {
        "name": "Borrowed sender",
        "accountId": a_account["id"],
        "template": {"name": "promo", "language": "en", "contentSid": "HX" + "ab" * 16},
        "audience": {"contactTags": ["vip"]},
    }

    # WHEN B creates a queue on A's account, and on an id that does not exist
    foreign = other_business.post(QUEUES, body)
    missing = other_business.post(QUEUES, {**body, "accountId": "acc_0000000000000000000000000000"})

    # THEN both are the same 422 accountId answer
    assert_error(foreign, 422, "VALIDATION_ERROR", "accountId")
    assert foreign.body == missing.body


# Contacts and opt-outs -----------------------------------------------------------------------------------------
def test_contacts_are_private_to_their_business(business: ApiClient, other_business: ApiClient) -> None:
    # GIVEN A has a tagged contact
    upsert = business.post(CONTACTS, {"contacts": [{"phoneNumber": phone(10), "name": "Ana", "tags": ["vip"]}]})
    assert upsert.body["created"] == 1

    # WHEN B lists all, lists by the tag, and deletes the number
    everything = other_business.get(CONTACTS)
    tagged = other_business.get(CONTACTS, tag="vip")
    deleted = other_business.delete(f"{CONTACTS}/{phone(10)}")
    missing = other_business.delete(f"{CONTACTS}/{phone(11)}")

    # THEN B sees nothing and the delete is a plain 404; A's contact is intact
    assert everything.body["items"] == []
    assert tagged.body["items"] == []
    _same_as_missing(deleted, missing)
    assert [contact["name"] for contact in business.get(CONTACTS, tag="vip").body["items"]] == ["Ana"]


def test_same_number_as_a_contact_of_two_businesses_is_two_separate_contacts(
    business: ApiClient, other_business: ApiClient
) -> None:
    # GIVEN A has the number as contact "Ana"
    business.post(CONTACTS, {"contacts": [{"phoneNumber": phone(12), "name": "Ana"}]})

    # WHEN B upserts the same number as "Bea"
    response = other_business.post(CONTACTS, {"contacts": [{"phoneNumber": phone(12), "name": "Bea"}]})

    # THEN it is created for B (not an update of A's) and A still sees "Ana"
    assert response.body == {"created": 1, "updated": 0, "rejected": []}
    assert [contact["name"] for contact in business.get(CONTACTS).body["items"]] == ["Ana"]
    assert [contact["name"] for contact in other_business.get(CONTACTS).body["items"]] == ["Bea"]


def test_opt_outs_are_private_to_their_business(business: ApiClient, other_business: ApiClient) -> None:
    # GIVEN A recorded an opt-out
    assert business.post(OPT_OUTS, {"phoneNumber": phone(13), "reason": "STOP"}).status == 201

    # WHEN B lists opt-outs and deletes A's number
    listed = other_business.get(OPT_OUTS)
    deleted = other_business.delete(f"{OPT_OUTS}/{phone(13)}")
    missing = other_business.delete(f"{OPT_OUTS}/{phone(14)}")

    # THEN B sees nothing, the delete is a plain 404, and A's opt-out stays
    assert listed.body["items"] == []
    _same_as_missing(deleted, missing)
    assert [item["phoneNumber"] for item in business.get(OPT_OUTS).body["items"]] == [phone(13)]

    # AND B recording the same number creates B's own opt-out
    assert other_business.post(OPT_OUTS, {"phoneNumber": phone(13)}).status == 201


# Paging tokens -------------------------------------------------------------------------------------------------
def _fill(business: ApiClient) -> None:
    for index in range(3):
        create_account(business, phone(20 + index))
    business.post(CONTACTS, {"contacts": [{"phoneNumber": phone(30 + index)} for index in range(3)]})
    for index in range(3):
        business.post(OPT_OUTS, {"phoneNumber": phone(40 + index)})
        create_queue(business, name=f"Queue {index}")


@pytest.mark.parametrize("path", [ACCOUNTS, QUEUES, CONTACTS, OPT_OUTS])
def test_next_token_of_one_business_is_refused_for_another(
    business: ApiClient, other_business: ApiClient, path: str
) -> None:
    # GIVEN A's first page and its nextToken, and B with data of its own
    _fill(business)
    create_account(other_business, phone(50))
    first = business.get(path, limit=1)
    token = first.body["nextToken"]
    assert token is not None

    # WHEN B lists with A's token
    response = other_business.get(path, limit=1, nextToken=token)

    # THEN 422 naming nextToken, and none of A's data in the answer
    assert_error(response, 422, "VALIDATION_ERROR", "nextToken")
    assert "items" not in response.body
