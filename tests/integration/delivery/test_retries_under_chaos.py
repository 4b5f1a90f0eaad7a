"""Injected provider failures and 429s: every job ends terminal, retried jobs succeed, counters always add up."""

from __future__ import annotations

from collections import Counter

from tests.integration.conftest import ApiClient, phone
from tests.integration.delivery.conftest import (
    DrainReport,
    Pipeline,
    error_counts,
    new_queue,
    process,
    sandbox_account,
)
from wabacast_local.sandbox import SandboxServer

RECIPIENTS = 320


def test_with_20_percent_failures_and_429s_every_job_ends_terminal_and_is_sent_once(
    business: ApiClient, pipeline: Pipeline, sandbox: SandboxServer
) -> None:
    # GIVEN a provider that answers 20% of sends with a 5xx (131000) and 10% with a 429 (130429), repeatably
    sandbox.configure(failure_rate=0.2, rate_429=0.1, seed=20260101)
    sandbox_account(business, phone(1), mps=1000)
    recipients = [phone(30_000 + n) for n in range(RECIPIENTS)]
    queue = new_queue(business, recipients, maxAttempts=10)
    rounds: list[DrainReport] = []

    # WHEN it is processed with two concurrent senders, checking the counters after every drain round
    process(business, queue["id"])
    progress = pipeline.run_until_settled(queue["id"], max_rounds=30, concurrency=2, after_drain=rounds.append)[
        queue["id"]
    ]

    # THEN the queue completed, every job is terminal, and the counters add up (checked after each of the rounds)
    assert progress["status"] == "COMPLETED", progress
    assert len(rounds) > 10
    jobs = pipeline.jobs(queue["id"])
    assert len(jobs) == RECIPIENTS
    assert {job.status.value for job in jobs} <= {"SENT", "FAILED"}
    counters = progress["counters"]
    assert counters["total"] == RECIPIENTS
    assert counters["pending"] == 0
    assert counters["sent"] + counters["failed"] == RECIPIENTS
    # AND failures were really injected, and retried jobs went out in the end
    stats = sandbox.stats()
    assert stats["injectedFailures"] > 20, stats
    assert stats["injected429"] > 10, stats
    retried_and_sent = [job for job in jobs if job.attempts > 1 and job.status.value == "SENT"]
    assert len(retried_and_sent) > 30
    # AND the provider holds exactly one accepted message per SENT job and none for a FAILED one
    messaged = pipeline.recipients_messaged()
    sent_numbers = {job.phone_number for job in jobs if job.status.value == "SENT"}
    assert set(messaged) == sent_numbers
    assert set(messaged.values()) == {1}
    assert counters["sent"] == len(messaged) == stats["accepted"]
    # AND with 10 attempts, hardly any job runs out of them (each attempt fails with p = 0.3)
    assert counters["failed"] <= 2, Counter(job.last_error.code for job in jobs if job.last_error)
    # AND the progress lists the error codes with how often each happened
    errors = error_counts(progress)
    assert errors.get("131000") == stats["injectedFailures"], errors
    assert errors.get("130429") == stats["injected429"], errors
    messages = {error["code"]: error["message"] for error in progress["lastErrors"]}
    assert "131000" in messages["131000"]
    assert "130429" in messages["130429"]
