"""What DynamoDB would bill for the requests made to moto's in-process DynamoDB: a capacity meter.

moto does not meter (the ConsumedCapacity it returns is a constant), so `CapacityMeter` computes the request units
DynamoDB would charge from the items themselves, by DynamoDB's published rules:

    meter = CapacityMeter()
    meter.install()      # wraps moto's DynamoDB backend (and, where moto keeps the logic there, its handler)
    meter.reset()
    ...                  # any DynamoDB traffic served by moto in this process
    report = meter.snapshot()
    report.wru, report.rru, report.by_operation, report.hottest_items(5)
    meter.uninstall()

How it sees the work. Every write method of `moto.dynamodb.models.DynamoDBBackend` (`put_item`, `update_item`,
`delete_item`, `transact_write_items`) is wrapped so that the stored item is read from the table object before and
after the original runs; the read methods (`get_item`, `query`, `scan`) are wrapped to size what was read. moto 5.2.5
keeps BatchGetItem, BatchWriteItem and TransactGetItems in `moto.dynamodb.responses.DynamoHandler` (the backend's
`batch_get_item`, `batch_write_item` and `transact_get_items` are empty stubs): those three actions, and the other
seven, are wrapped there too, to know which API operation a backend call belongs to (a BatchGetItem is many backend
`get_item` calls), with which ConsistentRead, and to ignore the helper reads moto's handler makes for itself (its
UpdateItem reads the item before updating it; DynamoDB does not bill that). PartiQL (ExecuteStatement and friends) is
not metered.

Rules applied, with their sources (AWS DynamoDB Developer Guide, read 2026-11-29):

- Item size (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
  the sum over attributes of the UTF-8 length of the name plus the value's size. S: UTF-8 bytes; N: about one byte
  per two significant digits plus one (leading and trailing zeros trimmed); B: raw bytes; BOOL and NULL: 1 byte;
  L and M: 3 bytes plus the sum of the elements' sizes plus 1 byte per element (a map element's size includes its
  name); SS, NS, BS: the sum of the members' sizes.
- Writes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):
  one write request unit per 1 KB, rounded up, at least 1. PutItem and UpdateItem are charged on the larger of the
  item before and after, DeleteItem on the deleted item (1 when there was none). A write whose condition fails is
  still charged, on the existing item's size (1 when there is none). BatchWriteItem: each put or delete likewise.
- Transactions (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html, "Capacity
  management for transactions"): TransactWriteItems costs 2 x the units of each item. Choice made here: every item
  of the transaction is charged 2 x max(1, ceil(size / 1 KB)), a ConditionCheck on the size of the checked item. A
  cancelled transaction is charged the same way on the items as they were before it (assumption: the docs say a
  failed conditional write is charged, not how much a cancelled transaction is). TransactGetItems: 2 x the units of
  a strongly consistent read of each item.
- Global secondary indexes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html, "Writes to a
  GSI" and "Provisioned throughput considerations"): the index definitions (key schema and projection: ALL,
  KEYS_ONLY, INCLUDE with NonKeyAttributes) are read from moto's table object. An item is in an index when it has
  every key attribute of the index. An index entry holds the table's keys, the index's keys and the projected
  attributes; its write costs max(1, ceil(entry size / 1 KB)). In the index before and after with the same index
  keys: one write, of the larger entry, only when a projected attribute changed (ALL: any attribute; INCLUDE: a key
  or an included attribute; KEYS_ONLY: never); index keys changed: two writes (delete the old entry, put the new);
  entered the index: one put; left it: one delete. Choice made here: index writes are not doubled inside a
  transaction (AWS documents the 2x for the table's items; the index update is propagated after the transaction,
  see the same transactions page). Local secondary indexes get the same treatment.
- Reads (read-write-operations.html above): GetItem: max(1, ceil(size / 4 KB)) read units for a strongly consistent
  read, half that for an eventually consistent one (the default); a missing item costs the minimum (1 or 0.5).
  BatchGetItem: each item likewise, rounded one by one. Query and Scan: the sizes of all the items read (those the
  key condition selects, up to Limit, before any FilterExpression) are summed and rounded up to 4 KB once per
  request, at least 1 unit, halved when eventually consistent; a query or scan of an index reads index entries
  (projected sizes) and is charged to the index. A ProjectionExpression does not reduce any read cost: DynamoDB bills
  the whole item, and so does this meter.

What it records: per request the operation, the table's and each index's write and read units, and every item
written (table, partition key, sort key) with its table write units. Index units are kept apart, and a written
item's units are the table's only: an index entry lives in the index's own partitions, so it does not load the
item's partition (and its 1,000 WCU/s limit).

Thread-safe: moto's server answers each request in a thread; the per-request state is thread-local and the totals
are updated under a lock. The before/after reads are exact only when requests do not overlap, which the local stack
guarantees (wabacast_local.moto_fixes serializes DynamoDB requests); in a single-threaded test they are exact too.
"""

