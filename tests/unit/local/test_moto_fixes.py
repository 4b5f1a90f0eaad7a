"""moto's DynamoDB made safe for concurrent transactions (wabacast_local.moto_fixes), over moto's server."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from wabacast_local.moto_fixes import serialize_dynamodb_requests

TABLE = "fixes"


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    serialize_dynamodb_requests()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    # A thousand items shaped like jobs: what makes whole-table copies slow and their rollback window wide.
    for start in range(0, 1000, 25):
        client.batch_write_item(
            RequestItems={TABLE: [{"PutRequest": {"Item": job(n)}} for n in range(start, start + 25)]}
        )
    yield client
    server.stop()


def job(number: int) -> dict[str, Any]:
    return {
        **key(f"JOB#{number}"),
        "status": {"S": "PENDING"},
        "phone_number": {"S": f"+1415555{number:04d}"},
        "variables": {"M": {"name": {"S": "Ada"}, "code": {"S": str(number)}}},
        "attempts": {"N": "0"},
        "created_at": {"S": "2026-01-01T00:00:00Z"},
    }


def key(pk: str, sk: str = "x") -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def add_one(pk: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": key(pk),
            "UpdateExpression": "ADD c :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


def put_if_status(pk: str, expected: str, new: str) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": TABLE,
            "Item": {**key(pk), "status": {"S": new}},
            "ConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": expected}},
        }
    }


def test_a_cancelled_transaction_undoes_its_own_writes_only(dynamodb):
    # GIVEN a counter and a job
    dynamodb.put_item(TableName=TABLE, Item={**key("counter-a"), "c": {"N": "5"}})
    dynamodb.put_item(TableName=TABLE, Item={**key("job-a"), "status": {"S": "PENDING"}})

    # WHEN a transaction increments the counter, creates an item, and fails its condition on the job
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                add_one("counter-a"),
                {"Put": {"TableName": TABLE, "Item": key("new-a")}},
                put_if_status("job-a", "QUEUED", "SENT"),
            ]
        )

    # THEN it is cancelled with per-item reasons and none of its writes remain
    reasons = [reason["Code"] for reason in raised.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert dynamodb.get_item(TableName=TABLE, Key=key("counter-a"))["Item"]["c"] == {"N": "5"}
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key=key("new-a"))
    assert dynamodb.get_item(TableName=TABLE, Key=key("job-a"))["Item"]["status"] == {"S": "PENDING"}


def test_cancelled_transactions_never_undo_other_threads_writes(dynamodb):
    # GIVEN a counter that several threads increment in transactions, while others keep failing transactions on the
    # same table (unpatched moto restores a whole-table copy on each failure, losing increments made meanwhile)
    dynamodb.put_item(TableName=TABLE, Item={**key("job-b"), "status": {"S": "PENDING"}})
    increments_per_thread, threads = 25, 4
    stop = threading.Event()

    def increment() -> None:
        for _ in range(increments_per_thread):
            dynamodb.transact_write_items(TransactItems=[add_one("counter-b")])

    def fail_repeatedly() -> None:
        while not stop.is_set():
            with contextlib.suppress(ClientError):
                dynamodb.transact_write_items(TransactItems=[put_if_status("job-b", "QUEUED", "SENT")])

    # WHEN they all run at once
    failing = [threading.Thread(target=fail_repeatedly) for _ in range(2)]
    incrementing = [threading.Thread(target=increment) for _ in range(threads)]
    for thread in [*failing, *incrementing]:
        thread.start()
    for thread in incrementing:
        thread.join()
    stop.set()
    for thread in failing:
        thread.join()

    # THEN no increment is lost
    item = dynamodb.get_item(TableName=TABLE, Key=key("counter-b"))["Item"]
    assert item["c"] == {"N": str(increments_per_thread * threads)}


def test_transaction_cost_does_not_grow_with_the_table(dynamodb):
    # GIVEN a table with a thousand jobs (the module's fixture)
    def average_s(write: Any) -> float:
        started = time.perf_counter()
        for _ in range(20):
            write()
        return (time.perf_counter() - started) / 20

    # WHEN single-item transactions and plain updates of one item run
    transaction_s = average_s(lambda: dynamodb.transact_write_items(TransactItems=[add_one("counter-c")]))
    update_s = average_s(
        lambda: dynamodb.update_item(
            TableName=TABLE,
            Key=key("counter-c"),
            UpdateExpression="ADD c :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
    )

    # THEN a transaction costs about what the update costs (unpatched, copying the table: about 10 times more)
    assert transaction_s < 3 * update_s
