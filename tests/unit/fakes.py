"""In-memory implementations of the ports in wabacast.logic.ports, faithful to the DynamoDB adapters.

Each fake keeps what the adapter would store (snake_case JSON dumps, re-read through the domain models), checks
the same conditions as the adapter's conditional writes and raises the same exceptions:

* ConcurrentModificationError when a condition on state the caller read earlier fails (moved pointers, a changed
  `updated_at`, a changed account count), ConflictError for a phone number already claimed, and so on;
* NotFoundError / InvalidInputError where the adapters raise them.

Tests can make the next call(s) of a method fail (`fail_next`) or run code just before the next write
(`before_next`), which is how a concurrent request is simulated without threads or sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic_core import to_jsonable_python

from wabacast.adapters.dynamodb.base import TransactionCancelledError
from wabacast.adapters.paging import decode_token, encode_token
from wabacast.domain.models import (
    QUEUE_STATUSES_HOLDING_ACCOUNT,
    Account,
    ApiKey,
    Business,
    Contact,
    OptOut,
    OptOutScope,
    Page,
    Queue,
    QueueStatus,
    TemplateCategory,
)
from wabacast.errors import ConcurrentModificationError, ConflictError, InvalidInputError, NotFoundError
from wabacast.phone import FROM_STORAGE
from wabacast.storage.table import GSI1, GSI2, PARTITION_KEY, SORT_KEY

T = TypeVar("T")

_STORAGE = {FROM_STORAGE: True}
# What QueueRepository.replace writes; the rest of a queue belongs to its lifecycle.
QUEUE_EDITABLE = (
    "name",
    "account_id",
    "template",
    "variables",
    "audience",
    "priority",
    "schedule",
    "max_attempts",
    "updated_at",
)


class FixedClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class _Scripted:
    """Failure injection and "concurrent request" hooks shared by the fakes."""

    def __init__(self) -> None:
        self._failures: dict[str, list[BaseException]] = {}
        self._hooks: dict[str, list[Callable[[], None]]] = {}
        self.calls: dict[str, int] = {}

    def fail_next(self, method: str, error: BaseException, times: int = 1) -> None:
        """The next `times` calls of `method` raise `error` before changing anything."""
        self._failures.setdefault(method, []).extend([error] * times)

    def before_next(self, method: str, hook: Callable[[], None]) -> None:
        """Run `hook` once, at the start of the next call of `method` (after the caller read its state)."""
        self._hooks.setdefault(method, []).append(hook)

    def _enter(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        hooks = self._hooks.get(method)
        if hooks:
            hooks.pop(0)()
        failures = self._failures.get(method)
        if failures:
            raise failures.pop(0)


def _page(
    entries: Sequence[tuple[dict[str, str], T]],
    *,
    partition_attribute: str,
    partition_value: str,
    sort_attribute: str,
    sort_prefix: str | None,
    limit: int,
    next_token: str | None,
) -> Page[T]:
    """One Query page over (item key, item) pairs, with TableGateway.query_page's token encoding and checks.

    Each key holds the item's table key (PK, SK) and, for an index, the index's key too, as DynamoDB's
    LastEvaluatedKey does. Like DynamoDB, a page that stops because it reached `limit` carries a token even when
    nothing follows.
    """
    start = decode_token(
        next_token,
        partition_attribute=partition_attribute,
        partition_value=partition_value,
        sort_attribute=sort_attribute,
        sort_prefix=sort_prefix,
        key_attributes={PARTITION_KEY, SORT_KEY, partition_attribute, sort_attribute},
    )
    ordered = sorted(
        (entry for entry in entries if entry[0][sort_attribute].startswith(sort_prefix or "")),
        key=lambda entry: entry[0][sort_attribute],
    )
    if start is not None:
        after = start[sort_attribute]["S"]
        ordered = [entry for entry in ordered if entry[0][sort_attribute] > after]
    chosen = ordered[:limit]
    token = None
    if chosen and len(chosen) == limit:
        token = encode_token({name: {"S": value} for name, value in chosen[-1][0].items()})
    return Page[T](items=[item for _, item in chosen], next_token=token)


def _biz(business_id: str) -> str:
    return f"BIZ#{business_id}"


# Businesses and keys ---------------------------------------------------------------------------------------------
class FakeBusinessStore(_Scripted):
    def __init__(self) -> None:
        super().__init__()
        # business id -> stored business item (business fields + pointers + account_count)
        self.items: dict[str, dict[str, Any]] = {}
        # key hash -> stored ApiKey; (listing partition, key id) -> key hash
        self.key_lookup: dict[str, dict[str, Any]] = {}
        self.key_listing: dict[tuple[str, str], str] = {}
        # Every argument the store was given, to prove what it never saw (plaintext keys).
        self.received: list[Any] = []

    # BusinessStore -----------------------------------------------------------------------------------------------
    def create(self, business: Business, key: ApiKey, key_hash: str) -> None:
        self._enter("create")
        self.received.extend([business.model_dump(mode="json"), key.model_dump(mode="json"), key_hash])
        if business.id in self.items:
            raise TransactionCancelledError(["ConditionalCheckFailed", "None", "None"])
        self._check_key_free(key, key_hash)
        self.items[business.id] = {**business.model_dump(mode="json", exclude_none=True), "account_count": 0}
        self._store_key(key, key_hash)

    def get(self, business_id: str) -> Business | None:
        self._enter("get")
        item = self.items.get(business_id)
        return self._to_business(item) if item else None

    def get_with_account_count(self, business_id: str) -> tuple[Business, int]:
        self._enter("get_with_account_count")
        item = self.items.get(business_id)
        if item is None:
            raise NotFoundError("business not found")
        return self._to_business(item), int(item["account_count"])

    def set_keywords(self, business_id: str, stop: list[str] | None, start: list[str] | None) -> Business:
        self._enter("set_keywords")
        item = self.items.get(business_id)
        if item is None:
            raise NotFoundError("business not found")
        for attribute, words in (("stop_keywords", stop), ("start_keywords", start)):
            if words is None:
                item.pop(attribute, None)
            else:
                item[attribute] = list(words)
        return self._to_business(item)

    def list(self, limit: int, next_token: str | None) -> Page[Business]:
        self._enter("list")
        return _page(
            [
                (
                    {
                        PARTITION_KEY: _biz(business_id),
                        SORT_KEY: "#BUSINESS",
                        GSI1.partition_key: "BUSINESSES",
                        GSI1.sort_key: business_id,
                    },
                    self._to_business(item),
                )
                for business_id, item in self.items.items()
            ],
            partition_attribute=GSI1.partition_key,
            partition_value="BUSINESSES",
            sort_attribute=GSI1.sort_key,
            sort_prefix=None,
            limit=limit,
            next_token=next_token,
        )

    def add_key(self, key: ApiKey, key_hash: str) -> None:
        self._enter("add_key")
        self.received.extend([key.model_dump(mode="json"), key_hash])
        if key.business_id is not None and key.business_id not in self.items:
            raise NotFoundError("business not found")
        self._check_key_free(key, key_hash)
        self._store_key(key, key_hash)

    def list_keys(self, business_id: str | None, limit: int, next_token: str | None) -> Page[ApiKey]:
        self._enter("list_keys")
        partition = _biz(business_id) if business_id else "ADMIN"
        return _page(
            [
                (
                    {PARTITION_KEY: partition, SORT_KEY: f"APIKEY#{key_id}"},
                    ApiKey.model_validate(self.key_lookup[key_hash]),
                )
                for (listing, key_id), key_hash in self.key_listing.items()
                if listing == partition
            ],
            partition_attribute=PARTITION_KEY,
            partition_value=partition,
            sort_attribute=SORT_KEY,
            sort_prefix="APIKEY#",
            limit=limit,
            next_token=next_token,
        )

    def delete_key(self, business_id: str | None, key_id: str) -> None:
        self._enter("delete_key")
        key_hash = self.key_listing.pop((_biz(business_id) if business_id else "ADMIN", key_id), None)
        if key_hash is None:
            raise NotFoundError("API key not found", field="keyId")
        del self.key_lookup[key_hash]

    def find_key(self, key_hash: str) -> ApiKey | None:
        self._enter("find_key")
        item = self.key_lookup.get(key_hash)
        return ApiKey.model_validate(item) if item else None

    # For the account fake and for tests --------------------------------------------------------------------------
    def pointer(self, business_id: str, attribute: str) -> str | None:
        value: str | None = self.items[business_id].get(attribute)
        return value

    def account_count(self, business_id: str) -> int:
        return int(self.items[business_id]["account_count"])

    @staticmethod
    def _to_business(item: dict[str, Any]) -> Business:
        return Business.model_validate({key: value for key, value in item.items() if key != "account_count"})

    @staticmethod
    def _listing(key: ApiKey) -> str:
        return _biz(key.business_id) if key.business_id else "ADMIN"

    def _check_key_free(self, key: ApiKey, key_hash: str) -> None:
        if key_hash in self.key_lookup or (self._listing(key), key.key_id) in self.key_listing:
            # The adapter lets the cancelled transaction through: a 256-bit key colliding is not a user error.
            raise TransactionCancelledError(["ConditionalCheckFailed"])

    def _store_key(self, key: ApiKey, key_hash: str) -> None:
        self.key_lookup[key_hash] = key.model_dump(mode="json", exclude_none=True)
        self.key_listing[(self._listing(key), key.key_id)] = key_hash


# Accounts ---------------------------------------------------------------------------------------------------------
_POINTERS = (("primary_account_id", "is_primary"), ("default_account_id", "is_default"))


class FakeAccountStore(_Scripted):
    """Accounts under their business; primary/default are pointers on the business item (as in DynamoDB)."""

    def __init__(self, businesses: FakeBusinessStore) -> None:
        super().__init__()
        self._businesses = businesses
        # (business id, account id) -> stored account item (without the derived is_primary / is_default)
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        # phone number -> (business id, account id): the global claim that keeps numbers unique
        self.claims: dict[str, tuple[str, str]] = {}

    def get(self, business: Business, account_id: str) -> Account | None:
        self._enter("get")
        item = self.items.get((business.id, account_id))
        return self._to_account(item, business) if item else None

    def list(self, business: Business, limit: int, next_token: str | None) -> Page[Account]:
        self._enter("list")
        return _page(
            [
                (
                    {PARTITION_KEY: _biz(business_id), SORT_KEY: f"ACCOUNT#{account_id}"},
                    self._to_account(item, business),
                )
                for (business_id, account_id), item in self.items.items()
                if business_id == business.id
            ],
            partition_attribute=PARTITION_KEY,
            partition_value=_biz(business.id),
            sort_attribute=SORT_KEY,
            sort_prefix="ACCOUNT#",
            limit=limit,
            next_token=next_token,
        )

    def create(self, account: Account, business: Business) -> None:
        self._enter("create")
        stored = self._businesses.items.get(account.business_id)
        claim_free = account.phone_number not in self.claims
        ok = stored is not None and (account.business_id, account.id) not in self.items
        ok = ok and self._pointers_agree(stored, account, business)
        if not claim_free:
            raise ConflictError("phoneNumber is already registered to a WhatsApp account", field="phoneNumber")
        if not ok or stored is None:
            raise ConcurrentModificationError("the account or its business changed while this request ran; retry it")
        self.items[(account.business_id, account.id)] = self._to_item(account)
        self.claims[account.phone_number] = (account.business_id, account.id)
        self._repoint(stored, account, business)
        stored["account_count"] = int(stored["account_count"]) + 1

    def update(self, before: Account, after: Account, business: Business) -> None:
        self._enter("update")
        stored = self._businesses.items.get(after.business_id)
        current = self.items.get((after.business_id, after.id))
        ok = current is not None and current["updated_at"] == to_jsonable_python(before.updated_at)
        phone_moves = after.phone_number != before.phone_number
        if phone_moves:
            ok = ok and self.claims.get(before.phone_number) == (before.business_id, before.id)
            if after.phone_number in self.claims:
                raise ConflictError("phoneNumber is already registered to a WhatsApp account", field="phoneNumber")
        ok = ok and stored is not None and self._pointers_agree(stored, after, business)
        if not ok or stored is None:
            raise ConcurrentModificationError("the account or its business changed while this request ran; retry it")
        self.items[(after.business_id, after.id)] = self._to_item(after)
        if phone_moves:
            del self.claims[before.phone_number]
            self.claims[after.phone_number] = (after.business_id, after.id)
        self._repoint(stored, after, business)

    def delete(self, account: Account, business: Business, account_count: int) -> None:
        self._enter("delete")
        stored = self._businesses.items.get(account.business_id)
        ok = (
            stored is not None
            and (account.business_id, account.id) in self.items
            and self.claims.get(account.phone_number) == (account.business_id, account.id)
            and int(stored["account_count"]) == account_count
            and stored.get("primary_account_id") == business.primary_account_id
            and stored.get("default_account_id") == business.default_account_id
        )
        if not ok or stored is None:
            raise ConcurrentModificationError("the account or its business changed while this request ran; retry it")
        del self.items[(account.business_id, account.id)]
        del self.claims[account.phone_number]
        for attribute, flag in _POINTERS:
            if getattr(account, flag):
                stored.pop(attribute, None)
        stored["account_count"] = account_count - 1

    def owner_of_phone(self, phone_number: str) -> tuple[str, str] | None:
        self._enter("owner_of_phone")
        return self.claims.get(phone_number)

    def mark_delivery_ready(self, account: Account) -> None:
        """An UpdateItem conditioned on the account existing; it does not change `updated_at`."""
        self._enter("mark_delivery_ready")
        item = self.items.get((account.business_id, account.id))
        if item is None:
            # The adapter lets DynamoDB's ConditionalCheckFailedException through: not a domain error.
            raise LookupError("ConditionalCheckFailed: the account no longer exists")
        item["delivery_ready"] = True

    # Helpers -----------------------------------------------------------------------------------------------------
    @staticmethod
    def _pointers_agree(stored: dict[str, Any] | None, account: Account, business: Business) -> bool:
        """The adapter's `expect_pointer` conditions: pointers it moves must still be what the caller read."""
        if stored is None:
            return False
        for attribute, flag in _POINTERS:
            seen = getattr(business, attribute)
            moves = (getattr(account, flag) and seen != account.id) or (
                not getattr(account, flag) and seen == account.id
            )
            if moves and stored.get(attribute) != seen:
                return False
        return True

    @staticmethod
    def _repoint(stored: dict[str, Any], account: Account, business: Business) -> None:
        """Move (or clear) the pointers that disagree with the account's flags, judged on what the caller read."""
        for attribute, flag in _POINTERS:
            seen = getattr(business, attribute)
            if getattr(account, flag) and seen != account.id:
                stored[attribute] = account.id
            elif not getattr(account, flag) and seen == account.id:
                stored.pop(attribute, None)

    @staticmethod
    def _to_item(account: Account) -> dict[str, Any]:
        return account.model_dump(mode="json", exclude={"is_primary", "is_default"})

    @staticmethod
    def _to_account(item: dict[str, Any], business: Business) -> Account:
        return Account.model_validate(
            {
                **item,
                "is_primary": business.primary_account_id == item["id"],
                "is_default": business.default_account_id == item["id"],
            }
        )