from __future__ import annotations

import base64
import binascii
import functools
import inspect
import math
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
TRANSACTION_FACTOR = 2.0
EVENTUALLY_CONSISTENT_FACTOR = 0.5

# API operation (the DynamoHandler action) -> the backend methods whose calls are that operation's work.
_OPERATION_METHODS: dict[str, frozenset[str]] = {
    "PutItem": frozenset({"put_item"}),
    "UpdateItem": frozenset({"update_item"}),
    "DeleteItem": frozenset({"delete_item"}),
    "GetItem": frozenset({"get_item"}),
    "BatchGetItem": frozenset({"get_item"}),
    "TransactGetItems": frozenset({"get_item"}),
    "BatchWriteItem": frozenset({"put_item", "delete_item"}),
    "TransactWriteItems": frozenset({"transact_write_items"}),
    "Query": frozenset({"query"}),
    "Scan": frozenset({"scan"}),
}
_HANDLER_ACTIONS: dict[str, str] = {
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "delete_item": "DeleteItem",
    "get_item": "GetItem",
    "batch_get_item": "BatchGetItem",
    "transact_get_items": "TransactGetItems",
    "batch_write_item": "BatchWriteItem",
    "transact_write_items": "TransactWriteItems",
    "query": "Query",
    "scan": "Scan",
}
# A backend method called outside any API request (a test driving the backend directly) is this operation.
_BACKEND_OPERATIONS: dict[str, str] = {
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "delete_item": "DeleteItem",
    "get_item": "GetItem",
    "transact_write_items": "TransactWriteItems",
    "query": "Query",
    "scan": "Scan",
}


# Sizes -------------------------------------------------------------------------------------------------------------
def _type_and_value(attribute: Any) -> tuple[str, Any]:
    """An attribute value as (type, value): a wire-format dict ({"S": "x"}) or moto's DynamoType."""
    if isinstance(attribute, Mapping):
        ((type_name, value),) = attribute.items()
        return str(type_name), value
    return str(attribute.type), attribute.value


def number_size(text: Any) -> int:
    """Bytes of a Number: one per two significant digits, plus one (leading and trailing zeros trimmed)."""
    try:
        digits = "".join(str(digit) for digit in Decimal(str(text)).as_tuple().digits)
    except InvalidOperation:
        digits = "".join(character for character in str(text) if character.isdigit())
    significant = digits.strip("0")
    return math.ceil(max(len(significant), 1) / 2) + 1


def _binary_length(value: Any) -> int:
    """Raw bytes of a Binary (moto may keep it base64-encoded, as it came over the wire)."""
    if isinstance(value, bytes | bytearray):
        return len(value)
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return len(str(value).encode())


def value_size(attribute: Any) -> int:
    """Bytes of one attribute value (without its name), by the rules in this module's docstring."""
    type_name, value = _type_and_value(attribute)
    if type_name == "S":
        return len(str(value).encode())
    if type_name == "N":
        return number_size(value)
    if type_name == "B":
        return _binary_length(value)
    if type_name in ("BOOL", "NULL"):
        return 1
    if type_name == "L":
        return 3 + sum(value_size(element) + 1 for element in value)
    if type_name == "M":
        return 3 + sum(len(name.encode()) + value_size(element) + 1 for name, element in value.items())
    if type_name == "SS":
        return sum(len(str(member).encode()) for member in value)
    if type_name == "NS":
        return sum(number_size(member) for member in value)
    if type_name == "BS":
        return sum(_binary_length(member) for member in value)
    raise ValueError(f"unknown DynamoDB attribute type {type_name!r}")


