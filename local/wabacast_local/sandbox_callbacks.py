"""Status callbacks of the sandbox provider: what Meta posts to a business's webhook after a send.

For every accepted message the sandbox plans `sent`, then `delivered` and (for a share of messages) `read`, each a
Meta-shaped notification (`object: whatsapp_business_account`, `entry[].changes[].value.statuses[]`) signed as Meta
signs it: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, key: the app secret>`.

Chaos, as real webhooks behave: a delay before delivered and before read (ranges), loss (a callback never posted),
duplicates (posted twice) and reordering (read posted before delivered). Planning is a pure function of a random
source, so tests inject one. Posting happens on a few worker threads fed by a timer queue, never on the send's
request thread; statuses of one number that fall due together share a notification (as Meta batches them); a
callback whose answer is not 2xx is tried again a few times, as Meta retries.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

STATUS_SENT = "sent"
STATUS_DELIVERED = "delivered"
STATUS_READ = "read"
SIGNATURE_HEADER = "X-Hub-Signature-256"
# Meta retries a webhook that is not answered 200; the sandbox tries this many times in all, this far apart.
MAX_POST_ATTEMPTS = 3
RETRY_DELAY_S = 1.0
POST_TIMEOUT_S = 30.0
MAX_ANSWER_CHARS = 500
STOP_GRACE_S = 3.0
# Statuses of one phone number that fall due together go out in one notification, up to this many (Meta batches
# too; a receiver must handle several statuses, of several messages or of one, in one request).
MAX_STATUSES_PER_POST = 25


@dataclass(frozen=True)
class PlannedCallback:
    """One post to make: `status` for the message, `delay_s` after the send was accepted."""

    status: str
    delay_s: float
    duplicate: bool = False


@dataclass(frozen=True)
class CallbackPlan:
    posts: list[PlannedCallback]
    # Statuses that will never be posted (loss).
    lost: list[str]


@dataclass(frozen=True)
class CallbackChaos:
    """Delays in ms as [low, high] ranges; shares between 0 and 1."""

    sent_delay_ms: tuple[float, float] = (50.0, 200.0)
    delivered_delay_ms: tuple[float, float] = (200.0, 1500.0)
    read_delay_ms: tuple[float, float] = (1000.0, 5000.0)
    read_rate: float = 0.6
    loss_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0


def plan_callbacks(chaos: CallbackChaos, draw: random.Random, answer_delay_s: float = 0.0) -> CallbackPlan:
    """The callbacks of one accepted message, in the order they will be posted.

    `sent` comes after the send's answer; delivered after sent by `delivered_delay_ms`; read after delivered by
    `read_delay_ms` for a `read_rate` share. With `reorder_rate`, read is posted that far *before* delivered
    instead. Each status is then lost with `loss_rate`, or else posted twice with `duplicate_rate`.
    """
    sent_at = answer_delay_s + draw.uniform(*chaos.sent_delay_ms) / 1000
    delivered_at = sent_at + draw.uniform(*chaos.delivered_delay_ms) / 1000
    timeline = [(STATUS_SENT, sent_at), (STATUS_DELIVERED, delivered_at)]
    if draw.random() < chaos.read_rate:
        read_gap = draw.uniform(*chaos.read_delay_ms) / 1000
        if draw.random() < chaos.reorder_rate:
            # Read overtakes delivered: read where delivered was, delivered read_gap later.
            timeline = [
                (STATUS_SENT, sent_at),
                (STATUS_READ, delivered_at),
                (STATUS_DELIVERED, delivered_at + read_gap),
            ]
        else:
            timeline.append((STATUS_READ, delivered_at + read_gap))
    posts: list[PlannedCallback] = []
    lost: list[str] = []
    for status, at in timeline:
        if draw.random() < chaos.loss_rate:
            lost.append(status)
            continue
        posts.append(PlannedCallback(status, at))
        if draw.random() < chaos.duplicate_rate:
            posts.append(PlannedCallback(status, at + draw.uniform(0.0, 0.5), duplicate=True))
    posts.sort(key=lambda post: post.delay_s)
    return CallbackPlan(posts=posts, lost=lost)


def display_phone_number(phone_number_id: str) -> str:
    """A stable Meta test-style number (1 555 ...) for a phone number id: the sandbox does not know the real one."""
    digits = int(hashlib.sha256(phone_number_id.encode()).hexdigest()[:12], 16) % 10_000_000
    return f"1555{digits:07d}"


def status_notification(message: dict[str, Any], status: str, timestamp: int) -> dict[str, Any]:
    """Meta's webhook notification for one status of one sandbox message (a record of SandboxState.messages)."""
    return statuses_notification([(message, status)], timestamp)


