"""Corrections to the error table on moto: the per-user marketing limit (131049) defers a job in the table's
deferred index (and fails +1 numbers at once), and 131050 opts a number out of marketing templates only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.conftest import ApiClient, phone
from tests.integration.delivery.conftest import Pipeline, digits, new_queue, process, sandbox_account
from wabacast.adapters.dynamodb.jobs import DynamoJobStore
from wabacast.domain.jobs import ErrorClass, JobStatus
from wabacast.logic.fates import MARKETING_LIMIT_DELAYS
from wabacast_local.sandbox import SandboxServer

US_NUMBER = "+12025550143"


def test_the_marketing_limit_defers_a_job_in_the_table_and_fails_a_plus_one_number(
    business: ApiClient, pipeline: Pipeline, sandbox: SandboxServer
) -> None:
    # GIVEN a Spanish and a US recipient who both hit Meta's per-user marketing limit (131049), and one who does not
    sandbox.configure(recipient_errors={digits(phone(7_601)): 131049, digits(US_NUMBER): 131049})
    sandbox_account(business, phone(1))
    queue = new_queue(business, [phone(7_600), phone(7_601), US_NUMBER])

    # WHEN the queue is processed until only the deferred job is left
    process(business, queue["id"])
    before = datetime.now(UTC)
    pipeline.tick()
    pipeline.drain(1)
    progress = pipeline.progress(queue["id"])

    # THEN the US job failed for good, the other one waits about 4 hours in the deferred index, and the queue stays
    # open with it pending
    jobs = {job.phone_number: job for job in pipeline.jobs(queue["id"])}
    assert jobs[phone(7_600)].status == JobStatus.SENT
    assert jobs[US_NUMBER].status == JobStatus.FAILED
    assert jobs[US_NUMBER].last_error is not None
    assert jobs[US_NUMBER].last_error.error_class == ErrorClass.PERMANENT
    deferred = jobs[phone(7_601)]
    assert (deferred.status, deferred.deferrals, deferred.attempts) == (JobStatus.PENDING, 1, 1)
    assert deferred.not_before is not None
    assert before + MARKETING_LIMIT_DELAYS[0] <= deferred.not_before <= datetime.now(UTC) + MARKETING_LIMIT_DELAYS[0]
    assert progress["status"] == "PROCESSING"
    assert (progress["counters"]["pending"], progress["counters"]["sent"], progress["counters"]["failed"]) == (1, 1, 1)

    # AND the index gives it only once it is due, and feeding it again takes it out of the index
    store = DynamoJobStore(pipeline.table)
    assert store.deferred(queue["id"], 10, due_by=deferred.not_before - timedelta(seconds=1)) == []
    (due,) = store.deferred(queue["id"], 10, due_by=deferred.not_before)
    assert due.id == deferred.id
    assert store.clear_deferral(due) is True
    assert store.clear_deferral(due) is False
    assert store.deferred(queue["id"], 10) == []
    (again,) = [job for job in pipeline.jobs(queue["id"]) if job.id == deferred.id]
    assert (again.status, again.not_before, again.deferrals) == (JobStatus.PENDING, None, 1)


def test_131050_opts_out_of_marketing_only_and_a_utility_template_still_reaches_the_number(
    business: ApiClient, pipeline: Pipeline, sandbox: SandboxServer
) -> None:
    # GIVEN a recipient that stopped marketing messages (131050), met by a marketing campaign
    sandbox.configure(recipient_errors={digits(phone(7_701)): 131050})
    sandbox_account(business, phone(1))
    campaign = new_queue(business, [phone(7_701)])
    process(business, campaign["id"])
    pipeline.run_until_settled(campaign["id"], max_rounds=5)
    opt_outs = {item["phoneNumber"]: item for item in business.get("/api/whatsapp/opt-outs").body["items"]}
    assert opt_outs[phone(7_701)]["scope"] == "marketing"
    sandbox.configure(recipient_errors={})

    # WHEN a utility queue and another marketing queue go to the same number
    utility = new_queue(
        business, [phone(7_701)], name="Order update", template={"name": "order_update", "language": "en_US",
                                                                  "category": "utility"}
    )  # fmt: skip
    promo = new_queue(business, [phone(7_701)], name="Promo")
    process(business, utility["id"])
    process(business, promo["id"])
    settled = pipeline.run_until_settled([utility["id"], promo["id"]], max_rounds=5)

    # THEN the utility template is sent and the marketing one is opted out
    assert settled[utility["id"]]["counters"]["sent"] == 1
    assert settled[promo["id"]]["counters"]["optedOut"] == 1
    assert [message["template"] for message in pipeline.sandbox_messages()] == ["order_update"]
