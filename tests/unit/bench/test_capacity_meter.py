"""bench/capacity.py: the request units DynamoDB would bill, computed for requests served by moto in this process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from capacity import CapacityMeter, item_size
from moto import mock_aws

from wabacast.storage.table import create_table_request

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE = "capacity"
# A table of our own with narrower projections: OwnerIndex keeps only keys, NoteIndex also the attribute "note".
NARROW = "narrow"


def narrow_table_request() -> dict[str, Any]:
    return {
        "TableName": NARROW,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"} for name in ("PK", "SK", "owner", "kind", "created")
        ],
        "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "OwnerIndex",
                "KeySchema": [
                    {"AttributeName": "owner", "KeyType": "HASH"},
                    {"AttributeName": "created", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "NoteIndex",
                "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]},
            },
        ],
    }


def padded(pk: str, sk: str, size: int, **attributes: Any) -> dict[str, Any]:
    """An item of exactly `size` bytes by DynamoDB's rules: the keys, `attributes` and a padding string."""
    item = {"PK": {"S": pk}, "SK": {"S": sk}, **attributes}
    padding = size - item_size(item) - len("pad")
    assert padding >= 0, "the item is already larger than asked"
    return {**item, "pad": {"S": "x" * padding}}


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


@pytest.fixture
def meter() -> Iterator[CapacityMeter]:
    meter = CapacityMeter(label_header="x-bench-caller", ignore_labels={"poll"}).install()
    try:
        yield meter
    finally:
        meter.uninstall()


@pytest.fixture
def dynamodb(meter: CapacityMeter) -> Iterator[DynamoDBClient]:
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        client.create_table(**create_table_request(TABLE))
        client.create_table(**narrow_table_request())
        meter.reset()
        yield client


def test_item_size_follows_the_documented_rules() -> None:
    # GIVEN one attribute of each kind, named with one letter
    # WHEN they are sized THEN names count in UTF-8 bytes and values by type
    assert item_size({"s": {"S": "héllo"}}) == 1 + 6
    assert item_size({"n": {"N": "-0012300"}}) == 1 + 3  # significant digits "123": 2 bytes, plus 1
    assert item_size({"n": {"N": "12345.678"}}) == 1 + 5  # 8 digits: 4 bytes, plus 1
    assert item_size({"b": {"B": b"\x00\x01\x02"}}) == 1 + 3
    assert item_size({"t": {"BOOL": True}, "z": {"NULL": True}}) == 2 + 2
    assert item_size({"m": {"M": {"x": {"S": "ab"}}}}) == 1 + 3 + (1 + 2 + 1)
    assert item_size({"l": {"L": [{"S": "ab"}, {"BOOL": False}]}}) == 1 + 3 + (2 + 1) + (1 + 1)
    assert item_size({"s": {"SS": ["ab", "c"]}, "n": {"NS": ["10", "2"]}}) == (1 + 3) + (1 + 2 + 2)
    assert item_size({"m": {"M": {}}}) == 1 + 3


def test_a_put_of_a_1_5_kb_item_costs_2_wru(dynamodb: DynamoDBClient, meter: CapacityMeter) -> None:
    # GIVEN an item of 1.5 KB with no index key
    item = padded("Q#1", "JOB#1", 1536)
    # WHEN it is put
    dynamodb.put_item(TableName=TABLE, Item=item)
    # THEN it costs 2 write units on the table and nothing on the indexes
    report = meter.snapshot()
    assert (report.wru_table, report.wru_index, report.rru, report.requests) == (2, 0, 0, 1)
    assert report.by_operation["PutItem"].wru == 2


def test_an_update_of_a_3_kb_item_changing_one_small_attribute_costs_3_wru(
    dynamodb: DynamoDBClient, meter: CapacityMeter
) -> None:
    # GIVEN a stored item of about 3 KB
    dynamodb.put_item(TableName=TABLE, Item=padded("Q#1", "JOB#1", 3000, status={"S": "QUEUED"}))
    meter.reset()
    # WHEN one small attribute changes
    dynamodb.update_item(
        TableName=TABLE,
        Key=key("Q#1", "JOB#1"),
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "SENT"}},
    )
    # THEN the whole item is billed (3 units), and moto's own read of the item before updating it is not
    report = meter.snapshot()
    assert (report.wru, report.rru, report.requests) == (3, 0, 1)


def test_a_transaction_of_two_small_items_costs_4_wru(dynamodb: DynamoDBClient, meter: CapacityMeter) -> None:
    # GIVEN two small items
    items = [padded("Q#1", "JOB#1", 200), padded("Q#1", "JOB#2", 300)]
    # WHEN both are put in one transaction
    dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": TABLE, "Item": item}} for item in items])
    # THEN each costs twice one write unit
    report = meter.snapshot()
    assert (report.wru, report.requests) == (4, 1)
    assert report.by_operation["TransactWriteItems"].wru_table == 4


