"""Delivery benchmark: N messages through the local stack (moto + the sandbox provider), end to end.

    .venv/bin/python bench/delivery_bench.py --messages 10000 --mps 100

It starts the local stack in this process (the same handlers and runner as `make run`), uploads N contacts,
creates a queue for them, starts it, waits for COMPLETED, then prints:
  - throughput: messages/s from the process call to COMPLETED;
  - enqueue-to-send latency: p50/p99 of (provider accepted - put on the account's SQS queue), from the jobs;
  - AWS API calls per message by service and operation, counted on every boto3 client in the process
    between the process call and COMPLETED (the runner's SQS receive/delete calls are the ones Lambda's event
    source mapping makes in AWS; its queue discovery calls have no AWS counterpart and are listed apart).
The figures measure this machine and moto, not AWS: see docs/operations.md for how to read them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import httpx

from wabacast.adapters.dynamodb.delivery import DeliveryStore
from wabacast.domain.delivery import JobOutcome
from wabacast.domain.jobs import JobStatus
from wabacast.domain.models import Queue
from wabacast_local.sandbox_provider import SandboxSettings
from wabacast_local.stack import LocalStack, LocalStackConfig

# Calls the local runner makes only to find queues to poll; AWS's event source mappings need none of them.
RUNNER_ONLY = {("sqs", "ListQueues"), ("sqs", "ListQueueTags")}

_calls: Counter[tuple[str, str]] = Counter()
_calls_lock = threading.Lock()
_counting = threading.Event()
# The benchmark's own reads (progress polling, the final job scan) are not the system's work.
_not_counted = threading.local()
_original_call = botocore.client.BaseClient._make_api_call


def _counting_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
    if _counting.is_set() and not getattr(_not_counted, "active", False):
        with _calls_lock:
            _calls[(self.meta.service_model.service_name, operation_name)] += 1
    return _original_call(self, operation_name, api_params)


# The at-most-once gap: from the provider's acceptance (the job's sent_at) until the SENT settle is written.
# A sender that dies inside it leaves the job SENDING, and the job is then failed as UNKNOWN_OUTCOME.
_settle_gaps: list[float] = []
_original_apply = DeliveryStore.apply


def _timed_apply(self: DeliveryStore, outcome: JobOutcome, queue: Queue) -> bool:
    result = _original_apply(self, outcome, queue)
    if outcome.job.status == JobStatus.SENT and outcome.job.sent_at is not None:
        _settle_gaps.append(time.time() - outcome.job.sent_at.timestamp())
    return result


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(messages: int, mps: int, feed_window: float, latency_ms: float, timeout_s: float) -> dict[str, Any]:
    botocore.client.BaseClient._make_api_call = _counting_call  # type: ignore[method-assign]
    DeliveryStore.apply = _timed_apply  # type: ignore[method-assign]
    # The functions' INFO lines would bury the report on stdout.
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    state_dir = Path(tempfile.mkdtemp(prefix="wabacast-bench-"))
    config = LocalStackConfig(
        port=0,
        state_dir=state_dir,
        feed_window_seconds=feed_window,
        sandbox=SandboxSettings(latency_ms=latency_ms, jitter_ms=latency_ms / 2),
    )
    stack = LocalStack(config)
    endpoints = stack.start()
    try:
        api = httpx.Client(
            base_url=endpoints.api_url, headers={"Authorization": f"Bearer {endpoints.api_key}"}, timeout=60
        )
        account = api.post(
            "/api/whatsapp/accounts",
            json={
                "displayName": "Bench",
                "phoneNumber": "+14155550100",
                "provider": "sandbox",
                "limits": {"messagesPerSecond": mps, "dailyRecipientLimit": 10_000_000},
            },
        )
        account.raise_for_status()
        numbers = [f"+1415{2000000 + index:07d}" for index in range(messages)]
        for start in range(0, messages, 1000):
            chunk = [
                {"phoneNumber": number, "name": f"C{index}", "tags": ["bench"]}
                for index, number in enumerate(numbers[start : start + 1000], start)
            ]
            upload = api.post("/api/whatsapp/contacts", json={"contacts": chunk})
            upload.raise_for_status()
            if upload.json()["rejected"]:
                raise SystemExit(f"contacts rejected: {upload.json()['rejected'][:3]}")
        queue = api.post(
            "/api/whatsapp/queue",
            json={
                "name": "bench",
                "template": {"name": "bench", "language": "en_US"},
                "variables": {"1": "{{contact.name}}"},
                "audience": {"contactTags": ["bench"]},
            },
        )
        queue.raise_for_status()
        queue_id = queue.json()["id"]

        _counting.set()
        started = time.perf_counter()
        api.post(f"/api/whatsapp/queue/{queue_id}/process").raise_for_status()
        # Poll the queue item directly (uncounted) rather than through the API, whose calls would be counted.
        _not_counted.active = True
        table = boto3.resource("dynamodb", endpoint_url=endpoints.aws_endpoint_url, region_name="us-east-1").Table(
            "wabacast-local"
        )
        business_id = endpoints.demo_business_id
        while time.perf_counter() - started < timeout_s:
            item = table.get_item(Key={"PK": f"BIZ#{business_id}", "SK": f"QUEUE#{queue_id}"})["Item"]
            if item["status"] in ("COMPLETED", "PAUSED", "CANCELLED", "FAILED"):
                break
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        _counting.clear()
        progress: dict[str, Any] = api.get(f"/api/whatsapp/queue/{queue_id}/process").json()
        calls = dict(_calls)

        jobs = _jobs(endpoints.aws_endpoint_url, queue_id)
        latencies = [
            (datetime.fromisoformat(job["sent_at"]) - datetime.fromisoformat(job["queued_at"])).total_seconds()
            for job in jobs
            if job.get("sent_at") and job.get("queued_at")
        ]
        sandbox_count = len(
            httpx.get(f"{endpoints.sandbox_url}/messages", params={"limit": messages * 2}, timeout=60).json()[
                "messages"
            ]
        )
        counters = progress.get("counters", {})
        sent = counters.get("sent", 0)
        by_service: Counter[str] = Counter()
        for (service, operation), count in calls.items():
            if (service, operation) not in RUNNER_ONLY:
                by_service[service] += count
        return {
            "messages": messages,
            "messagesPerSecondLimit": mps,
            "feedWindowSeconds": feed_window,
            "sandboxLatencyMs": latency_ms,
            "status": progress.get("status"),
            "counters": counters,
            "sandboxAccepted": sandbox_count,
            "elapsedSeconds": round(elapsed, 1),
            "throughputPerSecond": round(sent / elapsed, 1) if elapsed else 0.0,
            "enqueueToSendSeconds": {
                "p50": round(statistics.median(latencies), 3) if latencies else None,
                "p99": round(_percentile(latencies, 0.99), 3) if latencies else None,
                "max": round(max(latencies), 3) if latencies else None,
            },
            "unknownOutcomeWindowMs": {
                "p50": round(statistics.median(_settle_gaps) * 1000, 1) if _settle_gaps else None,
                "p99": round(_percentile(_settle_gaps, 0.99) * 1000, 1) if _settle_gaps else None,
            },
            "awsCallsPerMessage": {
                service: round(count / max(sent, 1), 2) for service, count in sorted(by_service.items())
            },
            "awsCallsByOperation": {
                f"{service}:{operation}": count
                for (service, operation), count in sorted(calls.items(), key=lambda item: -item[1])
            },
            "runnerOnlyCalls": {f"{s}:{o}": calls.get((s, o), 0) for s, o in sorted(RUNNER_ONLY)},
        }
    finally:
        stack.stop()


def _jobs(endpoint_url: str, queue_id: str) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1").Table("wabacast-local")
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": f"Q#{queue_id}"},
    }
    while True:
        response = table.query(**request)
        items.extend(response["Items"])
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--mps", type=int, default=100, help="the account's messagesPerSecond")
    parser.add_argument("--feed-window", type=float, default=1.0, help="FEED_WINDOW_S (cloud: 60)")
    parser.add_argument("--sandbox-latency-ms", type=float, default=50.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--output", help="also write the JSON report to this file")
    arguments = parser.parse_args()
    report = run(
        arguments.messages, arguments.mps, arguments.feed_window, arguments.sandbox_latency_ms, arguments.timeout
    )
    text = json.dumps(report, indent=2)
    if arguments.output:
        Path(arguments.output).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
