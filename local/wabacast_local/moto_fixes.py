"""Makes moto's DynamoDB fit for the concurrent callers of the local stack (moto serves each request in a thread).

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
