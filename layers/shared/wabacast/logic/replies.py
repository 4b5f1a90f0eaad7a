"""Replies: stop and start keywords act on the business's opt-outs, and an account's inbound messages are listed.

Cost per inbound message (docs/architecture.md): its own item, plus at most one opt-out write (a conditional Put
for a stop keyword, a Delete for a start keyword, which also records its own time: see below). The business is
read once per request for its keywords; nothing shared is written, so a burst of replies spreads over the senders'
own opt-out items.

A stop keyword records an opt-out of scope `all`, source `stop_reply`. A start keyword removes the business's
opt-out for that number whatever its source: the person asked, in writing, to hear from the business again,
which outweighs an earlier stop (a reply, a provider's 131050, or an API call made on their behalf).

Order is the messages' own (Meta's `timestamp`; Twilio sends none, so the time it reached us), not the order the
webhooks arrive in: providers retry a webhook for days, so a STOP can arrive after the START written after it.
A start keyword's time is remembered (ReplyOptOuts.record_opt_in); a stop older than it opts nobody out, and a
start older than the opt-out it finds leaves it. A stop is written first and checked after, so a start handled
at the same moment by another request is still seen (one read per stop keyword, one write and one read per
start keyword; a superseded stop costs one more write, its removal).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from wabacast.clock import Clock, utc_now
from wabacast.domain.models import Account, Business, OptOut, OptOutSource, Page
from wabacast.domain.replies import ReplyAction, ReplyKeywords, could_be_keyword
from wabacast.domain.webhooks import InboundMessage
from wabacast.errors import NotFoundError
from wabacast.logic.fates import OptOutWriter
from wabacast.logic.ports import MetricsSink
from wabacast.phone import normalize_phone_number


class BusinessReader(Protocol):
    def get(self, business_id: str) -> Business | None: ...


class ReplyOptOuts(OptOutWriter, Protocol):
    def remove_opt_out(self, business_id: str, phone_number: str) -> None:
        """NotFoundError when the number has no opt-out."""
        ...

    def get_opt_out(self, business_id: str, phone_number: str) -> OptOut | None: ...

    def record_opt_in(self, business_id: str, phone_number: str, at: datetime) -> None:
        """Keep the latest time the number asked to hear from the business again."""
        ...

    def last_opt_in(self, business_id: str, phone_number: str) -> datetime | None: ...


class InboundReader(Protocol):
    def list(self, account_id: str, limit: int, next_token: str | None) -> Page[InboundMessage]: ...


class AccountFinder(Protocol):
    def get(self, business_id: str, account_id: str) -> Account:
        """NotFoundError for a missing account, or one of another business."""
        ...


class ReplyKeywordHandler:
    def __init__(
        self,
        businesses: BusinessReader,
        contacts: ReplyOptOuts,
        metrics: MetricsSink,
        clock: Clock = utc_now,
    ) -> None:
        self._businesses = businesses
        self._contacts = contacts
        self._metrics = metrics
        self._clock = clock

    def act(self, messages: Sequence[InboundMessage]) -> list[InboundMessage]:
        """Apply each message's keyword, in the order received; the messages come back with what each did."""
        keywords: dict[str, ReplyKeywords] = {}
        acted: list[InboundMessage] = []
        for message in sorted(messages, key=lambda message: message.received_at):
            if not could_be_keyword(message.text):
                acted.append(message)  # a conversation: no need to read the business's keywords
                continue
            if message.business_id not in keywords:
                business = self._businesses.get(message.business_id)
                keywords[message.business_id] = ReplyKeywords(
                    business.stop_keywords if business else None, business.start_keywords if business else None
                )
            action = keywords[message.business_id].action(message.text)
            if action is not None and not _valid_number(message.from_number):
                action = None  # not a number an opt-out can name; the message is still kept
            if action == ReplyAction.OPTED_OUT:
                self._opt_out(message)
            elif action == ReplyAction.OPTED_IN:
                self._opt_in(message)
            # The action is what the keyword asked for, even when the number was already in that state: a webhook
            # delivered twice then records the same thing twice.
            acted.append(replace(message, action=action))
        return acted

    def _opt_out(self, message: InboundMessage) -> None:
        _, created = self._contacts.add_opt_out(
            message.business_id,
            OptOut(
                phone_number=message.from_number,
                reason=f"replied {message.text.strip()[:60]!r}",
                source=OptOutSource.STOP_REPLY,
                created_at=message.received_at,
            ),
        )
        # Checked after the write: a start handled meanwhile by another request has been recorded by now.
        opted_in = self._contacts.last_opt_in(message.business_id, message.from_number)
        if opted_in is not None and opted_in > message.received_at:
            # Written before a start that was handled first (a late or retried webhook): the start stands.
            if created:
                with contextlib.suppress(NotFoundError):
                    self._contacts.remove_opt_out(message.business_id, message.from_number)
            self._metrics.add("ReplyOptOutsSuperseded", 1, account_id=message.account_id)
            return
        if created:
            self._metrics.add("ReplyOptOuts", 1, account_id=message.account_id)

    def _opt_in(self, message: InboundMessage) -> None:
        # Remembered first: a stop written before this start but handled after it must find it.
        self._contacts.record_opt_in(message.business_id, message.from_number, message.received_at)
        current = self._contacts.get_opt_out(message.business_id, message.from_number)
        if current is None:
            return  # not opted out: nothing to undo
        if current.created_at > message.received_at:
            return  # an opt-out made after this start (a late webhook of the start): it stands
        try:
            self._contacts.remove_opt_out(message.business_id, message.from_number)
        except NotFoundError:
            return
        self._metrics.add("ReplyOptIns", 1, account_id=message.account_id)


def _valid_number(number: str) -> bool:
    try:
        normalize_phone_number(number)
    except ValueError:
        return False
    return True


class InboundService:
    """An account's inbound messages, for its own business only."""

    def __init__(self, accounts: AccountFinder, store: InboundReader) -> None:
        self._accounts = accounts
        self._store = store

    def list(self, business_id: str, account_id: str, limit: int, next_token: str | None) -> Page[InboundMessage]:
        account = self._accounts.get(business_id, account_id)  # 404 for another business's account
        return self._store.list(account.id, limit, next_token)