# Queues -----------------------------------------------------------------------------------------------------------
class FakeQueueStore(_Scripted):
    def __init__(self, accounts: FakeAccountStore) -> None:
        super().__init__()
        self._accounts = accounts
        # (business id, queue id) -> stored queue item
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, business_id: str, queue_id: str) -> Queue | None:
        self._enter("get")
        item = self.items.get((business_id, queue_id))
        return self._to_queue(item) if item else None

    def list(
        self,
        business_id: str,
        *,
        status: QueueStatus | None,
        account_id: str | None,
        limit: int,
        next_token: str | None,
    ) -> Page[Queue]:
        self._enter("list")
        biz = _biz(business_id)
        queues = [self._to_queue(item) for (owner, _), item in self.items.items() if owner == business_id]
        if account_id is not None:
            partition = (GSI2.partition_key, f"{biz}#QACCOUNT#{account_id}", GSI2.sort_key)
            entries = [
                (
                    {
                        PARTITION_KEY: biz,
                        SORT_KEY: f"QUEUE#{queue.id}",
                        GSI2.partition_key: partition[1],
                        GSI2.sort_key: f"{queue.status.value}#{queue.id}",
                    },
                    queue,
                )
                for queue in queues
                if queue.account_id == account_id
            ]
            prefix = f"{status.value}#" if status else None
        elif status is not None:
            partition = (GSI1.partition_key, f"{biz}#QSTATUS#{status.value}", GSI1.sort_key)
            entries = [
                (
                    {
                        PARTITION_KEY: biz,
                        SORT_KEY: f"QUEUE#{queue.id}",
                        GSI1.partition_key: partition[1],
                        GSI1.sort_key: queue.id,
                    },
                    queue,
                )
                for queue in queues
                if queue.status == status
            ]
            prefix = None
        else:
            partition = (PARTITION_KEY, biz, SORT_KEY)
            entries = [({PARTITION_KEY: biz, SORT_KEY: f"QUEUE#{queue.id}"}, queue) for queue in queues]
            prefix = "QUEUE#"
        return _page(
            entries,
            partition_attribute=partition[0],
            partition_value=partition[1],
            sort_attribute=partition[2],
            sort_prefix=prefix,
            limit=limit,
            next_token=next_token,
        )

    def holds_account(self, business_id: str, account_id: str) -> bool:
        self._enter("holds_account")
        return any(
            owner == business_id
            and item["account_id"] == account_id
            and QueueStatus(item["status"]) in QUEUE_STATUSES_HOLDING_ACCOUNT
            for (owner, _), item in self.items.items()
        )

    def create(self, queue: Queue) -> None:
        self._enter("create")
        if not self._account_exists(queue):
            raise InvalidInputError("accountId: account not found", field="accountId")
        if (queue.business_id, queue.id) in self.items:
            raise ConcurrentModificationError("the queue changed while this request ran; retry it")
        self.items[(queue.business_id, queue.id)] = queue.model_dump(mode="json")

    def replace(self, before: Queue, after: Queue, *, forbidden: tuple[QueueStatus, ...]) -> None:
        """Write the editable fields of `after` while `updated_at` is what the caller read and the status allows.

        Status, counters and timestamps of the lifecycle stay as stored: the planner and senders own them.
        """
        self._enter("replace")
        if after.account_id != before.account_id and not self._account_exists(after):
            raise InvalidInputError("accountId: account not found", field="accountId")
        current = self.items.get((before.business_id, before.id))
        if (
            current is None
            or current["updated_at"] != to_jsonable_python(before.updated_at)
            or QueueStatus(current["status"]) in forbidden
        ):
            raise ConcurrentModificationError("the queue changed while this request ran; retry it")
        written = after.model_dump(mode="json")
        current.update({name: written[name] for name in QUEUE_EDITABLE})

    def delete(self, queue: Queue, *, forbidden: tuple[QueueStatus, ...]) -> None:
        self._enter("delete")
        current = self.items.get((queue.business_id, queue.id))
        if current is None:
            raise NotFoundError("queue not found")
        if QueueStatus(current["status"]) in forbidden:
            raise ConflictError(f"a queue that is {current['status']} cannot be deleted", field="status")
        del self.items[(queue.business_id, queue.id)]

    # For tests: what the planner / dispatcher would do -----------------------------------------------------------
    def set_status(self, business_id: str, queue_id: str, status: QueueStatus) -> None:
        self.items[(business_id, queue_id)]["status"] = status.value

    def _account_exists(self, queue: Queue) -> bool:
        return (queue.business_id, queue.account_id) in self._accounts.items

    @staticmethod
    def _to_queue(item: dict[str, Any]) -> Queue:
        return Queue.model_validate(item, context=_STORAGE)


