"""Correlation keys for the logs (business, queue, job, account, key) and the FIFO batch response of the sender."""

from __future__ import annotations

from typing import Any

import pytest

from wabacast.adapters.sqs_records import fifo_batch_failures, job_log_keys
from wabacast.api.guard import request_log_keys
from wabacast.domain.delivery import JobMessage


def _message(business: str, queue: str, job: str) -> JobMessage:
    return JobMessage(business_id=business, queue_id=queue, job_id=job)


def test_a_batch_of_one_queue_is_labelled_with_its_ids_and_every_job() -> None:
    # GIVEN two jobs of one queue
    messages = [_message("biz_1", "q_1", "j_2"), _message("biz_1", "q_1", "j_1")]

    # WHEN the log keys are made
    keys = job_log_keys(messages)

    # THEN the shared ids are plain values, the jobs a sorted list
    assert keys == {"business_id": "biz_1", "queue_id": "q_1", "job_id": ["j_1", "j_2"]}


def test_a_batch_across_queues_lists_them_and_an_empty_batch_has_no_keys() -> None:
    # GIVEN / WHEN jobs of two queues, and no job
    mixed = job_log_keys([_message("biz_1", "q_2", "j_1"), _message("biz_1", "q_1", "j_2")])
    empty = job_log_keys([])

    # THEN the queues are listed; nothing is invented for an empty batch
    assert mixed["queue_id"] == ["q_1", "q_2"]
    assert empty == {}


def test_an_api_request_is_labelled_with_its_caller_and_the_resource_in_its_path() -> None:
    # GIVEN an HTTP API event for a queue action by a business key
    event: dict[str, Any] = {
        "rawPath": "/api/whatsapp/queue/q_123/process",
        "requestContext": {"authorizer": {"lambda": {"businessId": "biz_9", "keyId": "key_7", "role": "business"}}},
    }

    # WHEN the log keys are made
    keys = request_log_keys(event)

    # THEN they name the business, the key and the queue (never the key itself)
    assert keys == {"business_id": "biz_9", "key_id": "key_7", "queue_id": "q_123"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/whatsapp/accounts/acc_1", {"account_id": "acc_1"}),
        ("/api/admin/businesses/biz_2/keys/key_3", {"business_id": "biz_2"}),
        ("/api/whatsapp/queue/" + "q" * 500, {}),
        ("/api/whatsapp/contacts", {}),
    ],
)
def test_only_well_formed_path_ids_become_keys(path: str, expected: dict[str, str]) -> None:
    # GIVEN an unauthenticated event
    # WHEN the log keys are made
    # THEN only ids shaped like ids are kept (a 500-character path segment is not logged as an id)
    assert request_log_keys({"rawPath": path, "requestContext": {}}) == expected


def _record(message_id: str, group: str) -> dict[str, Any]:
    return {"messageId": message_id, "attributes": {"MessageGroupId": group}}


def test_a_failed_record_fails_the_later_records_of_its_group_only() -> None:
    # GIVEN a batch of two groups where the first record of group A must be redelivered
    records = [_record("m1", "A"), _record("m2", "B"), _record("m3", "A"), _record("m4", "B")]

    # WHEN the batch response is made
    failures = fifo_batch_failures(records, {"m1"})

    # THEN m1 and the later m3 of its group are handed back; group B is done
    assert failures == [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]


def test_records_before_a_failure_in_the_same_group_are_kept_done() -> None:
    # GIVEN a group whose second record fails
    records = [_record("m1", "A"), _record("m2", "A"), _record("m3", "A")]

    # WHEN / THEN the first stays done, the failed one and the one after it come back
    assert fifo_batch_failures(records, {"m2"}) == [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]
    assert fifo_batch_failures(records, set()) == []
