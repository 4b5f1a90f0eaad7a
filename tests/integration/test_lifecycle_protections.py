"""What may not be deleted or edited: the primary account, accounts in use by live queues, busy or finished queues.

Queues are put in a status by writing it to storage (with its index keys) the way the lifecycle will.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.integration.conftest import (
    ApiClient,
    assert_error,
    create_account,
    create_queue,
    phone,
    set_queue_status,
)
from wabacast.domain.models import QueueStatus
from wabacast.settings import Settings

ACCOUNTS = "/api/whatsapp/accounts"
QUEUES = "/api/whatsapp/queue"


def _account_ids(client: ApiClient) -> list[str]:
    return [item["id"] for item in client.get(ACCOUNTS).body["items"]]


# Accounts ------------------------------------------------------------------------------------------------------
def test_primary_cannot_be_deleted_while_other_accounts_exist(business: ApiClient) -> None:
    # GIVEN a primary and a secondary account
    primary = create_account(business, phone(1))
    secondary = create_account(business, phone(2))

    # WHEN the primary is deleted
    response = business.delete(f"{ACCOUNTS}/{primary['id']}")

    # THEN 409 naming isPrimary, and both accounts remain
    assert_error(response, 409, "CONFLICT", "isPrimary")
    assert _account_ids(business) == [primary["id"], secondary["id"]]


def test_primary_can_be_deleted_once_another_account_is_primary(business: ApiClient) -> None:
    # GIVEN the primary moved to the second account
    first = create_account(business, phone(1))
    second = create_account(business, phone(2))
    assert business.put(f"{ACCOUNTS}/{second['id']}", {"isPrimary": True}).status == 200

    # WHEN the former primary is deleted
    response = business.delete(f"{ACCOUNTS}/{first['id']}")

    # THEN it is gone
    assert response.status == 204
    assert _account_ids(business) == [second["id"]]


def test_primary_can_be_deleted_when_it_is_the_only_account(business: ApiClient) -> None:
    # GIVEN a single account (the primary)
    only = create_account(business, phone(1))

    # WHEN it is deleted
    response = business.delete(f"{ACCOUNTS}/{only['id']}")

    # THEN 204 with no body, and later reads are 404
    assert response.status == 204
    assert response.body == ""
    assert_error(business.get(f"{ACCOUNTS}/{only['id']}"), 404, "NOT_FOUND")
    assert_error(business.delete(f"{ACCOUNTS}/{only['id']}"), 404, "NOT_FOUND")


@pytest.mark.parametrize("status", [QueueStatus.SCHEDULED, QueueStatus.PROCESSING, QueueStatus.PAUSED])
def test_account_used_by_a_live_queue_cannot_be_deleted(
    settings: Settings, business: ApiClient, status: QueueStatus
) -> None:
    # GIVEN a secondary account used by a queue in a live status
    create_account(business, phone(1))
    sender = create_account(business, phone(2))
    queue = create_queue(business, accountId=sender["id"])
    set_queue_status(settings, business.business_id, queue["id"], status)  # type: ignore[attr-defined]
    assert business.get(f"{QUEUES}/{queue['id']}").body["status"] == status.value

    # WHEN the account is deleted
    response = business.delete(f"{ACCOUNTS}/{sender['id']}")

    # THEN 409 naming accountId, and the account is still there
    assert_error(response, 409, "CONFLICT", "accountId")
    assert business.get(f"{ACCOUNTS}/{sender['id']}").status == 200


@pytest.mark.parametrize(
    "status", [None, QueueStatus.COMPLETED, QueueStatus.CANCELLED, QueueStatus.FAILED], ids=lambda s: s or "DRAFT"
)
def test_account_used_only_by_draft_or_finished_queues_can_be_deleted(
    settings: Settings, business: ApiClient, status: QueueStatus | None
) -> None:
    # GIVEN a secondary account whose only queue is a DRAFT or finished
    create_account(business, phone(1))
    sender = create_account(business, phone(2))
    queue = create_queue(business, accountId=sender["id"])
    if status is not None:
        set_queue_status(settings, business.business_id, queue["id"], status)  # type: ignore[attr-defined]

    # WHEN the account is deleted
    response = business.delete(f"{ACCOUNTS}/{sender['id']}")

    # THEN it is deleted
    assert response.status == 204, response.body
    assert_error(business.get(f"{ACCOUNTS}/{sender['id']}"), 404, "NOT_FOUND")


def test_account_is_deletable_again_once_its_scheduled_queue_is_deleted(
    settings: Settings, business: ApiClient
) -> None:
    # GIVEN an account held by a SCHEDULED queue
    create_account(business, phone(1))
    sender = create_account(business, phone(2))
    queue = create_queue(business, accountId=sender["id"])
    set_queue_status(settings, business.business_id, queue["id"], QueueStatus.SCHEDULED)  # type: ignore[attr-defined]
    assert business.delete(f"{ACCOUNTS}/{sender['id']}").status == 409

    # WHEN the queue is deleted, then the account
    deleted_queue = business.delete(f"{QUEUES}/{queue['id']}")
    deleted_account = business.delete(f"{ACCOUNTS}/{sender['id']}")

    # THEN both succeed
    assert deleted_queue.status == 204
    assert deleted_account.status == 204


def test_queue_on_another_account_does_not_hold_this_one(settings: Settings, business: ApiClient) -> None:
    # GIVEN a PROCESSING queue on the primary account
    create_account(business, phone(1))
    spare = create_account(business, phone(2))
    queue = create_queue(business)
    set_queue_status(settings, business.business_id, queue["id"], QueueStatus.PROCESSING)  # type: ignore[attr-defined]

    # WHEN the spare account is deleted
    response = business.delete(f"{ACCOUNTS}/{spare['id']}")

    # THEN it is deleted
    assert response.status == 204


# Queues --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "status", [QueueStatus.PROCESSING, QueueStatus.COMPLETED, QueueStatus.CANCELLED, QueueStatus.FAILED]
)
def test_busy_or_finished_queue_cannot_be_edited(settings: Settings, business: ApiClient, status: QueueStatus) -> None:
    # GIVEN a queue that is PROCESSING or finished
    create_account(business, phone(1))
    queue = create_queue(business)
    set_queue_status(settings, business.business_id, queue["id"], status)  # type: ignore[attr-defined]
    before = business.get(f"{QUEUES}/{queue['id']}").body

    # WHEN it is edited
    response = business.put(f"{QUEUES}/{queue['id']}", {"name": "Too late", "priority": 9})

    # THEN 409 naming status, and nothing changed
    error = assert_error(response, 409, "CONFLICT", "status")
    assert status.value in error["message"]
    assert business.get(f"{QUEUES}/{queue['id']}").body == before


@pytest.mark.parametrize("status", [QueueStatus.SCHEDULED, QueueStatus.PAUSED])
def test_scheduled_or_paused_queue_can_be_edited_and_keeps_its_status(
    settings: Settings, business: ApiClient, status: QueueStatus
) -> None:
    # GIVEN a SCHEDULED or PAUSED queue
    create_account(business, phone(1))
    queue = create_queue(business)
    set_queue_status(settings, business.business_id, queue["id"], status)  # type: ignore[attr-defined]

    # WHEN it is renamed
    response = business.put(f"{QUEUES}/{queue['id']}", {"name": "Renamed"})

    # THEN the edit applies and the status is untouched
    assert response.status == 200, response.body
    assert response.body["name"] == "Renamed"
    assert response.body["status"] == status.value
    assert business.get(f"{QUEUES}/{queue['id']}").body["status"] == status.value


def test_processing_queue_cannot_be_deleted(settings: Settings, business: ApiClient) -> None:
    # GIVEN a PROCESSING queue
    create_account(business, phone(1))
    queue = create_queue(business)
    set_queue_status(settings, business.business_id, queue["id"], QueueStatus.PROCESSING)  # type: ignore[attr-defined]

    # WHEN it is deleted
    response = business.delete(f"{QUEUES}/{queue['id']}")

    # THEN 409 naming status, and it is still there
    assert_error(response, 409, "CONFLICT", "status")
    assert business.get(f"{QUEUES}/{queue['id']}").status == 200


@pytest.mark.parametrize(
    "status",
    [None, QueueStatus.SCHEDULED, QueueStatus.PAUSED, QueueStatus.COMPLETED, QueueStatus.CANCELLED],
    ids=lambda s: s or "DRAFT",
)
def test_queue_that_is_not_processing_can_be_deleted(
    settings: Settings, business: ApiClient, status: QueueStatus | None
) -> None:
    # GIVEN a queue in any status but PROCESSING
    create_account(business, phone(1))
    queue = create_queue(business)
    if status is not None:
        set_queue_status(settings, business.business_id, queue["id"], status)  # type: ignore[attr-defined]

    # WHEN it is deleted
    response = business.delete(f"{QUEUES}/{queue['id']}")

    # THEN it is gone from reads and listings (including its status filter)
    assert response.status == 204
    assert_error(business.get(f"{QUEUES}/{queue['id']}"), 404, "NOT_FOUND")
    assert business.get(QUEUES).body["items"] == []
    assert business.get(QUEUES, status=(status or QueueStatus.DRAFT).value).body["items"] == []


def test_draft_queue_edit_replaces_sent_fields_and_keeps_the_rest(business: ApiClient) -> None:
    # GIVEN a DRAFT queue with two recipients and priority 5
    create_account(business, phone(1))
    queue = create_queue(business, variables={"1": "{{contact.name}}"})

    # WHEN the priority and audience are replaced
    response = business.put(
        f"{QUEUES}/{queue['id']}", {"priority": 10, "audience": {"contactTags": ["vip", "newsletter"]}}
    )

    # THEN those change (the audience whole), everything else is kept, and updatedAt moves forward
    assert response.status == 200, response.body
    updated = response.body
    assert updated["priority"] == 10
    assert updated["audience"] == {"recipients": [], "contactTags": ["vip", "newsletter"], "recipientCount": 0}
    for kept in ("name", "template", "variables", "schedule", "maxAttempts", "status", "accountId", "createdAt"):
        assert updated[kept] == queue[kept]
    assert datetime.fromisoformat(updated["updatedAt"]) > datetime.fromisoformat(queue["updatedAt"])
    assert business.get(f"{QUEUES}/{queue['id']}").body == updated