def attribute_size(name: str, attribute: Any) -> int:
    return len(name.encode()) + value_size(attribute)


def item_size(attributes: Mapping[str, Any]) -> int:
    """Bytes of an item given as {name: attribute value} (wire-format dicts or moto's DynamoType values)."""
    return sum(attribute_size(name, attribute) for name, attribute in attributes.items())


def _frozen(attribute: Any) -> Hashable:
    """A comparable, hashable form of an attribute value (to tell whether a projected attribute changed)."""
    type_name, value = _type_and_value(attribute)
    if type_name == "L":
        return ("L", tuple(_frozen(element) for element in value))
    if type_name == "M":
        return ("M", tuple(sorted((name, _frozen(element)) for name, element in value.items())))
    if type_name in ("SS", "NS", "BS"):
        return (type_name, frozenset(bytes(member) if isinstance(member, bytearray) else member for member in value))
    if isinstance(value, bytearray):
        return (type_name, bytes(value))
    return (type_name, value)


def write_units(size: int) -> float:
    return float(max(1, math.ceil(size / WRITE_UNIT_BYTES)))


def read_units(size: int) -> float:
    """Strongly consistent read units for `size` bytes (at least 1); multiply by 0.5 or 2 as the read requires."""
    return float(max(1, math.ceil(size / READ_UNIT_BYTES)))


# Items and indexes as the meter sees them ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Snapshot:
    """An item at one moment: each attribute's size (name included) and comparable value."""

    sizes: Mapping[str, int]
    values: Mapping[str, Hashable]

    @property
    def size(self) -> int:
        return sum(self.sizes.values())

    @classmethod
    def of(cls, item: Any) -> _Snapshot | None:
        if item is None:
            return None
        attributes: Mapping[str, Any] = item.attrs
        return cls(
            sizes={name: attribute_size(name, value) for name, value in attributes.items()},
            values={name: _frozen(value) for name, value in attributes.items()},
        )


class _IndexEntry(NamedTuple):
    keys: tuple[Hashable, ...]
    size: int
    content: tuple[tuple[str, Hashable], ...]


@dataclass(frozen=True)
class _Index:
    name: str
    key_attributes: tuple[str, ...]
    projected: frozenset[str] | None  # None: ALL

    @classmethod
    def of(cls, index: Any, table_keys: Iterable[str]) -> _Index:
        key_attributes = tuple(str(key["AttributeName"]) for key in index.schema)
        projection: Mapping[str, Any] = index.projection or {}
        projection_type = projection.get("ProjectionType", "ALL")
        if projection_type == "ALL":
            return cls(index.name, key_attributes, None)
        projected = {*table_keys, *key_attributes}
        if projection_type == "INCLUDE":
            projected.update(str(name) for name in projection.get("NonKeyAttributes", []))
        return cls(index.name, key_attributes, frozenset(projected))

    def entry(self, item: _Snapshot | None) -> _IndexEntry | None:
        """The item's entry in this index, or None when the item is not in it (it lacks an index key)."""
        if item is None or any(key not in item.values for key in self.key_attributes):
            return None
        names = sorted(item.values if self.projected is None else self.projected.intersection(item.values))
        return _IndexEntry(
            keys=tuple(item.values[key] for key in self.key_attributes),
            size=sum(item.sizes[name] for name in names),
            content=tuple((name, item.values[name]) for name in names),
        )

    def writes(self, before: _Snapshot | None, after: _Snapshot | None) -> list[float]:
        """Write units of each index write that a table write from `before` to `after` causes."""
        old, new = self.entry(before), self.entry(after)
        if old is not None and new is not None:
            if old.keys != new.keys:
                return [write_units(old.size), write_units(new.size)]  # delete the old entry, put the new one
            if old.content == new.content:
                return []
            return [write_units(max(old.size, new.size))]
        if old is not None:
            return [write_units(old.size)]
        if new is not None:
            return [write_units(new.size)]
        return []