def statuses_notification(items: list[tuple[dict[str, Any], str]], timestamp: int) -> dict[str, Any]:
    """One notification carrying several statuses of one phone number's messages, as Meta batches them when they
    fall due together (`statuses[]` holds one entry per status, in order)."""
    phone_number_id = str(items[0][0]["phoneNumberId"])
    return _notification(phone_number_id, [_status_entry(message, status, timestamp) for message, status in items])


def _status_entry(message: dict[str, Any], status: str, timestamp: int) -> dict[str, Any]:
    phone_number_id = str(message["phoneNumberId"])
    entry: dict[str, Any] = {
        "id": str(message["id"]),
        "status": status,
        "timestamp": str(timestamp),
        "recipient_id": str(message["to"]),
    }
    if message.get("callbackData"):
        entry["biz_opaque_callback_data"] = message["callbackData"]
    if status in (STATUS_SENT, STATUS_DELIVERED):
        # As Meta sends them on sent and delivered, billed in the category of the template sent (the sandbox's
        # catalogue; marketing for a template it does not know).
        category = str(message.get("category") or "marketing")
        entry["conversation"] = {
            "id": hashlib.sha256(f"{phone_number_id}/{message['to']}".encode()).hexdigest()[:32],
            "expiration_timestamp": str(timestamp + 24 * 3600),
            "origin": {"type": category},
        }
        entry["pricing"] = {"billable": True, "pricing_model": "PMP", "category": category, "type": "regular"}
    return entry


def _notification(phone_number_id: str, statuses: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": phone_number_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": display_phone_number(phone_number_id),
                                "phone_number_id": phone_number_id,
                            },
                            "statuses": statuses,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def _number(due: _Due) -> str:
    return str(due.message["phoneNumberId"])