def test_a_cancelled_transaction_is_still_charged(dynamodb: DynamoDBClient, meter: CapacityMeter) -> None:
    # GIVEN the local stack's fix for moto's transactions, and an existing 1.5 KB item
    from wabacast_local.moto_fixes import serialize_dynamodb_requests

    serialize_dynamodb_requests()
    dynamodb.put_item(TableName=TABLE, Item=padded("Q#1", "JOB#1", 1536, status={"S": "QUEUED"}))
    meter.reset()
    # WHEN a transaction updating it and putting a new item fails its condition
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key("Q#1", "JOB#1"),
                        "UpdateExpression": "SET #s = :new",
                        "ConditionExpression": "#s = :expected",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":new": {"S": "SENT"}, ":expected": {"S": "SENDING"}},
                    }
                },
                {"Put": {"TableName": TABLE, "Item": padded("Q#1", "JOB#2", 100)}},
            ]
        )
    # THEN it is charged on the items as they were (2 x 2 units, 2 x 1 unit) and nothing was written
    assert meter.snapshot().wru == 6
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key=key("Q#1", "JOB#2"))


def test_a_failed_conditional_write_on_a_missing_item_costs_1_wru(
    dynamodb: DynamoDBClient, meter: CapacityMeter
) -> None:
    # GIVEN no item
    # WHEN an update conditioned on its existence fails
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        dynamodb.update_item(
            TableName=TABLE,
            Key=key("Q#1", "JOB#404"),
            UpdateExpression="SET #s = :s",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "SENT"}},
        )
    # THEN it still costs the minimum write unit
    assert meter.snapshot().wru == 1


def test_an_update_changing_a_gsi_key_costs_two_index_writes(dynamodb: DynamoDBClient, meter: CapacityMeter) -> None:
    # GIVEN an item in GSI1 (keys and phone_number projected) and not in GSI2
    item = padded("BIZ#1", "QUEUE#1", 500, GSI1PK={"S": "BIZ#1#RUNNING"}, GSI1SK={"S": "2026-11-29"})
    dynamodb.put_item(TableName=TABLE, Item=item)
    meter.reset()
    # WHEN its GSI1 sort key changes
    dynamodb.update_item(
        TableName=TABLE,
        Key=key("BIZ#1", "QUEUE#1"),
        UpdateExpression="SET GSI1SK = :sk",
        ExpressionAttributeValues={":sk": {"S": "2026-11-30"}},
    )
    # THEN GSI1 gets two writes (delete the old entry, put the new one) and GSI2 none
    report = meter.snapshot()
    assert report.index_writes == {"GSI1": 2}
    assert (report.wru_table, report.wru_index, report.wru_by_index["GSI1"]) == (1, 2, 2)


def test_a_change_of_a_projected_attribute_costs_one_index_write(
    dynamodb: DynamoDBClient, meter: CapacityMeter
) -> None:
    # GIVEN an item in GSI1 (which projects phone_number besides its keys)
    item = padded("BIZ#1", "QUEUE#1", 500, GSI1PK={"S": "BIZ#1#RUNNING"}, GSI1SK={"S": "x"}, phone_number={"S": "+1"})
    dynamodb.put_item(TableName=TABLE, Item=item)
    meter.reset()
    # WHEN the projected attribute changes
    dynamodb.update_item(
        TableName=TABLE,
        Key=key("BIZ#1", "QUEUE#1"),
        UpdateExpression="SET phone_number = :new",
        ExpressionAttributeValues={":new": {"S": "+2"}},
    )
    # THEN the index entry is rewritten once
    assert meter.snapshot().index_writes == {"GSI1": 1}