def _indexes(table: Any) -> list[_Index]:
    table_keys = [key for key in (table.hash_key_attr, table.range_key_attr) if key]
    return [_Index.of(index, table_keys) for index in [*(table.global_indexes or []), *(table.indexes or [])]]


# Records --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class ItemKey:
    table: str
    pk: str
    sk: str | None = None

    def __str__(self) -> str:
        return f"{self.table}:{self.pk}" + (f"|{self.sk}" if self.sk is not None else "")


class ItemWrites(NamedTuple):
    """One item's writes: how many, and the table write units they cost together."""

    key: ItemKey
    writes: int
    total_wru: float

    @property
    def wru_per_write(self) -> float:
        return self.total_wru / self.writes if self.writes else 0.0


@dataclass(frozen=True)
class RequestCost:
    """What one DynamoDB request would cost."""

    operation: str
    label: str | None
    wru_table: float
    rru_table: float
    wru_index: Mapping[str, float]
    rru_index: Mapping[str, float]
    index_writes: Mapping[str, int]
    written: tuple[tuple[ItemKey, float], ...]

    @property
    def wru(self) -> float:
        return self.wru_table + sum(self.wru_index.values())

    @property
    def rru(self) -> float:
        return self.rru_table + sum(self.rru_index.values())


@dataclass(frozen=True)
class UnitTotals:
    requests: int = 0
    wru_table: float = 0.0
    wru_index: float = 0.0
    rru_table: float = 0.0
    rru_index: float = 0.0

    @property
    def wru(self) -> float:
        return self.wru_table + self.wru_index

    @property
    def rru(self) -> float:
        return self.rru_table + self.rru_index

    def plus(self, cost: RequestCost) -> UnitTotals:
        return UnitTotals(
            requests=self.requests + 1,
            wru_table=self.wru_table + cost.wru_table,
            wru_index=self.wru_index + sum(cost.wru_index.values()),
            rru_table=self.rru_table + cost.rru_table,
            rru_index=self.rru_index + sum(cost.rru_index.values()),
        )

    def to_dict(self, per: float = 1.0) -> dict[str, float]:
        """The totals divided by `per` (e.g. the number of messages), rounded for a report."""
        return {
            "requests": round(self.requests / per, 4),
            "wru": round(self.wru / per, 4),
            "wruTable": round(self.wru_table / per, 4),
            "wruIndex": round(self.wru_index / per, 4),
            "rru": round(self.rru / per, 4),
            "rruTable": round(self.rru_table / per, 4),
            "rruIndex": round(self.rru_index / per, 4),
        }


@dataclass(frozen=True)
class CapacityReport:
    """Totals since the last reset."""

    totals: UnitTotals
    by_operation: Mapping[str, UnitTotals]
    by_label: Mapping[str, UnitTotals]
    wru_by_index: Mapping[str, float]
    rru_by_index: Mapping[str, float]
    index_writes: Mapping[str, int]
    items: Mapping[ItemKey, ItemWrites]
    ignored_requests: Mapping[str, int]

    @property
    def requests(self) -> int:
        return self.totals.requests

    @property
    def wru(self) -> float:
        return self.totals.wru

    @property
    def rru(self) -> float:
        return self.totals.rru

    @property
    def wru_table(self) -> float:
        return self.totals.wru_table

    @property
    def wru_index(self) -> float:
        return self.totals.wru_index

    @property
    def rru_table(self) -> float:
        return self.totals.rru_table

    @property
    def rru_index(self) -> float:
        return self.totals.rru_index

    def hottest_items(self, n: int = 1) -> list[ItemWrites]:
        """The `n` items written most often (ties: the costlier first), as (key, writes, total_wru)."""
        return sorted(self.items.values(), key=lambda item: (-item.writes, -item.total_wru, item.key))[:n]

    def hottest_partitions(self, n: int = 1) -> list[ItemWrites]:
        """The `n` partition keys whose items cost the most table write units together (key.sk is None).

        DynamoDB's 1,000 WCU/s limit is per partition, and every item of a partition key starts in the same one.
        """
        partitions: dict[ItemKey, list[float]] = {}
        for item in self.items.values():
            totals = partitions.setdefault(ItemKey(item.key.table, item.key.pk), [0.0, 0.0])
            totals[0] += item.writes
            totals[1] += item.total_wru
        ranked = sorted(partitions.items(), key=lambda entry: (-entry[1][1], -entry[1][0], entry[0]))
        return [ItemWrites(key, int(writes), wru) for key, (writes, wru) in ranked[:n]]


