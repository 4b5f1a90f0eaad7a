"""Which account sends, and what the provider's answers do: fallback, opt-outs, queue-pausing errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.conftest import ApiClient, phone
from tests.integration.delivery.conftest import (
    Pipeline,
    assert_counters_add_up,
    digits,
    error_counts,
    new_queue,
    opt_out,
    process,
    sandbox_account,
)
from wabacast_local.sandbox import SandboxServer

UNHEALTHY = [
    pytest.param({"status": "SUSPENDED"}, id="suspended"),
    pytest.param({"qualityRating": "RED"}, id="quality-red"),
]


def update_account(api: ApiClient, account_id: str, **fields: object) -> None:
    response = api.put(f"/api/whatsapp/accounts/{account_id}", fields)
    assert response.status == 200, response.body


@pytest.mark.parametrize("trouble", UNHEALTHY)
def test_a_queue_whose_account_cannot_send_goes_out_through_the_default_account(
    business: ApiClient, pipeline: Pipeline, trouble: dict[str, str]
) -> None:
    # GIVEN a queue on the primary account, and an ACTIVE default account
    primary = sandbox_account(business, phone(1))
    default = sandbox_account(business, phone(2), isDefault=True)
    recipients = [phone(7_000 + n) for n in range(12)]
    queue = new_queue(business, recipients, accountId=primary["id"])
    process(business, queue["id"])
    # AND then the primary account stops being able to send
    update_account(business, primary["id"], **trouble)

    # WHEN the queue is processed
    progress = pipeline.run_until_settled(queue["id"], max_rounds=5)[queue["id"]]

    # THEN it completed, every message sent from the default account, none from the primary
    assert progress["status"] == "COMPLETED", progress
    assert progress["counters"]["sent"] == len(recipients)
    messages = pipeline.sandbox_messages()
    assert {message["phoneNumberId"] for message in messages} == {default["id"]}
    assert pipeline.recipients_messaged() == dict.fromkeys(recipients, 1)
    assert {job.account_id for job in pipeline.jobs(queue["id"])} == {default["id"]}
    assert pipeline.backlog(primary["id"]) == 0


def test_jobs_stranded_in_a_suspended_accounts_queue_go_out_through_the_default_account_once(
    business: ApiClient, make_pipeline: Callable[..., Pipeline]
) -> None:
    # GIVEN a queue whose jobs are already in its account's SQS queue when that account is suspended (its
    # sender mapping is then disabled, so they stay there)
    primary = sandbox_account(business, phone(1))
    default = sandbox_account(business, phone(2), isDefault=True)
    pipeline = make_pipeline(requeue_after_s=0.001)
    recipients = [phone(7_050 + n) for n in range(3)]
    queue = new_queue(business, recipients, accountId=primary["id"])
    process(business, queue["id"])
    pipeline.tick()
    assert pipeline.backlog(primary["id"]) == 3
    update_account(business, primary["id"], status="SUSPENDED")

    # WHEN the planner finds them still QUEUED after `requeue_after_s`, and the senders run
    progress = pipeline.run_until_settled(queue["id"], max_rounds=5)[queue["id"]]

    # THEN they were fed again through the default account and sent from it, once each
    assert progress["status"] == "COMPLETED", progress
    assert {message["phoneNumberId"] for message in pipeline.sandbox_messages()} == {default["id"]}
    assert pipeline.recipients_messaged() == dict.fromkeys(recipients, 1)
    # AND when the account is active again, the stale copies in its queue are acknowledged, not sent
    update_account(business, primary["id"], status="ACTIVE")
    pipeline.drain()
    assert pipeline.backlog(primary["id"]) == 0
    assert pipeline.recipients_messaged() == dict.fromkeys(recipients, 1)


@pytest.mark.parametrize("trouble", UNHEALTHY)
def test_a_queue_whose_account_cannot_send_and_no_healthy_default_is_paused_with_the_reason(
    business: ApiClient, pipeline: Pipeline, trouble: dict[str, str]
) -> None:
    # GIVEN a queue on an account that then cannot send, and a default account that is RED
    primary = sandbox_account(business, phone(1))
    sandbox_account(business, phone(2), isDefault=True, qualityRating="RED")
    queue = new_queue(business, [phone(7_100), phone(7_101)], accountId=primary["id"])
    process(business, queue["id"])
    update_account(business, primary["id"], **trouble)

    # WHEN the planner runs, and the senders
    pipeline.tick()
    pipeline.drain()

    # THEN the queue is PAUSED, saying why, and nothing was sent
    progress = pipeline.progress(queue["id"])
    assert progress["status"] == "PAUSED"
    reason = progress["statusReason"]
    assert primary["id"] in reason
    assert "cannot send" in reason
    assert "no healthy default account" in reason
    assert pipeline.sandbox_messages() == []
    assert_counters_add_up(progress["counters"])
    # AND the planner no longer works on it
    assert pipeline.tick()["accounts"] == 0


def test_a_queue_whose_only_account_is_suspended_is_paused(business: ApiClient, pipeline: Pipeline) -> None:
    # GIVEN a queue on the business's only account, which is then suspended
    account = sandbox_account(business, phone(1))
    queue = new_queue(business, [phone(7_200)])
    process(business, queue["id"])
    update_account(business, account["id"], status="SUSPENDED")

    # WHEN the planner runs
    pipeline.tick()

    # THEN the queue is paused with the reason
    progress = pipeline.progress(queue["id"])
    assert progress["status"] == "PAUSED"
    assert "SUSPENDED" in progress["statusReason"]
    assert pipeline.sandbox_messages() == []


def test_a_number_opted_out_after_planning_is_not_sent_to(business: ApiClient, pipeline: Pipeline) -> None:
    # GIVEN a queue whose jobs are planned and waiting in SQS
    account = sandbox_account(business, phone(1))
    recipients = [phone(7_300), phone(7_301), phone(7_302)]
    queue = new_queue(business, recipients)
    process(business, queue["id"])
    pipeline.tick()
    assert pipeline.backlog(account["id"]) == 3

    # WHEN one recipient opts out before the sender runs
    opt_out(business, phone(7_301))
    pipeline.drain()
    pipeline.tick()

    # THEN that job is OPTED_OUT and got no message; the others were sent
    jobs = {job.phone_number: job.status.value for job in pipeline.jobs(queue["id"])}
    assert jobs == {phone(7_300): "SENT", phone(7_301): "OPTED_OUT", phone(7_302): "SENT"}
    assert pipeline.recipients_messaged() == {phone(7_300): 1, phone(7_302): 1}
    progress = pipeline.progress(queue["id"])
    assert progress["status"] == "COMPLETED"
    assert progress["counters"]["optedOut"] == 1
    assert progress["counters"]["sent"] == 2
    assert_counters_add_up(progress["counters"])


def test_a_provider_opt_out_answer_131050_adds_the_number_to_the_opt_outs(
    business: ApiClient, pipeline: Pipeline, sandbox: SandboxServer
) -> None:
    # GIVEN a recipient the provider says stopped marketing messages (131050)
    sandbox.configure(recipient_errors={digits(phone(7_401)): 131050})
    sandbox_account(business, phone(1))
    recipients = [phone(7_400), phone(7_401)]
    queue = new_queue(business, recipients)

    # WHEN the queue is processed
    process(business, queue["id"])
    progress = pipeline.run_until_settled(queue["id"], max_rounds=5)[queue["id"]]

    # THEN that job failed with 131050 (not retried), and the number is now opted out (source: provider)
    job = next(job for job in pipeline.jobs(queue["id"]) if job.phone_number == phone(7_401))
    assert job.status.value == "FAILED"
    assert job.attempts == 1
    assert job.last_error is not None
    assert job.last_error.code == "131050"
    opt_outs = {item["phoneNumber"]: item for item in business.get("/api/whatsapp/opt-outs").body["items"]}
    assert set(opt_outs) == {phone(7_401)}
    assert opt_outs[phone(7_401)]["source"] == "provider"
    assert "131050" in opt_outs[phone(7_401)]["reason"]
    # AND the other recipient got the message, the queue completed, the counters add up
    assert pipeline.recipients_messaged() == {phone(7_400): 1}
    assert progress["status"] == "COMPLETED"
    assert progress["counters"]["sent"] == 1
    assert progress["counters"]["failed"] == 1
    assert error_counts(progress) == {"131050": 1}
    assert_counters_add_up(progress["counters"])
    # AND a later queue to that number does not try it again
    later = new_queue(business, [phone(7_401)], name="Later")
    process(business, later["id"])
    final = pipeline.run_until_settled(later["id"], max_rounds=3)[later["id"]]
    assert final["counters"]["optedOut"] == 1
    assert sandbox.stats()["requests"] == 2


def test_a_paused_template_132015_pauses_the_queue_with_the_reason(
    business: ApiClient, make_pipeline: Callable[..., Pipeline], sandbox: SandboxServer
) -> None:
    # GIVEN a queue whose first recipient gets "template paused" (132015) from the provider
    sandbox.configure(recipient_errors={digits(phone(7_500)): 132015})
    sandbox_account(business, phone(1), mps=10)
    pipeline = make_pipeline(feed_window_s=1)
    recipients = [phone(7_500 + n) for n in range(30)]
    queue = new_queue(business, recipients)

    # WHEN it is processed
    process(business, queue["id"])
    progress = pipeline.run_until_settled(queue["id"], max_rounds=5)[queue["id"]]

    # THEN the queue is PAUSED with the provider's error as its reason
    assert progress["status"] == "PAUSED"
    assert "132015" in progress["statusReason"]
    assert error_counts(progress) == {"132015": 1}
    # AND that job FAILED; at most the rest of its window went out, the others wait as PENDING
    statuses = pipeline.job_statuses(queue["id"])
    assert statuses["FAILED"] == 1
    assert statuses["SENT"] <= 9
    assert statuses["PENDING"] == len(recipients) - 1 - statuses["SENT"]
    assert len(pipeline.sandbox_messages()) == statuses["SENT"]
    assert_counters_add_up(progress["counters"])
    # AND nothing more goes out while it is paused
    pipeline.tick()
    pipeline.drain()
    assert len(pipeline.sandbox_messages()) == statuses["SENT"]
