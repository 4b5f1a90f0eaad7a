"""Listings: limit and nextToken walk every item exactly once; filters; refused tokens and limits."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.integration.conftest import (
    ApiClient,
    all_pages,
    assert_error,
    create_account,
    create_queue,
    new_business,
    phone,
    set_queue_status,
)
from wabacast.domain.models import QueueStatus
from wabacast.settings import Settings

ACCOUNTS = "/api/whatsapp/accounts"
QUEUES = "/api/whatsapp/queue"
CONTACTS = "/api/whatsapp/contacts"
OPT_OUTS = "/api/whatsapp/opt-outs"
COUNT = 7
LIMIT = 3


def _walk(client: ApiClient, path: str, key: str, limit: int = LIMIT, **query: Any) -> list[Any]:
    pages = all_pages(client, path, limit, **query)
    assert all(len(page) <= limit for page in pages), [len(page) for page in pages]
    return [item[key] for page in pages for item in page]


def _token(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_accounts_are_paged_exactly_once_in_creation_order(business: ApiClient) -> None:
    # GIVEN seven accounts
    created = [create_account(business, phone(index))["id"] for index in range(COUNT)]

    # WHEN they are listed three at a time following nextToken
    pages = all_pages(business, ACCOUNTS, LIMIT)

    # THEN full pages come first, every account appears once, oldest first, and the last token is null
    assert [len(page) for page in pages][:2] == [3, 3]
    assert [item["id"] for page in pages for item in page] == created


def test_queues_are_paged_exactly_once_in_creation_order_without_recipients(business: ApiClient) -> None:
    # GIVEN seven queues
    create_account(business, phone(1))
    created = [create_queue(business, name=f"Queue {index}")["id"] for index in range(COUNT)]

    # WHEN they are listed three at a time
    pages = all_pages(business, QUEUES, LIMIT)
    items = [item for page in pages for item in page]

    # THEN each appears once, oldest first; listings omit the recipients but count them
    assert [item["id"] for item in items] == created
    assert {item["audience"]["recipients"] is None for item in items} == {True}
    assert {item["audience"]["recipientCount"] for item in items} == {2}


def test_contacts_are_paged_exactly_once_in_a_stable_order(business: ApiClient) -> None:
    # GIVEN seven contacts upserted in two requests, not in number order
    numbers = [phone(index) for index in (5, 1, 6, 3, 0, 4, 2)]
    business.post(CONTACTS, {"contacts": [{"phoneNumber": number} for number in numbers[:4]]})
    business.post(CONTACTS, {"contacts": [{"phoneNumber": number} for number in numbers[4:]]})

    # WHEN they are listed three at a time, and in one page
    paged = _walk(business, CONTACTS, "phoneNumber")
    whole = _walk(business, CONTACTS, "phoneNumber", limit=100)

    # THEN each appears exactly once and paging does not change the order
    assert sorted(paged) == sorted(numbers)
    assert len(paged) == COUNT
    assert paged == whole


def test_contacts_by_tag_are_paged_exactly_once(business: ApiClient) -> None:
    # GIVEN seven contacts, five tagged vip
    rows = [{"phoneNumber": phone(index), "tags": ["vip"] if index % 3 else ["other"]} for index in range(COUNT)]
    business.post(CONTACTS, {"contacts": rows})
    vip = sorted(row["phoneNumber"] for row in rows if row["tags"] == ["vip"])
    assert len(vip) == 4

    # WHEN the vip contacts are listed two at a time
    paged = _walk(business, CONTACTS, "phoneNumber", limit=2, tag="vip")

    # THEN exactly the vip contacts appear, once each
    assert sorted(paged) == vip
    assert len(paged) == len(vip)


def test_opt_outs_are_paged_exactly_once_in_a_stable_order(business: ApiClient) -> None:
    # GIVEN seven opt-outs recorded out of number order
    numbers = [phone(index) for index in (6, 0, 5, 1, 4, 2, 3)]
    for number in numbers:
        assert business.post(OPT_OUTS, {"phoneNumber": number}).status == 201

    # WHEN they are listed three at a time, and in one page
    paged = _walk(business, OPT_OUTS, "phoneNumber")
    whole = _walk(business, OPT_OUTS, "phoneNumber", limit=100)

    # THEN each appears once and paging does not change the order
    assert sorted(paged) == sorted(numbers)
    assert len(paged) == COUNT
    assert paged == whole


def test_businesses_are_paged_exactly_once_for_the_admin(admin: ApiClient) -> None:
    # GIVEN five businesses
    created = [new_business(admin, f"Business {index}").business_id for index in range(5)]  # type: ignore[attr-defined]

    # WHEN the admin lists them two at a time
    paged = _walk(admin, "/api/admin/businesses", "id", limit=2)

    # THEN each appears once, oldest first
    assert paged == created


def test_queues_filtered_by_status_are_paged_in_creation_order(settings: Settings, business: ApiClient) -> None:
    # GIVEN seven queues, four of them SCHEDULED
    create_account(business, phone(1))
    created = [create_queue(business, name=f"Queue {index}")["id"] for index in range(COUNT)]
    scheduled = created[::2]
    for queue_id in scheduled:
        set_queue_status(settings, business.business_id, queue_id, QueueStatus.SCHEDULED)  # type: ignore[attr-defined]

    # WHEN they are listed by status, three at a time
    by_scheduled = _walk(business, QUEUES, "id", status="SCHEDULED")
    by_draft = _walk(business, QUEUES, "id", status="DRAFT")
    by_paused = _walk(business, QUEUES, "id", status="PAUSED")

    # THEN each status lists exactly its queues, oldest first
    assert by_scheduled == scheduled
    assert by_draft == created[1::2]
    assert by_paused == []


def test_queues_filtered_by_account_and_status(settings: Settings, business: ApiClient) -> None:
    # GIVEN two accounts with alternating queues; some of the first account's are PAUSED
    first = create_account(business, phone(1))["id"]
    second = create_account(business, phone(2))["id"]
    on_first, on_second = [], []
    for index in range(COUNT):
        account_id = first if index % 2 == 0 else second
        queue_id = create_queue(business, name=f"Queue {index}", accountId=account_id)["id"]
        (on_first if account_id == first else on_second).append(queue_id)
    paused = on_first[1:3]
    for queue_id in paused:
        set_queue_status(settings, business.business_id, queue_id, QueueStatus.PAUSED)  # type: ignore[attr-defined]

    # WHEN listed by account, and by account and status, two at a time
    by_first = _walk(business, QUEUES, "id", limit=2, accountId=first)
    by_second = _walk(business, QUEUES, "id", limit=2, accountId=second)
    first_paused = _walk(business, QUEUES, "id", limit=2, accountId=first, status="PAUSED")
    first_draft = _walk(business, QUEUES, "id", limit=2, accountId=first, status="DRAFT")
    second_paused = _walk(business, QUEUES, "id", limit=2, accountId=second, status="PAUSED")

    # THEN each filter lists exactly its queues, once each (within one status, oldest first)
    assert sorted(by_first) == sorted(on_first)
    assert len(by_first) == len(on_first)
    assert by_second == on_second
    assert first_paused == paused
    assert first_draft == [queue_id for queue_id in on_first if queue_id not in paused]
    assert second_paused == []


def test_queue_filter_by_unknown_account_is_empty(business: ApiClient) -> None:
    # GIVEN a queue
    create_account(business, phone(1))
    create_queue(business)

    # WHEN listed by an account id that does not exist
    response = business.get(QUEUES, accountId="acc_doesnotexist")

    # THEN an empty page
    assert response.status == 200
    assert response.body == {"items": [], "nextToken": None}


# Tokens across listings -------------------------------------------------------------------------------------
def test_token_of_one_listing_is_refused_by_another_listing_of_the_same_business(
    settings: Settings, business: ApiClient
) -> None:
    # GIVEN tokens from the accounts listing and from the SCHEDULED queues listing
    create_account(business, phone(1))
    create_account(business, phone(2))
    queues = [create_queue(business, name=f"Queue {index}")["id"] for index in range(2)]
    for queue_id in queues:
        set_queue_status(settings, business.business_id, queue_id, QueueStatus.SCHEDULED)  # type: ignore[attr-defined]
    business.post(CONTACTS, {"contacts": [{"phoneNumber": phone(3)}, {"phoneNumber": phone(4)}]})
    accounts_token = business.get(ACCOUNTS, limit=1).body["nextToken"]
    scheduled_token = business.get(QUEUES, limit=1, status="SCHEDULED").body["nextToken"]
    contacts_token = business.get(CONTACTS, limit=1).body["nextToken"]
    assert accounts_token
    assert scheduled_token
    assert contacts_token

    # WHEN each is used on another listing
    answers = [
        business.get(CONTACTS, nextToken=accounts_token),
        business.get(OPT_OUTS, nextToken=accounts_token),
        business.get(QUEUES, nextToken=accounts_token),
        business.get(ACCOUNTS, nextToken=contacts_token),
        business.get(QUEUES, status="DRAFT", nextToken=scheduled_token),
        business.get(QUEUES, nextToken=scheduled_token),
    ]

    # THEN each is refused as a token that listing never returned
    for answer in answers:
        assert_error(answer, 422, "VALIDATION_ERROR", "nextToken")
