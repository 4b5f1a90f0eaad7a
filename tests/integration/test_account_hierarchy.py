"""One primary account per business, at most one default; both move, never duplicate, even under concurrency."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import (
    ApiClient,
    ApiResponse,
    account_body,
    assert_error,
    create_account,
    create_queue,
    new_api_client,
    phone,
)

ACCOUNTS = "/api/whatsapp/accounts"
THREADS = 8


def _flags(client: ApiClient) -> dict[str, tuple[bool, bool]]:
    items = client.get(ACCOUNTS, limit=100).body["items"]
    return {item["id"]: (item["isPrimary"], item["isDefault"]) for item in items}


def _primaries(client: ApiClient) -> list[str]:
    return [account_id for account_id, (primary, _) in _flags(client).items() if primary]


def _defaults(client: ApiClient) -> list[str]:
    return [account_id for account_id, (_, default) in _flags(client).items() if default]


def _business_pointers(admin: ApiClient, business: ApiClient) -> tuple[str | None, str | None]:
    items = admin.get("/api/admin/businesses").body["items"]
    (found,) = [item for item in items if item["id"] == business.business_id]  # type: ignore[attr-defined]
    return found["primaryAccountId"], found["defaultAccountId"]


def test_first_account_becomes_primary_even_when_not_asked(business: ApiClient) -> None:
    # GIVEN a business without accounts
    # WHEN two accounts are created, neither asking to be primary
    first = create_account(business, phone(1), isPrimary=False)
    second = create_account(business, phone(2))

    # THEN the first is primary, the second is not, and neither is default
    assert (first["isPrimary"], first["isDefault"]) == (True, False)
    assert (second["isPrimary"], second["isDefault"]) == (False, False)
    assert _primaries(business) == [first["id"]]


def test_creating_with_is_primary_moves_the_primary(admin: ApiClient, business: ApiClient) -> None:
    # GIVEN a primary account
    old = create_account(business, phone(1))

    # WHEN a new account is created with isPrimary true
    new = create_account(business, phone(2), isPrimary=True)

    # THEN the new one is primary and the old one no longer is, on GET too
    assert new["isPrimary"] is True
    assert business.get(f"{ACCOUNTS}/{old['id']}").body["isPrimary"] is False
    assert _primaries(business) == [new["id"]]
    assert _business_pointers(admin, business) == (new["id"], None)


def test_is_default_moves_and_there_is_at_most_one_default(admin: ApiClient, business: ApiClient) -> None:
    # GIVEN a primary account and a default one
    primary = create_account(business, phone(1))
    first_default = create_account(business, phone(2), isDefault=True)
    assert _defaults(business) == [first_default["id"]]

    # WHEN a third is created as default, and then the primary is made default by PUT
    third = create_account(business, phone(3), isDefault=True)
    after_create = _defaults(business)
    updated = business.put(f"{ACCOUNTS}/{primary['id']}", {"isDefault": True})

    # THEN each time exactly the latest holds the default
    assert after_create == [third["id"]]
    assert updated.status == 200
    assert updated.body["isDefault"] is True
    assert _defaults(business) == [primary["id"]]
    assert _flags(business)[primary["id"]] == (True, True)
    assert _business_pointers(admin, business) == (primary["id"], primary["id"])


def test_default_can_be_unset_leaving_no_default(business: ApiClient) -> None:
    # GIVEN a default account
    create_account(business, phone(1))
    default = create_account(business, phone(2), isDefault=True)

    # WHEN its isDefault is set to false
    response = business.put(f"{ACCOUNTS}/{default['id']}", {"isDefault": False})

    # THEN the business has no default (unlike the primary, the default is optional)
    assert response.status == 200
    assert response.body["isDefault"] is False
    assert _defaults(business) == []


def test_primary_cannot_be_unset(business: ApiClient) -> None:
    # GIVEN the primary account
    primary = create_account(business, phone(1))
    create_account(business, phone(2))

    # WHEN isPrimary false is sent for it
    response = business.put(f"{ACCOUNTS}/{primary['id']}", {"isPrimary": False})

    # THEN 409 naming isPrimary, and it stays primary
    assert_error(response, 409, "CONFLICT", "isPrimary")
    assert _primaries(business) == [primary["id"]]


def test_is_primary_false_on_a_secondary_account_changes_nothing(business: ApiClient) -> None:
    # GIVEN a primary and a secondary account
    primary = create_account(business, phone(1))
    secondary = create_account(business, phone(2))

    # WHEN the secondary is sent isPrimary false
    response = business.put(f"{ACCOUNTS}/{secondary['id']}", {"isPrimary": False})

    # THEN it succeeds and the primary is where it was
    assert response.status == 200
    assert _primaries(business) == [primary["id"]]


def test_put_is_primary_true_moves_the_primary(business: ApiClient) -> None:
    # GIVEN a primary and a secondary account
    old = create_account(business, phone(1))
    new = create_account(business, phone(2))

    # WHEN the secondary is made primary
    response = business.put(f"{ACCOUNTS}/{new['id']}", {"isPrimary": True})

    # THEN it is the only primary
    assert response.status == 200
    assert response.body["isPrimary"] is True
    assert _flags(business) == {old["id"]: (False, False), new["id"]: (True, False)}


def test_queue_without_account_uses_default_else_primary(business: ApiClient) -> None:
    # GIVEN a primary account and, later, a default one
    primary = create_account(business, phone(1))
    before_default = create_queue(business)
    default = create_account(business, phone(2), isDefault=True)

    # WHEN a queue is created without accountId, and again after the default is deleted
    with_default = create_queue(business)
    assert business.delete(f"{ACCOUNTS}/{default['id']}").status == 204
    after_delete = create_queue(business)

    # THEN it goes to the primary, then the default, then the primary again
    assert before_default["accountId"] == primary["id"]
    assert with_default["accountId"] == default["id"]
    assert after_delete["accountId"] == primary["id"]
    assert _defaults(business) == []


def test_deleting_the_last_account_leaves_no_primary_and_the_next_one_becomes_primary(
    admin: ApiClient, business: ApiClient
) -> None:
    # GIVEN a single (primary and default) account that is then deleted
    only = create_account(business, phone(1), isDefault=True)
    assert business.delete(f"{ACCOUNTS}/{only['id']}").status == 204
    assert _business_pointers(admin, business) == (None, None)

    # WHEN a new account is created
    again = create_account(business, phone(2))

    # THEN it is the primary
    assert again["isPrimary"] is True
    assert _business_pointers(admin, business) == (again["id"], None)


# Concurrency ---------------------------------------------------------------------------------------------------
def _in_parallel(calls: list[Callable[[], ApiResponse]]) -> list[ApiResponse]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def _clients(api_key: str, count: int) -> list[ApiClient]:
    """One client per thread, each over its own handler modules (own resolver, own cached services), warmed up
    here so the boto3 clients are made before the threads start (client creation is not thread-safe)."""
    clients = [new_api_client(api_key) for _ in range(count)]
    for client in clients:
        assert client.get(ACCOUNTS).status == 200
    return clients


@pytest.mark.usefixtures("concurrent_sandboxes")
def test_concurrent_make_primary_leaves_exactly_one_primary(business: ApiClient) -> None:
    # GIVEN eight accounts, one per thread, each thread with its own Lambda-like client
    accounts = [create_account(business, phone(index)) for index in range(THREADS)]
    clients = _clients(business.api_key, THREADS)  # type: ignore[arg-type]

    # WHEN all eight are made primary at the same time
    responses = _in_parallel(
        [
            lambda client=client, account=account: client.put(f"{ACCOUNTS}/{account['id']}", {"isPrimary": True})
            for client, account in zip(clients, accounts, strict=True)
        ]
    )

    # THEN each request either succeeded or was told to retry, at least one succeeded,
    # and exactly one account is primary: one that a successful request made primary
    outcomes = [(response.status, response.body.get("error", {}).get("code")) for response in responses]
    assert set(outcomes) <= {(200, None), (409, "CONCURRENT_MODIFICATION")}, outcomes
    winners = {account["id"] for account, response in zip(accounts, responses, strict=True) if response.status == 200}
    assert winners
    primaries = _primaries(business)
    assert len(primaries) == 1
    assert primaries[0] in winners
    assert len(_flags(business)) == THREADS


@pytest.mark.usefixtures("concurrent_sandboxes")
def test_concurrent_first_accounts_leave_exactly_one_primary(business: ApiClient) -> None:
    # GIVEN a business without accounts and six threads with their own clients
    count = 6
    clients = _clients(business.api_key, count)  # type: ignore[arg-type]

    # WHEN each thread creates an account at the same time
    responses = _in_parallel(
        [
            lambda client=client, index=index: client.post(ACCOUNTS, account_body(phone(100 + index)))
            for index, client in enumerate(clients)
        ]
    )

    # THEN all are created and exactly one of them is primary, consistently in the answers and the listing
    assert [response.status for response in responses] == [201] * count, [response.body for response in responses]
    flags = _flags(business)
    assert len(flags) == count
    primaries = [account_id for account_id, (primary, _) in flags.items() if primary]
    assert len(primaries) == 1
    said_primary = [response.body["id"] for response in responses if response.body["isPrimary"]]
    assert said_primary == primaries


@pytest.mark.usefixtures("concurrent_sandboxes")
def test_concurrent_make_default_leaves_at_most_one_default(business: ApiClient) -> None:
    # GIVEN six accounts and six threads
    accounts = [create_account(business, phone(200 + index)) for index in range(6)]
    clients = _clients(business.api_key, 6)  # type: ignore[arg-type]

    # WHEN all are made default at once
    responses = _in_parallel(
        [
            lambda client=client, account=account: client.put(f"{ACCOUNTS}/{account['id']}", {"isDefault": True})
            for client, account in zip(clients, accounts, strict=True)
        ]
    )

    # THEN exactly one default, set by a request that succeeded
    winners = {account["id"] for account, response in zip(accounts, responses, strict=True) if response.status == 200}
    defaults = _defaults(business)
    assert len(defaults) == 1
    assert defaults[0] in winners
