"""Stop and start keywords in replies: normalization, per-business lists, and what a reply does to opt-outs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from tests.unit.delivery_fakes import FakeMetrics
from tests.unit.fakes import FakeContactStore, phone
from wabacast.domain.models import Business, OptOut, OptOutSource
from wabacast.domain.replies import Keywords, ReplyAction, ReplyKeywords, normalize_keyword
from wabacast.domain.webhooks import InboundMessage
from wabacast.logic.replies import ReplyKeywordHandler

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
BIZ = "biz_1"


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("BAJA", "BAJA"),
        ("  Baja ", "BAJA"),
        ("bája", "BAJA"),
        ("B A J A", "BAJA"),
        ("stop\n", "STOP"),
        ("Stop please", "STOPPLEASE"),
        ("\uff33\uff34\uff2f\uff30", "STOP"),  # full-width letters (NFKD)
        ("Suscríbir", "SUSCRIBIR"),
        ("", ""),
    ],
)
def test_keywords_are_compared_without_case_accents_or_spaces(text: str, normalized: str) -> None:
    assert normalize_keyword(text) == normalized


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("  Baja ", ReplyAction.OPTED_OUT),
        ("bája", ReplyAction.OPTED_OUT),
        ("stop", ReplyAction.OPTED_OUT),
        ("Opt out", ReplyAction.OPTED_OUT),
        ("detener", ReplyAction.OPTED_OUT),
        ("alta", ReplyAction.OPTED_IN),
        ("Start", ReplyAction.OPTED_IN),
        ("stop please", None),
        ("Stop promotions", None),
        ("gracias", None),
        ("", None),
    ],
)
def test_the_default_keywords_decide_on_the_whole_text(text: str, action: ReplyAction | None) -> None:
    assert ReplyKeywords(None, None).action(text) == action


def test_a_business_list_replaces_the_defaults() -> None:
    # GIVEN a business whose stop keyword is "no más" and start keyword "volver"
    keywords = ReplyKeywords(["no más"], ["Volver"])
    # THEN its words act, the default ones no longer do
    assert keywords.action("NO MAS") == ReplyAction.OPTED_OUT
    assert keywords.action("volver") == ReplyAction.OPTED_IN
    assert keywords.action("STOP") is None
    assert keywords.action("ALTA") is None


@pytest.mark.parametrize(
    "words",
    [
        [],
        ["x" * 31],
        ["\ufb03" * 11],
        [""],
        ["   "],
        ["st\u200bop"],
        ["a\nb"],
        ["Baja", "bája"],
        [f"w{n}" for n in range(21)],
    ],
)
def test_keyword_lists_are_validated(words: list[str]) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Keywords).validate_python(words)


def test_keyword_lists_within_the_rules_are_kept_as_written() -> None:
    words = ["No más", "x" * 30, *[f"w{n}" for n in range(18)]]
    assert TypeAdapter(Keywords).validate_python(words) == words


class Businesses:
    def __init__(self, business: Business | None) -> None:
        self.business = business
        self.reads = 0

    def get(self, business_id: str) -> Business | None:
        self.reads += 1
        return self.business


def message(text: str, number: int = 1, *, second: int = 0) -> InboundMessage:
    return InboundMessage(
        business_id=BIZ,
        account_id="acc_1",
        provider_message_id=f"wamid.{number}.{second}",
        from_number=phone(number),
        kind="text",
        text=text,
        received_at=NOW.replace(second=second),
    )


def handler(business: Business | None = None) -> tuple[ReplyKeywordHandler, FakeContactStore, Businesses]:
    contacts = FakeContactStore()
    businesses = Businesses(business)
    return ReplyKeywordHandler(businesses, contacts, FakeMetrics()), contacts, businesses


def test_a_stop_reply_opts_the_sender_out_with_its_source_and_time() -> None:
    # GIVEN the default keywords
    replies, contacts, businesses = handler()
    # WHEN two people write "BAJA" and "gracias" in one request
    acted = replies.act([message(" Bája ", 1), message("gracias", 2)])
    # THEN only the first is opted out, as a reply, at the reply's time; the business is read once
    assert [m.action for m in acted] == [ReplyAction.OPTED_OUT, None]
    opt_out = contacts.get_opt_out(BIZ, phone(1))
    assert opt_out is not None
    assert (opt_out.source, opt_out.created_at) == (OptOutSource.STOP_REPLY, NOW)
    assert (BIZ, phone(2)) not in contacts.opt_outs
    assert businesses.reads == 1


def test_a_start_reply_removes_any_opt_out_of_the_number() -> None:
    # GIVEN a number a provider opted out (131050)
    replies, contacts, _ = handler()
    contacts.add_opt_out(BIZ, OptOut(phone_number=phone(1), source=OptOutSource.PROVIDER, created_at=NOW))
    # WHEN it writes ALTA, and another number that never opted out writes START
    acted = replies.act([message("ALTA", 1), message("start", 2)])
    # THEN the opt-out is gone; the second is reported as opted in too (what it asked for)
    assert (BIZ, phone(1)) not in contacts.opt_outs
    assert [m.action for m in acted] == [ReplyAction.OPTED_IN, ReplyAction.OPTED_IN]


def test_replies_act_in_the_order_they_were_written() -> None:
    # GIVEN STOP then ALTA from the same number, delivered in reverse order
    replies, contacts, _ = handler()
    replies.act([message("ALTA", 1, second=5), message("STOP", 1, second=1)])
    # THEN the later one wins: not opted out
    assert (BIZ, phone(1)) not in contacts.opt_outs


def test_a_business_with_its_own_keywords_uses_them() -> None:
    # GIVEN a business whose only stop keyword is "NO MAS"
    business = Business(
        id=BIZ, name="Acme", timezone="UTC", created_at=NOW, stop_keywords=["No más"], start_keywords=["Volver"]
    )
    replies, contacts, _ = handler(business)
    # WHEN one number writes STOP and another "no mas"
    acted = replies.act([message("STOP", 1), message("no mas", 2)])
    # THEN only the business's own keyword opts out
    assert [m.action for m in acted] == [None, ReplyAction.OPTED_OUT]
    assert set(contacts.opt_outs) == {(BIZ, phone(2))}


def test_a_long_reply_is_conversation_and_reads_no_keywords() -> None:
    # GIVEN a reply longer than any keyword can be
    replies, contacts, businesses = handler()
    # WHEN it arrives
    (acted,) = replies.act([message("stop " * 10)])
    # THEN nothing is read or written
    assert acted.action is None
    assert businesses.reads == 0
    assert contacts.opt_outs == {}


def test_a_stop_delivered_after_a_later_start_opts_nobody_out() -> None:
    # GIVEN a number that wrote STOP at :01 and ALTA at :05, the ALTA handled first (the STOP's webhook was retried)
    replies, contacts, _ = handler()
    replies.act([message("ALTA", 1, second=5)])

    # WHEN the STOP arrives, and again (providers repeat a webhook)
    replies.act([message("STOP", 1, second=1)])
    replies.act([message("STOP", 1, second=1)])

    # THEN the later ALTA stands: the number is not opted out
    assert contacts.get_opt_out(BIZ, phone(1)) is None


def test_a_stop_written_after_the_last_start_still_opts_out_once() -> None:
    # GIVEN a number that wrote ALTA at :01
    replies, contacts, _ = handler()
    replies.act([message("ALTA", 1, second=1)])

    # WHEN its STOP of :05 arrives, twice
    replies.act([message("STOP", 1, second=5)])
    replies.act([message("STOP", 1, second=5)])

    # THEN it is opted out, at the STOP's time, once
    opt_out = contacts.get_opt_out(BIZ, phone(1))
    assert opt_out is not None
    assert opt_out.created_at == NOW.replace(second=5)


def test_a_start_delivered_after_a_later_stop_leaves_the_opt_out() -> None:
    # GIVEN a number that wrote ALTA at :01 and STOP at :05, the STOP handled first
    replies, contacts, _ = handler()
    replies.act([message("STOP", 1, second=5)])

    # WHEN the older ALTA arrives
    replies.act([message("ALTA", 1, second=1)])

    # THEN the later STOP stands
    assert contacts.get_opt_out(BIZ, phone(1)) is not None


def test_the_last_start_is_remembered_not_an_older_one_delivered_late() -> None:
    # GIVEN a number that wrote ALTA at :09, then a retried ALTA of :02 arrives
    replies, contacts, _ = handler()
    replies.act([message("ALTA", 1, second=9)])
    replies.act([message("ALTA", 1, second=2)])

    # WHEN a STOP of :05 arrives
    replies.act([message("STOP", 1, second=5)])

    # THEN the ALTA of :09 still outranks it
    assert contacts.get_opt_out(BIZ, phone(1)) is None
