"""What every repository shares: (de)serialization, key shapes, paged queries, transactions, batch writes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from wabacast.adapters.paging import decode_token, encode_token
from wabacast.storage.table import PARTITION_KEY, SORT_KEY

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]
AttributeMap = dict[str, Any]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

BATCH_WRITE_SIZE = 25
BATCH_GET_SIZE = 100


def business_pk(business_id: str) -> str:
    return f"BIZ#{business_id}"


def to_attributes(item: Item) -> AttributeMap:
    """Plain JSON-like dict -> DynamoDB attribute map (floats become Decimals, as DynamoDB requires)."""
    normalized = json.loads(json.dumps(item, default=str), parse_float=Decimal)
    return {key: _serializer.serialize(value) for key, value in normalized.items() if value is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(inner) for inner in value]
    if hasattr(value, "value") and type(value).__name__ == "Binary":
        return bytes(value.value)
    return value


def from_attributes(attributes: AttributeMap) -> Item:
    return {key: _plain(_deserializer.deserialize(value)) for key, value in attributes.items()}


class TransactionCancelledError(Exception):
    """A transaction's condition failed; `reasons` holds one code per item ("None" where it passed)."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__(f"transaction cancelled: {list(reasons)}")
        self.reasons = list(reasons)

    def failed(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"


class TableGateway:
    """Thin wrapper over the low-level client for the operations the repositories share."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def get(self, pk: str, sk: str, *, consistent: bool = True, attributes: Sequence[str] | None = None) -> Item | None:
        """GetItem; `attributes` limits what is read (large attributes cost read capacity)."""
        response = self.client.get_item(
            TableName=self.table_name,
            Key={PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": sk}},
            ConsistentRead=consistent,
            **_projection(attributes),
        )
        found = response.get("Item")
        return from_attributes(found) if found else None

    def query_page(
        self,
        *,
        partition_attribute: str,
        partition_value: str,
        sort_attribute: str,
        sort_prefix: str | None,
        limit: int,
        next_token: str | None,
        index_name: str | None = None,
        descending: bool = False,
    ) -> tuple[list[Item], str | None]:
        """One page of a Query: items whose sort key starts with `sort_prefix`, in sort key order (oldest first),
        or the reverse with `descending`."""
        names = {"#pk": partition_attribute}
        values: dict[str, Any] = {":pk": {"S": partition_value}}
        condition = "#pk = :pk"
        if sort_prefix:
            names["#sk"] = sort_attribute
            values[":prefix"] = {"S": sort_prefix}
            condition += " AND begins_with(#sk, :prefix)"
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "Limit": limit,
        }
        if index_name:
            request["IndexName"] = index_name
        if descending:
            request["ScanIndexForward"] = False
        start_key = decode_token(
            next_token,
            partition_attribute=partition_attribute,
            partition_value=partition_value,
            sort_attribute=sort_attribute,
            sort_prefix=sort_prefix,
            key_attributes={PARTITION_KEY, SORT_KEY, partition_attribute, sort_attribute},
        )
        if start_key:
            request["ExclusiveStartKey"] = start_key
        response = self.client.query(**request)
        items = [from_attributes(item) for item in response.get("Items", [])]
        return items, encode_token(response.get("LastEvaluatedKey"))

    def exists_in(
        self, *, index_name: str, partition_attribute: str, partition_value: str, sort_attribute: str, sort_prefix: str
    ) -> bool:
        response = self.client.query(
            TableName=self.table_name,
            IndexName=index_name,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames={"#pk": partition_attribute, "#sk": sort_attribute},
            ExpressionAttributeValues={":pk": {"S": partition_value}, ":prefix": {"S": sort_prefix}},
            Limit=1,
        )
        return bool(response.get("Items"))

    def transact(self, operations: list[dict[str, Any]]) -> None:
        """TransactWriteItems; raises TransactionCancelledError with per-item reasons when a condition fails."""
        for operation in operations:
            body = next(iter(operation.values()))
            body["TableName"] = self.table_name
        try:
            self.client.transact_write_items(TransactItems=operations)  # type: ignore[arg-type]
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]
            if "TransactionConflict" in reasons or not any(code == "ConditionalCheckFailed" for code in reasons):
                # Not a business rule: another transaction touched the same items, or throttling.
                raise TransactionCancelledError(reasons or ["TransactionConflict"]) from error
            raise TransactionCancelledError(reasons) from error

    def batch_get(
        self, keys: Iterable[tuple[str, str]], *, attributes: Sequence[str] | None = None, consistent: bool = True
    ) -> list[Item]:
        """BatchGetItem in chunks of 100, retrying unprocessed keys; `attributes` limits what is returned (DynamoDB
        bills the whole item either way). Eventually consistent reads cost half."""
        results: list[Item] = []
        # DynamoDB refuses a request naming one key twice (ValidationException): e.g. a sender batch holding two SQS
        # messages of one job. Each key is asked once, in first-seen order.
        pending = [{PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": sk}} for pk, sk in dict.fromkeys(keys)]
        for start in range(0, len(pending), BATCH_GET_SIZE):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": pending[start : start + BATCH_GET_SIZE],
                    "ConsistentRead": consistent,
                    **_projection(attributes),
                }
            }
            attempt = 0
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                results.extend(from_attributes(item) for item in response["Responses"].get(self.table_name, []))
                request = dict(response.get("UnprocessedKeys") or {})
                attempt = _backoff(attempt) if request else attempt
        return results

    def hydrate(self, keys_only: Sequence[Item]) -> list[Item]:
        """The whole items behind index entries (indexes project only what their queries read), in the same
        order; entries whose item is gone meanwhile are left out."""
        found = {(item[PARTITION_KEY], item[SORT_KEY]): item for item in self.batch_get(_keys_of(keys_only))}
        return [found[key] for key in _keys_of(keys_only) if key in found]

    def batch_write(self, puts: Sequence[AttributeMap], deletes: Sequence[tuple[str, str]] = ()) -> None:
        """BatchWriteItem in chunks of 25, retrying unprocessed items until all are written."""
        requests: list[dict[str, Any]] = [{"PutRequest": {"Item": item}} for item in puts]
        requests += [{"DeleteRequest": {"Key": {PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": sk}}}} for pk, sk in deletes]
        for start in range(0, len(requests), BATCH_WRITE_SIZE):
            chunk: dict[str, Any] = {self.table_name: requests[start : start + BATCH_WRITE_SIZE]}
            attempt = 0
            while chunk:
                response = self.client.batch_write_item(RequestItems=chunk)
                chunk = dict(response.get("UnprocessedItems") or {})
                attempt = _backoff(attempt) if chunk else attempt


def _keys_of(items: Sequence[Item]) -> list[tuple[str, str]]:
    return [(item[PARTITION_KEY], item[SORT_KEY]) for item in items]


def _projection(attributes: Sequence[str] | None) -> dict[str, Any]:
    """ProjectionExpression arguments naming every attribute through a placeholder (many are reserved words)."""
    if not attributes:
        return {}
    names = {f"#a{index}": name for index, name in enumerate(attributes)}
    return {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}


def _backoff(attempt: int) -> int:
    if attempt >= 8:
        raise RuntimeError("DynamoDB kept returning unprocessed items after 8 retries")
    time.sleep(min(0.05 * 2**attempt, 1.0))
    return attempt + 1
