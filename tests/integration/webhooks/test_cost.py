"""Cost per message through the webhook handler on moto: each job priced once, queue and account totals exact."""

from __future__ import annotations

import json

import pytest

from tests.integration.webhooks.conftest import (
    WebhookWorld,
    fixture,
    meta_account,
    meta_status,
    queue_for,
    twilio_account,
)
from wabacast.adapters.dynamodb.jobs import job_to_item
from wabacast.domain.jobs import Job
from wabacast.domain.receipts import job_reference
from wabacast.pricing import default_price_table

SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
NUMBER = "109876543210987"
TOKEN = "0123456789abcdef0123456789abcdef"


def as_mexican(world: WebhookWorld, jobs: list[Job]) -> list[Job]:
    """The same jobs, written again to Mexican numbers (+52)."""
    moved = [job.model_copy(update={"phone_number": f"+52155123{index:05d}"}) for index, job in enumerate(jobs)]
    world.table.batch_write([job_to_item(job) for job in moved])
    return moved


def test_delivered_read_and_duplicate_statuses_price_each_job_once_with_exact_totals(world: WebhookWorld) -> None:
    # GIVEN 50 sent jobs of a Meta account, 25 to Spain and 25 to Mexico
    account = meta_account(world, 1, NUMBER, SECRET)
    queue_id = queue_for(world, account["id"])
    jobs = world.sent_jobs(queue_id, account["id"], 50)
    jobs = jobs[:25] + as_mexican(world, jobs[25:])
    table = default_price_table()

    # WHEN Meta posts, per job, delivered (with pricing: billable marketing), read, then delivered again
    for job in jobs:
        for name in ("meta/status_delivered.json", "meta/status_read.json", "meta/status_delivered.json"):
            response = world.webhooks.meta(meta_status(name, job, NUMBER), SECRET)
            assert response.status == 200, response.body

    # THEN every job is priced once from the table for its country, and the totals are the exact sums
    spain, mexico = table.price("+34612300001", "marketing"), table.price("+5215512300000", "marketing")
    assert spain != mexico
    assert {world.job(job).cost_micros for job in jobs[:25]} == {spain}
    assert {world.job(job).cost_micros for job in jobs[25:]} == {mexico}
    expected = 25 * spain + 25 * mexico
    assert world.tally(queue_id).counters.cost_micros == expected
    assert world.jobs.account_cost(account["id"]) == expected
    # and the API shows them as decimal strings in the table's currency
    total = f"{expected // 1_000_000}.{expected % 1_000_000:06d}"
    progress = world.business.get(f"/api/whatsapp/queue/{queue_id}/process")
    assert progress.status == 200, progress.body
    assert progress.body["cost"] == {"currency": "USD", "total": total, "perRun": total}
    assert progress.body["counters"]["costMicros"] == expected
    queue = world.business.get(f"/api/whatsapp/queue/{queue_id}")
    assert queue.body["cost"]["total"] == total
    got = world.business.get(f"/api/whatsapp/accounts/{account['id']}")
    assert got.status == 200, got.body
    assert got.body["cost"] == {"currency": "USD", "total": total, "perRun": None}


def test_a_status_that_is_not_billable_records_zero(world: WebhookWorld) -> None:
    account = meta_account(world, 1, NUMBER, SECRET)
    queue_id = queue_for(world, account["id"])
    (job,) = world.sent_jobs(queue_id, account["id"], 1)
    payload = meta_status("meta/status_delivered.json", job, NUMBER)
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"]["billable"] = False

    assert world.webhooks.meta(payload, SECRET).status == 200

    assert world.job(job).cost_micros == 0
    assert world.tally(queue_id).counters.cost_micros == 0
    assert world.jobs.account_cost(account["id"]) == 0


def test_twilio_price_is_used_when_present_else_the_table_with_the_queues_category(world: WebhookWorld) -> None:
    # GIVEN two sent jobs of a Twilio account
    account = twilio_account(world, 1, TOKEN)
    queue_id = queue_for(world, account["id"], twilio=True)
    priced, unpriced = world.sent_jobs(queue_id, account["id"], 2, prefix="SM")

    # WHEN one delivery callback carries Twilio's Price and the other none
    for job, price in ((priced, "-0.0050"), (unpriced, None)):
        params: dict[str, str] = fixture("twilio/status_delivered.json")
        params["MessageSid"] = params["SmsSid"] = str(job.provider_message_id)
        if price is not None:
            params.update(Price=price, PriceUnit="USD")
        response = world.webhooks.twilio(account["id"], params, TOKEN, job_reference(job.queue_id, job.id))
        assert response.status == 200, response.body

    # THEN the first costs Twilio's amount, the second the table's for its country and the queue's category
    queue = world.business.get(f"/api/whatsapp/queue/{queue_id}").body
    from_table = default_price_table().price(unpriced.phone_number, queue["template"]["category"])
    assert world.job(priced).cost_micros == 5_000
    assert world.job(unpriced).cost_micros == from_table
    assert world.tally(queue_id).counters.cost_micros == 5_000 + from_table


def test_message_cost_is_emitted_once_per_job_for_its_account(
    world: WebhookWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a sent job of a Meta account to Spain
    account = meta_account(world, 1, NUMBER, SECRET)
    queue_id = queue_for(world, account["id"])
    (job,) = world.sent_jobs(queue_id, account["id"], 1)
    capsys.readouterr()

    # WHEN Meta posts its priced delivered status twice
    for _ in range(2):
        world.webhooks.meta(meta_status("meta/status_delivered.json", job, NUMBER), SECRET)

    # THEN one MessageCost point, in the table's currency, under the account's series
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    costs = [document for document in documents if "MessageCost" in document]
    assert [document["account"] for document in costs] == [account["id"]]
    assert costs[0]["MessageCost"] == [default_price_table().price(job.phone_number, "marketing") / 1_000_000]


def test_sent_then_read_then_a_late_delivered_price_the_job_once(world: WebhookWorld) -> None:
    # GIVEN a sent job of a Meta account
    account = meta_account(world, 1, NUMBER, SECRET)
    queue_id = queue_for(world, account["id"])
    (job,) = world.sent_jobs(queue_id, account["id"], 1)

    # WHEN the priced sent arrives, then the (unpriced) read, then the priced delivered, twice
    names = ["meta/status_sent.json", "meta/status_read.json", "meta/status_delivered.json"]
    results = [world.webhooks.meta(meta_status(name, job, NUMBER), SECRET) for name in [*names, names[-1]]]

    # THEN the sent wrote nothing, the late delivered recorded the cost, its duplicate nothing
    assert [result.body["applied"] for result in results] == [0, 1, 1, 0]
    price = default_price_table().price(job.phone_number, "marketing")
    assert world.job(job).cost_micros == price
    assert world.tally(queue_id).counters.cost_micros == price
    assert world.jobs.account_cost(account["id"]) == price
