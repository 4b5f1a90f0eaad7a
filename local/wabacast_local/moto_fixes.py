"""Makes moto fit for the local stack and the tests: isolation, AWS's SQS deduplication window, and speed.

The local stack (`wabacast_local.stack`) and the delivery tests install the same three fixes:
`serialize_dynamodb_requests`, `remember_sqs_deduplication_ids` and `speed_up_moto`.

Isolation and transaction cost (moto serves each request in a thread):

Two problems of moto 5.2's DynamoDB, both in TransactWriteItems, which the delivery code uses for every job:

1. No isolation. The backend takes no lock, and a transaction first deep-copies every table it touches and, when
   one condition fails, puts those copies back: whatever another thread wrote meanwhile is silently undone (a job a
   sender settled reappears in its old status, a queue counter loses increments). The functions rely on DynamoDB's
   guarantees (a conditional write or a transaction is atomic and isolated), and the local stack runs several
   senders, the planner and the API at once. Fix: DynamoDB requests run one at a time (`_DYNAMODB_LOCK`), as if each
   were atomic. SQS is left alone: its long polls wait inside a request.
2. Cost. Copying whole tables makes every transaction as slow as the table is big (about 40 ms with 200 jobs,
   190 ms with 1,000 on a small machine). Fix: a transaction snapshots only the items it touches and, when it is
   cancelled, restores those; under the lock that is the same rollback, at a cost independent of the table size.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

_DYNAMODB_LOCK = threading.RLock()
DEDUPLICATION_WINDOW_S = 300.0
_MARKER = "_wabacast_serialized"


class _TransactionState(threading.local):
    snapshot_items_only = False


_STATE = _TransactionState()


class _CopyShim:
    """Stands in for the `copy` module inside moto.dynamodb.models: while a transaction keeps its own item
    snapshots, copying a whole Table returns the table itself (moto's rollback then re-assigns the same object)."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        if _STATE.snapshot_items_only and isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)


def _touched_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any]]:
    """(table, hash key, range key) of every item the transaction writes or checks."""
    touched = []
    for entry in transact_items:
        ((operation, request),) = entry.items()
        table = backend.get_table(request["TableName"])
        if operation == "Put":
            key_attributes = [table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]
            key = {name: request["Item"][name] for name in key_attributes}
        else:
            key = request["Key"]
        hash_key, range_key = backend.get_keys_value(table, key)
        touched.append((table, hash_key, range_key))
    return touched


def _restore(table: Any, hash_key: Any, range_key: Any, snapshot: Any) -> None:
    if table.has_range_key:
        partition = table.items[hash_key]
        if snapshot is None:
            partition.pop(range_key, None)
            if not partition:
                table.items.pop(hash_key, None)
        else:
            partition[range_key] = snapshot
    elif snapshot is None:
        table.items.pop(hash_key, None)
    else:
        table.items[hash_key] = snapshot


def serialize_dynamodb_requests() -> None:
    """Install both fixes in this process (idempotent; call before the emulator serves requests)."""
    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler, _MARKER, False):
        return

    original_call_action = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            return original_call_action(self)

    original_transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _DYNAMODB_LOCK:
            try:
                touched = _touched_items(self, transact_items)
            except Exception:
                return original_transact(self, transact_items)  # let moto report what is wrong with the request
            snapshots = [
                (table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key)))
                for table, hash_key, range_key in touched
            ]
            _STATE.snapshot_items_only = True
            try:
                return original_transact(self, transact_items)
            except BaseException:
                for table, hash_key, range_key, snapshot in snapshots:
                    _restore(table, hash_key, range_key, snapshot)
                raise
            finally:
                _STATE.snapshot_items_only = False

    dynamodb_models.copy = _CopyShim(Table)  # type: ignore[attr-defined, assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    setattr(DynamoHandler, _MARKER, True)


def remember_sqs_deduplication_ids() -> None:
    """AWS drops a FIFO message whose deduplication id was *sent* in the last 5 minutes, whether or not that message
    has been deleted since; moto only compares with the messages still in the queue. Here a queue remembers the
    deduplication ids it accepted for those 5 minutes."""
    import time

    from moto.sqs import models as sqs_models

    if getattr(sqs_models.Queue, _MARKER, False):
        return
    original = sqs_models.Queue.add_message

    def add_message(self: Any, message: Any) -> None:
        dedup_id = message.deduplication_id
        if not self.fifo_queue or dedup_id is None or self.lambda_event_source_mappings:
            original(self, message)
            return
        with self._messages_lock:
            seen: dict[str, float] = self.__dict__.setdefault("_wabacast_dedup_ids", {})
            now = time.monotonic()
            if dedup_id in seen and now - seen[dedup_id] < DEDUPLICATION_WINDOW_S:
                return
            if len(seen) > 10_000:
                for stale in [key for key, at in seen.items() if now - at >= DEDUPLICATION_WINDOW_S]:
                    del seen[stale]
            seen[dedup_id] = now
            self._messages.append(message)
            self._messages_lock.notify_all()

    sqs_models.Queue.add_message = add_message  # type: ignore[method-assign]
    setattr(sqs_models.Queue, _MARKER, True)