def test_a_change_of_an_attribute_the_index_does_not_project_costs_no_index_write(
    dynamodb: DynamoDBClient, meter: CapacityMeter
) -> None:
    # GIVEN an item in GSI1, which does not project `sent`
    item = padded("BIZ#1", "QUEUE#1", 500, GSI1PK={"S": "BIZ#1#RUNNING"}, GSI1SK={"S": "x"}, sent={"N": "1"})
    dynamodb.put_item(TableName=TABLE, Item=item)
    meter.reset()
    # WHEN that attribute changes
    dynamodb.update_item(
        TableName=TABLE,
        Key=key("BIZ#1", "QUEUE#1"),
        UpdateExpression="ADD sent :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    # THEN only the table item is written
    assert meter.snapshot().index_writes == {}


def test_under_keys_only_a_non_projected_attribute_costs_no_index_write(
    dynamodb: DynamoDBClient, meter: CapacityMeter
) -> None:
    # GIVEN an item in both narrow indexes: OwnerIndex (KEYS_ONLY) and NoteIndex (INCLUDE note)
    item = padded("A#1", "B#1", 400, owner={"S": "ana"}, created={"S": "1"}, kind={"S": "k"}, note={"S": "n"})
    dynamodb.put_item(TableName=NARROW, Item=item)
    assert meter.snapshot().index_writes == {"OwnerIndex": 1, "NoteIndex": 1}
    meter.reset()
    # WHEN an attribute neither index projects changes
    dynamodb.update_item(
        TableName=NARROW,
        Key=key("A#1", "B#1"),
        UpdateExpression="SET extra = :v",
        ExpressionAttributeValues={":v": {"S": "v"}},
    )
    # THEN no index is written
    assert (meter.snapshot().index_writes, meter.snapshot().wru_index) == ({}, 0)
    # AND WHEN the included attribute changes THEN only the INCLUDE index is written
    dynamodb.update_item(
        TableName=NARROW,
        Key=key("A#1", "B#1"),
        UpdateExpression="SET note = :v",
        ExpressionAttributeValues={":v": {"S": "changed"}},
    )
    assert meter.snapshot().index_writes == {"NoteIndex": 1}


def test_an_item_leaving_an_index_costs_one_index_write(dynamodb: DynamoDBClient, meter: CapacityMeter) -> None:
    # GIVEN an item in OwnerIndex
    dynamodb.put_item(TableName=NARROW, Item=padded("A#1", "B#1", 100, owner={"S": "ana"}, created={"S": "1"}))
    meter.reset()
    # WHEN it loses an index key
    dynamodb.update_item(TableName=NARROW, Key=key("A#1", "B#1"), UpdateExpression="REMOVE created")
    # THEN its entry is deleted: one index write
    assert meter.snapshot().index_writes == {"OwnerIndex": 1}


def test_a_get_of_a_5_kb_item_costs_2_rru_consistent_and_1_eventual(
    dynamodb: DynamoDBClient, meter: CapacityMeter
) -> None:
    # GIVEN a 5 KB item
    dynamodb.put_item(TableName=TABLE, Item=padded("Q#1", "JOB#1", 5 * 1024))
    meter.reset()
    # WHEN it is read with a strongly consistent GetItem THEN it costs 2 read units
    dynamodb.get_item(TableName=TABLE, Key=key("Q#1", "JOB#1"), ConsistentRead=True)
    assert meter.snapshot().rru == 2
    # WHEN it is read eventually consistent THEN it costs half that
    meter.reset()
    dynamodb.get_item(TableName=TABLE, Key=key("Q#1", "JOB#1"))
    assert meter.snapshot().rru == 1
    # WHEN only one attribute is projected THEN the whole item is still billed
    meter.reset()
    dynamodb.get_item(TableName=TABLE, Key=key("Q#1", "JOB#1"), ProjectionExpression="SK")
    assert meter.snapshot().rru == 1
    # WHEN a missing item is read THEN it costs the minimum
    meter.reset()
    dynamodb.get_item(TableName=TABLE, Key=key("Q#1", "JOB#404"), ConsistentRead=True)
    assert meter.snapshot().rru == 1


def test_a_batch_get_rounds_each_item_on_its_own(dynamodb: DynamoDBClient, meter: CapacityMeter) -> None:
    # GIVEN items of 1.5 KB and 6.5 KB (the AWS guide's example: billed as 4 KB + 8 KB)
    dynamodb.put_item(TableName=TABLE, Item=padded("Q#1", "JOB#1", 1536))
    dynamodb.put_item(TableName=TABLE, Item=padded("Q#1", "JOB#2", 6656))
    meter.reset()
    # WHEN both are read in one strongly consistent BatchGetItem
    dynamodb.batch_get_item(
        RequestItems={TABLE: {"Keys": [key("Q#1", "JOB#1"), key("Q#1", "JOB#2")], "ConsistentRead": True}}
    )
    # THEN it costs 1 + 2 read units, in one request
    report = meter.snapshot()
    assert (report.rru, report.requests, report.by_operation["BatchGetItem"].rru) == (3, 1, 3)


def test_a_query_reading_ten_1_kb_items_costs_3_rru_consistent(dynamodb: DynamoDBClient, meter: CapacityMeter) -> None:
    # GIVEN ten items of 1,000 bytes in one partition
    for number in range(10):
        dynamodb.put_item(TableName=TABLE, Item=padded("Q#1", f"JOB#{number}", 1000, status={"S": "SENT"}))
    meter.reset()
    query: dict[str, Any] = {
        "TableName": TABLE,
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "Q#1"}},
        "ConsistentRead": True,
    }
    # WHEN the partition is queried strongly consistent
    dynamodb.query(**query)
    # THEN the 10,000 bytes read are rounded up to 12 KB once: 3 read units
    assert meter.snapshot().rru == 3
    # WHEN a filter keeps none of them THEN the items read are billed all the same
    meter.reset()
    dynamodb.query(
        **{**query, "ExpressionAttributeValues": {":pk": {"S": "Q#1"}, ":s": {"S": "FAILED"}}},
        FilterExpression="#s = :s",
        ExpressionAttributeNames={"#s": "status"},
    )
    assert meter.snapshot().rru == 3
    # WHEN it is eventually consistent and stops at Limit THEN only the items read count, halved
    meter.reset()
    dynamodb.query(**{**query, "ConsistentRead": False, "Limit": 4})
    assert meter.snapshot().rru == 0.5


