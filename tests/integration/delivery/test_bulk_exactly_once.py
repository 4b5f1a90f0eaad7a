"""A 5,000-recipient queue: every recipient gets exactly one message, opted-out numbers none (slow: own file)."""

from __future__ import annotations

from collections.abc import Callable

from tests.integration.conftest import ApiClient, phone
from tests.integration.delivery.conftest import (
    Pipeline,
    new_queue,
    opt_out,
    process,
    sandbox_account,
    upload_contacts,
)

CONTACTS = 5000


def test_every_recipient_of_a_5000_recipient_queue_gets_exactly_one_message(
    business: ApiClient, make_pipeline: Callable[..., Pipeline]
) -> None:
    # GIVEN 5,000 contacts tagged "all", uploaded 1,000 at a time
    contacts = [phone(10_000 + n) for n in range(CONTACTS)]
    upload_contacts(business, contacts, ["all"])
    # AND inline recipients: every 100th contact again, and numbers that are no contact
    inline_only = [phone(20_000 + n) for n in range(10)]
    inline = contacts[::100] + inline_only
    # AND a few opted-out numbers: contacts (one of them also inline) and an inline-only one
    opted_out = {contacts[7], contacts[1_234], contacts[4_999], contacts[300], inline_only[3]}
    for number in sorted(opted_out):
        opt_out(business, number)
    # AND an account fast enough for the test (the rate limit is not what this checks)
    account = sandbox_account(business, phone(1), mps=1000, daily=1_000_000)
    pipeline = make_pipeline(feed_window_s=1)
    queue = new_queue(business, audience={"recipients": [{"phoneNumber": n} for n in inline], "contactTags": ["all"]})

    # WHEN the queue is processed to the end
    process(business, queue["id"])
    progress = pipeline.run_until_settled(queue["id"], max_rounds=20, concurrency=2)[queue["id"]]

    # THEN it completed
    assert progress["status"] == "COMPLETED", progress
    # AND the sandbox holds exactly one message per distinct recipient that did not opt out, none for the others
    distinct = set(contacts) | set(inline)
    expected = distinct - opted_out
    messaged = pipeline.recipients_messaged()
    assert set(messaged) == expected, (len(set(messaged) - expected), len(expected - set(messaged)))
    assert [number for number, count in messaged.items() if count != 1] == []
    # AND every message went out from the queue's account with its template
    messages = pipeline.sandbox_messages()
    assert {(m["phoneNumberId"], m["template"], m["language"]) for m in messages} == {
        (account["id"], "spring_sale", "en_US")
    }
    # AND the counters say the same and add up
    counters = progress["counters"]
    assert counters["total"] == len(distinct)
    assert counters["optedOut"] == len(opted_out)
    assert counters["sent"] == len(expected)
    assert counters["pending"] == 0
    assert counters["failed"] == counters["skipped"] == 0
    assert counters["total"] == (
        counters["pending"] + counters["sent"] + counters["failed"] + counters["optedOut"] + counters["skipped"]
    )
    assert progress["percentDone"] == 100.0