@dataclass
class _Pending:
    """The request being served by this thread."""

    operation: str
    body: Mapping[str, Any] | None = None
    label: str | None = None
    wru_table: float = 0.0
    rru_table: float = 0.0
    wru_index: dict[str, float] = field(default_factory=dict)
    rru_index: dict[str, float] = field(default_factory=dict)
    index_writes: dict[str, int] = field(default_factory=dict)
    written: list[tuple[ItemKey, float]] = field(default_factory=list)
    metered: bool = False

    def write(self, key: ItemKey | None, units: float, indexes: Mapping[str, list[float]] | None = None) -> None:
        self.metered = True
        self.wru_table += units
        if key is not None:
            self.written.append((key, units))
        for index_name, writes in (indexes or {}).items():
            if writes:
                self.wru_index[index_name] = self.wru_index.get(index_name, 0.0) + sum(writes)
                self.index_writes[index_name] = self.index_writes.get(index_name, 0) + len(writes)

    def read(self, index_name: str | None, units: float) -> None:
        self.metered = True
        if index_name is None:
            self.rru_table += units
        else:
            self.rru_index[index_name] = self.rru_index.get(index_name, 0.0) + units

    def cost(self) -> RequestCost:
        return RequestCost(
            operation=self.operation,
            label=self.label,
            wru_table=self.wru_table,
            rru_table=self.rru_table,
            wru_index=dict(self.wru_index),
            rru_index=dict(self.rru_index),
            index_writes=dict(self.index_writes),
            written=tuple(self.written),
        )


class _ThreadState(threading.local):
    pending: _Pending | None = None
    depth = 0


_INSTALL_LOCK = threading.Lock()
_installed: CapacityMeter | None = None