def test_an_index_query_reads_the_projected_entries(dynamodb: DynamoDBClient, meter: CapacityMeter) -> None:
    # GIVEN five 3 KB items in a KEYS_ONLY index (entries of a few dozen bytes)
    for number in range(5):
        item = padded("A#1", f"B#{number}", 3072, owner={"S": "ana"}, created={"S": str(number)})
        dynamodb.put_item(TableName=NARROW, Item=item)
    meter.reset()
    # WHEN the index is queried
    dynamodb.query(
        TableName=NARROW,
        IndexName="OwnerIndex",
        KeyConditionExpression="#o = :o",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={":o": {"S": "ana"}},
    )
    # THEN the entries (not the 15 KB of items) are billed, to the index
    report = meter.snapshot()
    assert (report.rru_table, report.rru_by_index) == (0, {"OwnerIndex": 0.5})


def test_the_hottest_item_is_the_one_written_most(dynamodb: DynamoDBClient, meter: CapacityMeter) -> None:
    # GIVEN a counter item updated five times, and two jobs written once each
    for _ in range(5):
        dynamodb.update_item(
            TableName=TABLE,
            Key=key("BIZ#1", "QUEUE#1"),
            UpdateExpression="ADD sent :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
    dynamodb.put_item(TableName=TABLE, Item=padded("Q#1", "JOB#1", 2000))
    dynamodb.put_item(TableName=TABLE, Item=padded("Q#1", "JOB#2", 2000))
    # WHEN the hottest items are asked for
    hottest = meter.hottest_items(2)
    # THEN the counter comes first, with its writes and their total units
    (first_key, first_writes, first_wru), second = hottest
    assert (first_key.table, first_key.pk, first_key.sk, first_writes, first_wru) == (TABLE, "BIZ#1", "QUEUE#1", 5, 5)
    assert (second.writes, second.total_wru, second.wru_per_write) == (1, 2, 2)


def test_partitions_add_up_the_writes_of_their_items(dynamodb: DynamoDBClient, meter: CapacityMeter) -> None:
    # GIVEN three 2 KB jobs in one partition and a counter updated four times in another
    for number in range(3):
        dynamodb.put_item(TableName=TABLE, Item=padded("Q#1", f"JOB#{number}", 2000))
    for _ in range(4):
        dynamodb.update_item(
            TableName=TABLE,
            Key=key("BIZ#1", "QUEUE#1"),
            UpdateExpression="ADD sent :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
    # WHEN the hottest partitions are asked for
    first, second = meter.snapshot().hottest_partitions(2)
    # THEN the jobs' partition leads on write units (3 x 2) although its items were written less often
    assert (first.key.pk, first.key.sk, first.writes, first.total_wru) == ("Q#1", None, 3, 6)
    assert (second.key.pk, second.writes, second.total_wru) == ("BIZ#1", 4, 4)


def test_requests_are_totalled_per_label_and_ignored_labels_are_left_out(
    dynamodb: DynamoDBClient, meter: CapacityMeter
) -> None:
    # GIVEN a client whose requests carry the label header, switched between two callers
    caller = {"name": "sender"}

    def add_label(request: Any, **_: Any) -> None:
        request.headers["x-bench-caller"] = caller["name"]

    dynamodb.meta.events.register("before-sign.dynamodb.*", add_label)
    # WHEN the sender puts an item and the poller reads it
    dynamodb.put_item(TableName=TABLE, Item=padded("Q#1", "JOB#1", 100))
    caller["name"] = "poll"
    dynamodb.get_item(TableName=TABLE, Key=key("Q#1", "JOB#1"))
    # THEN the sender's write is counted under its label and the poll is only tallied as ignored
    report = meter.snapshot()
    assert (report.by_label["sender"].wru, report.rru, report.ignored_requests) == (1, 0, {"poll": 1})


def test_uninstall_puts_moto_back(meter: CapacityMeter) -> None:
    # GIVEN an installed meter
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    assert hasattr(DynamoDBBackend.put_item, "__wrapped__")
    # WHEN it is uninstalled
    meter.uninstall()
    # THEN moto's methods are its own again
    assert not hasattr(DynamoDBBackend.put_item, "__wrapped__")
    assert not hasattr(DynamoHandler.batch_get_item, "__wrapped__")
    assert not meter.installed