# Contacts and opt-outs --------------------------------------------------------------------------------------------
class FakeContactStore(_Scripted):
    def __init__(self) -> None:
        super().__init__()
        self.contacts: dict[tuple[str, str], dict[str, Any]] = {}
        # (business id, tag) -> phone numbers carrying it (the membership items)
        self.members: dict[tuple[str, str], set[str]] = {}
        self.opt_outs: dict[tuple[str, str], dict[str, Any]] = {}
        self.opt_ins: dict[tuple[str, str], datetime] = {}
        # Every save_many call as (contact, old tags) pairs, to check what the logic passed.
        self.saved: list[list[tuple[Contact, list[str]]]] = []

    def get_many(self, business_id: str, phone_numbers: Sequence[str]) -> dict[str, Contact]:
        self._enter("get_many")
        found = (self.contacts.get((business_id, phone)) for phone in phone_numbers)
        contacts = (Contact.model_validate(item, context=_STORAGE) for item in found if item)
        return {contact.phone_number: contact for contact in contacts}

    def save_many(self, business_id: str, changes: Sequence[tuple[Contact, Sequence[str]]]) -> None:
        self._enter("save_many")
        self.saved.append([(contact.model_copy(deep=True), list(old_tags)) for contact, old_tags in changes])
        for contact, old_tags in changes:
            self.contacts[(business_id, contact.phone_number)] = contact.model_dump(mode="json")
            for tag in set(contact.tags) - set(old_tags):
                self.members.setdefault((business_id, tag), set()).add(contact.phone_number)
            for tag in set(old_tags) - set(contact.tags):
                self.members.get((business_id, tag), set()).discard(contact.phone_number)

    def list(self, business_id: str, *, tag: str | None, limit: int, next_token: str | None) -> Page[Contact]:
        self._enter("list")
        if tag is None:
            return _page(
                [
                    (
                        {PARTITION_KEY: _biz(business_id), SORT_KEY: f"CONTACT#{phone}"},
                        Contact.model_validate(item, context=_STORAGE),
                    )
                    for (owner, phone), item in self.contacts.items()
                    if owner == business_id
                ],
                partition_attribute=PARTITION_KEY,
                partition_value=_biz(business_id),
                sort_attribute=SORT_KEY,
                sort_prefix="CONTACT#",
                limit=limit,
                next_token=next_token,
            )
        members = _page(
            [
                ({PARTITION_KEY: f"{_biz(business_id)}#TAG#{tag}", SORT_KEY: phone}, phone)
                for phone in self.members.get((business_id, tag), set())
            ],
            partition_attribute=PARTITION_KEY,
            partition_value=f"{_biz(business_id)}#TAG#{tag}",
            sort_attribute=SORT_KEY,
            sort_prefix=None,
            limit=limit,
            next_token=next_token,
        )
        found = self.get_many(business_id, members.items)
        contacts = [found[phone] for phone in members.items if phone in found and tag in found[phone].tags]
        return Page[Contact](items=contacts, next_token=members.next_token)

    def delete(self, business_id: str, phone_number: str) -> None:
        self._enter("delete")
        item = self.contacts.pop((business_id, phone_number), None)
        if item is None:
            raise NotFoundError("contact not found", field="phoneNumber")
        for tag in item.get("tags", []):
            self.members.get((business_id, tag), set()).discard(phone_number)

    def add_opt_out(self, business_id: str, opt_out: OptOut) -> tuple[OptOut, bool]:
        self._enter("add_opt_out")
        existing = self.opt_outs.get((business_id, opt_out.phone_number))
        if existing is not None:
            stored = OptOut.model_validate(existing, context=_STORAGE)
            if stored.scope == OptOutScope.MARKETING and opt_out.scope == OptOutScope.ALL:
                self.opt_outs[(business_id, opt_out.phone_number)] = opt_out.model_dump(mode="json")
                return opt_out, True
            return stored, False
        self.opt_outs[(business_id, opt_out.phone_number)] = opt_out.model_dump(mode="json")
        return opt_out, True

    def get_opt_out(self, business_id: str, phone_number: str) -> OptOut | None:
        self._enter("get_opt_out")
        item = self.opt_outs.get((business_id, phone_number))
        return OptOut.model_validate(item, context=_STORAGE) if item else None

    def opted_out_among(
        self,
        business_id: str,
        phone_numbers: Sequence[str],
        *,
        category: TemplateCategory = TemplateCategory.MARKETING,
    ) -> set[str]:
        self._enter("opted_out_among")
        return {
            phone
            for phone in set(phone_numbers)
            if (business_id, phone) in self.opt_outs
            and OptOut.model_validate(self.opt_outs[(business_id, phone)], context=_STORAGE).covers(category)
        }

    def record_opt_in(self, business_id: str, phone_number: str, at: datetime) -> None:
        self._enter("record_opt_in")
        known = self.opt_ins.get((business_id, phone_number))
        if known is None or known < at:
            self.opt_ins[(business_id, phone_number)] = at

    def last_opt_in(self, business_id: str, phone_number: str) -> datetime | None:
        self._enter("last_opt_in")
        return self.opt_ins.get((business_id, phone_number))

    def remove_opt_out(self, business_id: str, phone_number: str) -> None:
        self._enter("remove_opt_out")
        if self.opt_outs.pop((business_id, phone_number), None) is None:
            raise NotFoundError("opt-out not found", field="phoneNumber")

    def list_opt_outs(self, business_id: str, limit: int, next_token: str | None) -> Page[OptOut]:
        self._enter("list_opt_outs")
        return _page(
            [
                (
                    {PARTITION_KEY: _biz(business_id), SORT_KEY: f"OPTOUT#{phone}"},
                    OptOut.model_validate(item, context=_STORAGE),
                )
                for (owner, phone), item in self.opt_outs.items()
                if owner == business_id
            ],
            partition_attribute=PARTITION_KEY,
            partition_value=_biz(business_id),
            sort_attribute=SORT_KEY,
            sort_prefix="OPTOUT#",
            limit=limit,
            next_token=next_token,
        )