def speed_up_moto() -> None:
    """Same behaviour, less work, so thousands of jobs fit in a test or a benchmark run.

    - A read's answer is already DynamoDB JSON: written as it is instead of walked value by value along the response
      shape (~30 us a value: a page of 100 jobs took 0.2 s).
    - A query through an index scans and sorts the whole table: strings compare as strings (moto asks each value five
      questions first) and each item's sort key is computed once instead of at every comparison.
    - moto's SQS converts the time through naive datetimes for every message each time it checks visibility, and
      re-reads every queue attribute (counting all messages) for each message it validates.
    - Pure functions moto recomputes for every request are cached.
    """
    import functools
    import json
    import time

    from moto.core import responses as moto_responses
    from moto.core import utils as moto_utils
    from moto.dynamodb import responses as ddb_responses
    from moto.dynamodb.models import dynamo_type as ddb_type
    from moto.dynamodb.models import table as ddb_table
    from moto.sqs import models as sqs_models

    if getattr(ddb_responses.DynamoResult, _MARKER, False):
        return
    plain_json_reads = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})
    original_execute = ddb_responses.DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name in plain_json_reads and isinstance(self.result, dict):
            try:
                body = json.dumps({key: value for key, value in self.result.items() if value is not None})
            except TypeError:
                return original_execute(self, context)
            version = context.service_model.metadata.get("jsonVersion", "1.0")
            return 200, {"Content-Type": f"application/x-amz-json-{version}"}, body
        return original_execute(self, context)

    original_cast_value = vars(ddb_type.DynamoType)["cast_value"].fget

    def cast_value(self: Any) -> Any:
        return self.value if self.type == "S" else original_cast_value(self)

    def sorted_items(self: Any, hash_key_attrs: list[str], range_key_attrs: list[str | None], items: list[Any]) -> Any:
        names = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        items.sort(key=lambda item: tuple(item.attrs[name].cast_value for name in names))
        return items

    def now_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else moto_utils.unix_time_millis(dt)

    def now_seconds(dt: Any = None) -> float:
        return time.time() if dt is None else moto_utils.unix_time(dt)

    def retention_ok(self: Any, queue_name: str, message: Any) -> bool:
        retention = self.get_queue(queue_name).message_retention_period
        return bool(int(retention) + message.sent_timestamp / 1000 > time.time())

    def not_visible(self: Any) -> int:
        now = time.time() * 1000.0
        return sum(1 for message in self._messages if not now > message.visible_at)

    def delayed(self: Any) -> int:
        now = time.time() * 1000.0
        return sum(1 for message in self._messages if now < message.delayed_until)

    def visible(self: Any) -> int:
        now = time.time() * 1000.0
        return sum(1 for m in self._messages if now > m.visible_at and not now < m.delayed_until)

    class _QueueView:
        """Validating a message to send reads one setting, not every attribute (message counts included)."""

        def __init__(self, queue: Any) -> None:
            self._queue = queue
            flag = "true" if queue.content_based_deduplication else "false"
            self.attributes = {"ContentBasedDeduplication": flag}

        def __getattr__(self, name: str) -> Any:
            return getattr(self._queue, name)

    original_validate = sqs_models.SQSBackend._validate_message

    def validate_message(self: Any, queue: Any, *args: Any, **kwargs: Any) -> None:
        view: Any = _QueueView(queue)
        original_validate(self, view, *args, **kwargs)

    patches: list[tuple[Any, str, Any]] = [
        (ddb_responses.DynamoResult, "execute_result", execute_result),
        (ddb_type.DynamoType, "cast_value", property(cast_value)),
        (ddb_table.Table, "sorted_items", sorted_items),
        (sqs_models, "unix_time_millis", now_millis),
        (sqs_models, "unix_time", now_seconds),
        (sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", retention_ok),
        (sqs_models.Queue, "approximate_number_of_messages_not_visible", property(not_visible)),
        (sqs_models.Queue, "approximate_number_of_messages_delayed", property(delayed)),
        (sqs_models.Queue, "approximate_number_of_messages", property(visible)),
        (sqs_models.SQSBackend, "_validate_message", validate_message),
    ]
    camel_to_snake = functools.cache(moto_utils.camelcase_to_underscores)
    patches += [
        (moto_responses, "camelcase_to_underscores", camel_to_snake),
        (sqs_models, "camelcase_to_underscores", camel_to_snake),
        (moto_responses, "method_names_from_class", functools.cache(moto_utils.method_names_from_class)),
    ]
    for owner, name, value in patches:
        setattr(owner, name, value)
    setattr(ddb_responses.DynamoResult, _MARKER, True)


def install_all() -> None:
    """Every fix, as the local stack and the delivery tests use them."""
    serialize_dynamodb_requests()
    remember_sqs_deduplication_ids()
    speed_up_moto()