# The meter ------------------------------------------------------------------------------------------------------
class CapacityMeter:
    """Meters what moto's in-process DynamoDB serves (see the module docstring for the rules).

    `label_header`: a request header whose value labels the request (e.g. which function made it); totals are also
    kept per label. `ignore_labels`: requests with one of these labels are not counted (only tallied as ignored).
    `keep_requests`: how many of the latest per-request records `requests()` returns.
    """

    def __init__(
        self,
        *,
        label_header: str | None = None,
        ignore_labels: Iterable[str] = (),
        keep_requests: int = 100_000,
    ) -> None:
        self._label_header = label_header
        self._ignore_labels = frozenset(ignore_labels)
        self._lock = threading.Lock()
        self._state = _ThreadState()
        self._generation = 0  # wrappers of an earlier install() stay inert
        self._patches: list[tuple[type, str, Any, Any]] = []
        self._requests: deque[RequestCost] = deque(maxlen=keep_requests)
        self.reset()

    # Installation ---------------------------------------------------------------------------------------------
    @property
    def installed(self) -> bool:
        return bool(self._patches)

    def install(self) -> CapacityMeter:
        """Wrap moto's DynamoDB backend and handler methods in this process (one meter at a time)."""
        global _installed
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.responses import DynamoHandler

        with _INSTALL_LOCK:
            if _installed is self:
                return self
            if _installed is not None:
                raise RuntimeError("another CapacityMeter is installed; uninstall it first")
            self._generation += 1
            generation = self._generation
            backend_wrappers: dict[str, Callable[..., Any]] = {
                "put_item": self._write_wrapper,
                "update_item": self._write_wrapper,
                "delete_item": self._write_wrapper,
                "transact_write_items": self._transaction_wrapper,
                "get_item": self._get_wrapper,
                "query": self._query_wrapper,
                "scan": self._scan_wrapper,
            }
            for method, make_wrapper in backend_wrappers.items():
                original = getattr(DynamoDBBackend, method)
                wrapper = make_wrapper(method, original, generation)
                self._patches.append((DynamoDBBackend, method, original, wrapper))
                setattr(DynamoDBBackend, method, wrapper)
            for action, operation in _HANDLER_ACTIONS.items():
                original = getattr(DynamoHandler, action)
                wrapper = self._handler_wrapper(operation, original, generation)
                self._patches.append((DynamoHandler, action, original, wrapper))
                setattr(DynamoHandler, action, wrapper)
            _installed = self
        return self

    def uninstall(self) -> None:
        """Put moto's methods back. A method wrapped again by someone else since is left alone (inert)."""
        global _installed
        with _INSTALL_LOCK:
            self._generation += 1
            for owner, name, original, wrapper in reversed(self._patches):
                if owner.__dict__.get(name) is wrapper:
                    setattr(owner, name, original)
            self._patches = []
            if _installed is self:
                _installed = None

    def _active(self, generation: int) -> bool:
        return generation == self._generation and bool(self._patches)

    # Results --------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._totals = UnitTotals()
            self._by_operation: dict[str, UnitTotals] = {}
            self._by_label: dict[str, UnitTotals] = {}
            self._wru_by_index: dict[str, float] = {}
            self._rru_by_index: dict[str, float] = {}
            self._index_writes: dict[str, int] = {}
            self._items: dict[ItemKey, list[float]] = {}
            self._ignored: dict[str, int] = {}
            self._requests.clear()

    def snapshot(self) -> CapacityReport:
        with self._lock:
            return CapacityReport(
                totals=self._totals,
                by_operation=dict(self._by_operation),
                by_label=dict(self._by_label),
                wru_by_index=dict(self._wru_by_index),
                rru_by_index=dict(self._rru_by_index),
                index_writes=dict(self._index_writes),
                items={key: ItemWrites(key, int(writes), wru) for key, (writes, wru) in self._items.items()},
                ignored_requests=dict(self._ignored),
            )

    def hottest_items(self, n: int = 1) -> list[ItemWrites]:
        return self.snapshot().hottest_items(n)

    def requests(self) -> list[RequestCost]:
        """The latest per-request records (up to `keep_requests`), oldest first."""
        with self._lock:
            return list(self._requests)

    def _commit(self, pending: _Pending) -> None:
        if not pending.metered:
            return
        with self._lock:
            if pending.label is not None and pending.label in self._ignore_labels:
                self._ignored[pending.label] = self._ignored.get(pending.label, 0) + 1
                return
            cost = pending.cost()
            self._requests.append(cost)
            self._totals = self._totals.plus(cost)
            self._by_operation[cost.operation] = self._by_operation.get(cost.operation, UnitTotals()).plus(cost)
            label = cost.label or "unlabelled"
            self._by_label[label] = self._by_label.get(label, UnitTotals()).plus(cost)
            for index_name, units in cost.wru_index.items():
                self._wru_by_index[index_name] = self._wru_by_index.get(index_name, 0.0) + units
            for index_name, units in cost.rru_index.items():
                self._rru_by_index[index_name] = self._rru_by_index.get(index_name, 0.0) + units
            for index_name, count in cost.index_writes.items():
                self._index_writes[index_name] = self._index_writes.get(index_name, 0) + count
            for key, units in cost.written:
                entry = self._items.setdefault(key, [0.0, 0.0])
                entry[0] += 1
                entry[1] += units

    # Request context ------------------------------------------------------------------------------------------
    def _label_of(self, handler: Any) -> str | None:
        if self._label_header is None:
            return None
        headers = getattr(handler, "headers", None) or {}
        for name in (self._label_header, self._label_header.lower(), self._label_header.title()):
            value = headers.get(name)
            if value:
                return str(value)
        return None

    def _handler_wrapper(self, operation: str, original: Any, generation: int) -> Any:
        @functools.wraps(original)
        def wrapper(handler: Any) -> Any:
            state = self._state
            if not self._active(generation) or state.pending is not None:
                return original(handler)
            body = getattr(handler, "body", None)
            state.pending = _Pending(
                operation, body if isinstance(body, Mapping) else None, label=self._label_of(handler)
            )
            try:
                return original(handler)
            finally:
                pending, state.pending = state.pending, None
                if pending is not None:
                    self._commit(pending)

        return wrapper

    def _enter(self, method: str, generation: int) -> tuple[_Pending, bool] | None:
        """The request a backend call is part of, and whether the call is its own request; None: not metered
        (inactive meter, a call nested in a metered one, or a helper call moto's handler makes for itself)."""
        state = self._state
        if not self._active(generation) or state.depth > 0:
            return None
        pending = state.pending
        if pending is None:
            return _Pending(_BACKEND_OPERATIONS[method]), True
        if method not in _OPERATION_METHODS.get(pending.operation, frozenset()):
            return None
        return pending, False

    def _run(self, method: str, generation: int, meter: Callable[[_Pending], Any], original: Callable[[], Any]) -> Any:
        entered = self._enter(method, generation)
        if entered is None:
            return original()
        pending, own = entered
        state = self._state
        state.depth += 1
        try:
            return meter(pending)
        finally:
            state.depth -= 1
            if own:
                self._commit(pending)

    # Writes ---------------------------------------------------------------------------------------------------
    def _write_wrapper(self, method: str, original: Any, generation: int) -> Any:
        from moto.dynamodb.exceptions import ConditionalCheckFailed

        signature = inspect.signature(original)

        @functools.wraps(original)
        def wrapper(backend: Any, *args: Any, **kwargs: Any) -> Any:
            def call() -> Any:
                return original(backend, *args, **kwargs)

            def meter(pending: _Pending) -> Any:
                try:
                    arguments = signature.bind(backend, *args, **kwargs).arguments
                    table = backend.get_table(arguments["table_name"])
                    key_source = arguments["item_attrs"] if method == "put_item" else arguments["key"]
                    hash_key, range_key = backend.get_keys_value(table, key_source)
                    before = _Snapshot.of(table.get_item(hash_key, range_key))
                except Exception:
                    return call()  # moto reports what is wrong with the request; DynamoDB bills no invalid request
                key = _item_key(table, hash_key, range_key)
                try:
                    result = call()
                except ConditionalCheckFailed:
                    pending.write(key, write_units(before.size if before else 0))
                    raise
                after = _Snapshot.of(table.get_item(hash_key, range_key))
                pending.write(key, _table_write_units(method, before, after), _index_writes(table, before, after))
                return result

            return self._run(method, generation, meter, call)

        return wrapper

    def _transaction_wrapper(self, method: str, original: Any, generation: int) -> Any:
        from moto.dynamodb.exceptions import TransactionCanceledException

        @functools.wraps(original)
        def wrapper(backend: Any, transact_items: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            def call() -> Any:
                return original(backend, transact_items, *args, **kwargs)

            def meter(pending: _Pending) -> Any:
                try:
                    touched = []
                    for entry in transact_items:
                        ((action, request),) = entry.items()
                        table = backend.get_table(request["TableName"])
                        hash_key, range_key = backend.get_keys_value(
                            table, request["Item"] if action == "Put" else request["Key"]
                        )
                        before = _Snapshot.of(table.get_item(hash_key, range_key))
                        touched.append((action, table, hash_key, range_key, before))
                except Exception:
                    return call()
                try:
                    result = call()
                except TransactionCanceledException:
                    for action, table, hash_key, range_key, before in touched:
                        key = None if action == "ConditionCheck" else _item_key(table, hash_key, range_key)
                        pending.write(key, TRANSACTION_FACTOR * write_units(before.size if before else 0))
                    raise
                for action, table, hash_key, range_key, before in touched:
                    if action == "ConditionCheck":
                        pending.write(None, TRANSACTION_FACTOR * write_units(before.size if before else 0))
                        continue
                    after = _Snapshot.of(table.get_item(hash_key, range_key))
                    units = _table_write_units("delete_item" if action == "Delete" else "put_item", before, after)
                    pending.write(
                        _item_key(table, hash_key, range_key),
                        TRANSACTION_FACTOR * units,
                        _index_writes(table, before, after),
                    )
                return result

            return self._run(method, generation, meter, call)

        return wrapper

    # Reads ----------------------------------------------------------------------------------------------------
    def _get_wrapper(self, method: str, original: Any, generation: int) -> Any:
        @functools.wraps(original)
        def wrapper(backend: Any, table_name: str, keys: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            def call() -> Any:
                return original(backend, table_name, keys, *args, **kwargs)

            def meter(pending: _Pending) -> Any:
                result = call()
                table = backend.get_table(table_name)
                hash_key, range_key = backend.get_keys_value(table, keys)
                stored = table.get_item(hash_key, range_key)  # the whole item: a projection does not reduce cost
                size = item_size(stored.attrs) if stored is not None else 0
                pending.read(None, read_units(size) * _get_factor(pending, table_name))
                return result

            return self._run(method, generation, meter, call)

        return wrapper

    def _query_wrapper(self, method: str, original: Any, generation: int) -> Any:
        return self._read_many_wrapper(
            method,
            original,
            generation,
            unfiltered={"filter_expression": None, "projection_expressions": None, "filter_kwargs": {}},
        )

    def _scan_wrapper(self, method: str, original: Any, generation: int) -> Any:
        return self._read_many_wrapper(
            method,
            original,
            generation,
            unfiltered={"filters": {}, "filter_expression": None, "projection_expression": None},
        )

    def _read_many_wrapper(self, method: str, original: Any, generation: int, unfiltered: dict[str, Any]) -> Any:
        """Query and Scan: the items read are those before filtering and projection; when the request filters or
        projects, the same request is run again without either to see them."""
        signature = inspect.signature(original)

        @functools.wraps(original)
        def wrapper(backend: Any, *args: Any, **kwargs: Any) -> Any:
            def call() -> Any:
                return original(backend, *args, **kwargs)

            def meter(pending: _Pending) -> Any:
                result = call()
                bound = signature.bind(backend, *args, **kwargs)
                bound.apply_defaults()
                arguments = dict(bound.arguments)
                read = result[0]
                if any(arguments.get(name) for name in unfiltered):
                    arguments.update(unfiltered)
                    extra = arguments.pop("filter_kwargs", None) or {}
                    arguments.pop("self", None)
                    read = original(backend, **arguments, **extra)[0]
                size = sum(item_size(item.attrs) for item in read)
                factor = 1.0 if arguments.get("consistent_read") else EVENTUALLY_CONSISTENT_FACTOR
                index_name = arguments.get("index_name") or None
                pending.read(index_name, read_units(size) * factor)
                return result

            return self._run(method, generation, meter, call)

        return wrapper


# Helpers ----------------------------------------------------------------------------------------------------------
def _item_key(table: Any, hash_key: Any, range_key: Any) -> ItemKey:
    return ItemKey(str(table.name), str(hash_key.value), None if range_key is None else str(range_key.value))


def _table_write_units(method: str, before: _Snapshot | None, after: _Snapshot | None) -> float:
    if method == "delete_item":
        return write_units(before.size if before else 0)
    return write_units(max(before.size if before else 0, after.size if after else 0))


def _index_writes(table: Any, before: _Snapshot | None, after: _Snapshot | None) -> dict[str, list[float]]:
    return {index.name: index.writes(before, after) for index in _indexes(table)}


def _get_factor(pending: _Pending, table_name: str) -> float:
    if pending.operation == "TransactGetItems":
        return TRANSACTION_FACTOR
    body = pending.body or {}
    if pending.operation == "BatchGetItem":
        consistent = bool((body.get("RequestItems") or {}).get(table_name, {}).get("ConsistentRead"))
    else:
        consistent = bool(body.get("ConsistentRead"))
    return 1.0 if consistent else EVENTUALLY_CONSISTENT_FACTOR