# Secrets ----------------------------------------------------------------------------------------------------------
class FakeSecretStore(_Scripted):
    """Secrets Manager: create-or-new-version on put (tags are set at creation), idempotent delete."""

    def __init__(self, prefix: str = "wabacast-test") -> None:
        super().__init__()
        self._prefix = prefix
        self.secrets: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.puts: list[str] = []
        self.deleted: list[str] = []

    def name_for_account(self, business_id: str, account_id: str) -> str:
        return f"{self._prefix}/{business_id}/accounts/{account_id}"

    def put(self, name: str, value: dict[str, Any], tags: dict[str, str]) -> None:
        self._enter("put")
        self.puts.append(name)
        if name not in self.secrets:
            self.tags[name] = dict(tags)
        self.secrets[name] = dict(value)

    def delete(self, name: str) -> None:
        self._enter("delete")
        self.deleted.append(name)
        self.secrets.pop(name, None)
        self.tags.pop(name, None)


# Delivery queues --------------------------------------------------------------------------------------------------
class FakeQueueProvisioner(_Scripted):
    """Records which accounts got delivery queues; provision is idempotent, as the SQS adapter's is."""

    def __init__(self) -> None:
        super().__init__()
        self.provisioned: dict[tuple[str, str], Account] = {}
        self.torn_down: list[tuple[str, str]] = []

    def provision(self, account: Account) -> None:
        self._enter("provision")
        self.provisioned[(account.business_id, account.id)] = account.model_copy(deep=True)

    def teardown(self, account: Account) -> None:
        self._enter("teardown")
        self.provisioned.pop((account.business_id, account.id), None)
        self.torn_down.append((account.business_id, account.id))


# Builders shared by the tests -------------------------------------------------------------------------------------
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "f" * 32
TWILIO_CREDENTIALS = {"accountSid": TWILIO_SID, "authToken": TWILIO_TOKEN}
META_CREDENTIALS = {
    "phoneNumberId": "109876543211234",
    "wabaId": "2345678901",
    "accessToken": "EAAG-a-long-enough-meta-access-token",
    "appSecret": "a" * 32,
}
CONTENT_SID = "HX" + "0123456789abcdef" * 2


def phone(n: int) -> str:
    """The n-th of a series of valid, distinct Spanish mobile numbers in E.164."""
    return f"+346123{n:05d}"