def sign(raw_body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` header value Meta sends with `raw_body`."""
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class CallbackTarget:
    url: str
    app_secret: str


@dataclass(order=True)
class _Due:
    at: float
    order: int
    message: dict[str, Any]
    status: str
    duplicate: bool
    attempt: int
    target: CallbackTarget
    # An account notification posted as it is (quality, template status); None: the message's status callback.
    payload: dict[str, Any] | None = None


class CallbackDispatcher:
    """A timer queue and a few worker threads posting due callbacks; a log of every post and its answer."""

    def __init__(
        self,
        *,
        workers: int = 4,
        max_batch: int = MAX_STATUSES_PER_POST,
        max_log: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        post: Callable[[str, bytes, dict[str, str]], tuple[int, str]] | None = None,
    ) -> None:
        self._workers = workers
        self._max_batch = max(1, max_batch)
        self._clock = clock
        self._wall_clock = wall_clock
        self._post = post
        self._condition = threading.Condition()
        self._heap: list[_Due] = []
        self._order = itertools.count()
        self._log: deque[dict[str, Any]] = deque(maxlen=max_log)
        self._counters: Counter[str] = Counter()
        self._in_flight = 0
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._client: httpx.Client | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> None:
        with self._condition:
            if self._threads:
                return
            self._stopping = False
            if self._post is None:
                self._client = httpx.Client(timeout=POST_TIMEOUT_S)
            self._threads = [
                threading.Thread(target=self._work, name=f"sandbox-callbacks-{index}", daemon=True)
                for index in range(self._workers)
            ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop posting: what is not due yet is dropped (and counted); posts under way get STOP_GRACE_S."""
        with self._condition:
            self._stopping = True
            self._counters["droppedAtStop"] += len(self._heap)
            self._heap.clear()
            self._condition.notify_all()
            threads, self._threads = self._threads, []
        # Posts under way get a moment; a webhook that takes longer must not hold up the stack's shutdown (the
        # threads are daemons, and the client stays open for them).
        deadline = time.monotonic() + STOP_GRACE_S
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if not any(thread.is_alive() for thread in threads):
            client, self._client = self._client, None
            if client is not None:
                client.close()

    # -- scheduling -------------------------------------------------------------------------------------------
    def schedule(self, message: dict[str, Any], plan: CallbackPlan, target: CallbackTarget) -> None:
        now = self._clock()
        with self._condition:
            if self._stopping:
                return
            for status in plan.lost:
                self._counters["lost"] += 1
                self._log.append({"messageId": message["id"], "status": status, "outcome": "lost"})
            for post in plan.posts:
                self._counters["scheduled"] += 1
                heapq.heappush(
                    self._heap,
                    _Due(now + post.delay_s, next(self._order), message, post.status, post.duplicate, 1, target),
                )
            self._condition.notify_all()

    def schedule_notification(self, field: str, body: dict[str, Any], target: CallbackTarget) -> None:
        """Post an account notification (`phone_number_quality_update`, `message_template_status_update`) now,
        signed and retried like the status callbacks; logged with `status` = its field and no message id."""
        with self._condition:
            if self._stopping:
                return
            self._counters["scheduled"] += 1
            message = {"id": None, "callbackData": None}
            heapq.heappush(
                self._heap, _Due(self._clock(), next(self._order), message, field, False, 1, target, dict(body))
            )
            self._condition.notify_all()

    def pending(self) -> int:
        with self._condition:
            return len(self._heap) + self._in_flight

    def run_due(self) -> int:
        """Post what is due now on the calling thread (for tests with an injected clock); returns how many."""
        done = 0
        while (batch := self._take_due(block=False)) is not None:
            self._deliver(batch)
            done += len(batch)
        return done

    # -- inspection -------------------------------------------------------------------------------------------
    def log(self, message_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        with self._condition:
            entries = [dict(entry) for entry in self._log]
        if message_id is not None:
            entries = [entry for entry in entries if entry["messageId"] == message_id]
        return entries[-limit:] if limit else entries

    def summary(self) -> dict[str, int]:
        with self._condition:
            counters = dict(self._counters)
            pending = len(self._heap) + self._in_flight
        keys = (
            "scheduled",
            "posted",
            "requests",
            "acknowledged",
            "refused",
            "unreachable",
            "retried",
            "lost",
            "droppedAtStop",
        )
        return {**{key: counters.get(key, 0) for key in keys}, "pending": pending}

    def clear(self) -> None:
        with self._condition:
            self._log.clear()
            self._counters.clear()

    # -- workers ----------------------------------------------------------------------------------------------
    def _take_due(self, *, block: bool) -> list[_Due] | None:
        """The callbacks due now for the first due one's webhook and phone number (at most `max_batch`), posted
        together as Meta batches statuses that fall due at once."""
        with self._condition:
            while True:
                if self._stopping:
                    return None
                now = self._clock()
                if self._heap and self._heap[0].at <= now:
                    first = heapq.heappop(self._heap)
                    batch, kept = [first], []
                    # An account notification (a payload of its own) goes alone.
                    limit = 1 if first.payload is not None else self._max_batch
                    while self._heap and self._heap[0].at <= now and len(batch) < limit:
                        due = heapq.heappop(self._heap)
                        if due.payload is None and due.target == first.target and _number(due) == _number(first):
                            batch.append(due)
                        else:
                            kept.append(due)
                    for due in kept:
                        heapq.heappush(self._heap, due)
                    self._in_flight += len(batch)
                    return batch
                if not block:
                    return None
                self._condition.wait(timeout=min(self._heap[0].at - now, 0.5) if self._heap else 0.5)

    def _work(self) -> None:
        while (batch := self._take_due(block=True)) is not None:
            self._deliver(batch)

    def _deliver(self, batch: list[_Due]) -> None:
        try:
            self._post_once(batch)
        finally:
            with self._condition:
                self._in_flight -= len(batch)

    def _post_once(self, batch: list[_Due]) -> None:
        timestamp = int(self._wall_clock())
        first = batch[0]
        notification = (
            first.payload
            if first.payload is not None
            else statuses_notification([(due.message, due.status) for due in batch], timestamp)
        )
        raw = json.dumps(notification, separators=(",", ":")).encode()
        target = batch[0].target
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(raw, target.app_secret)}
        try:
            status_code, answer = self._send(target.url, raw, headers)
        except httpx.HTTPError as error:
            status_code, answer = 0, f"{type(error).__name__}: {error}"
        acknowledged = 200 <= status_code < 300
        outcome = "acknowledged" if acknowledged else ("unreachable" if status_code == 0 else "refused")
        with self._condition:
            self._counters["posted"] += len(batch)
            self._counters[outcome] += len(batch)
            self._counters["requests"] += 1
            for due in batch:
                self._log.append(
                    {
                        "messageId": due.message["id"],
                        "reference": due.message.get("callbackData"),
                        "status": due.status,
                        "duplicate": due.duplicate,
                        "attempt": due.attempt,
                        "postedAt": timestamp,
                        "batchSize": len(batch),
                        "httpStatus": status_code,
                        "answer": answer[:MAX_ANSWER_CHARS],
                        "outcome": outcome,
                    }
                )
                if not acknowledged and due.attempt < MAX_POST_ATTEMPTS and not self._stopping:
                    self._counters["retried"] += 1
                    retry = _Due(
                        self._clock() + RETRY_DELAY_S * due.attempt,
                        next(self._order),
                        due.message,
                        due.status,
                        due.duplicate,
                        due.attempt + 1,
                        due.target,
                        due.payload,
                    )
                    heapq.heappush(self._heap, retry)
            self._condition.notify_all()

    def _send(self, url: str, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
        if self._post is not None:
            return self._post(url, raw, headers)
        client = self._client
        if client is None:
            raise httpx.TransportError("the callback dispatcher is stopped")
        response = client.post(url, content=raw, headers=headers)
        return response.status_code, response.text
