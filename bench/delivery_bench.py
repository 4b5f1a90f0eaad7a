"""Delivery benchmark: N messages through the local stack (moto + the sandbox provider), end to end.

    .venv/bin/python bench/delivery_bench.py --messages 10000 --mps 100
    .venv/bin/python bench/delivery_bench.py --capacity --messages 10000

It starts the local stack in this process (the same handlers and runner as `make run`), uploads N contacts,
creates a queue for them, starts it, waits for COMPLETED, then prints:
  - throughput: messages/s from the process call to COMPLETED;
  - enqueue-to-send latency: p50/p99 of (provider accepted - put on the account's SQS queue), from the jobs;
  - AWS API calls per message by service and operation, counted on every boto3 client in the process
    between the process call and COMPLETED (the runner's SQS receive/delete calls are the ones Lambda's event
    source mapping makes in AWS; its queue discovery calls have no AWS counterpart and are listed apart).
The figures measure this machine and moto, not AWS: see docs/operations.md for how to read them.

With --capacity it measures what the same work would cost in AWS instead (see bench/README.md): two campaigns, each
metered from its process call to COMPLETED, (a) N contacts selected by tag and (b) 1,000 inline recipients on an
account of their own. For each: DynamoDB write and read request units per message, by DynamoDB's rules
(bench/capacity.py), split between the table and its indexes; the hottest item and partition and the send rate at
which they would reach DynamoDB's 1,000 WCU/s per-partition limit; AWS API calls and SQS billed requests per
message; each function's invocations, handler time and GB-seconds; the log bytes the functions write. Then a cost
per 1,000,000 messages from those units and the price table below, as JSON (stdout) and as markdown (stderr).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import boto3
import botocore.client
import botocore.endpoint
import httpx
from capacity import CapacityMeter, CapacityReport, ItemWrites

from wabacast_local.lambda_runtime import LocalLambdaFunction
from wabacast_local.sandbox_provider import SandboxSettings
from wabacast_local.stack import LocalStack, LocalStackConfig

# Calls the local runner makes only to find queues to poll; AWS's event source mappings need none of them.
RUNNER_ONLY = {("sqs", "ListQueues"), ("sqs", "ListQueueTags")}
TERMINAL_STATUSES = ("COMPLETED", "PAUSED", "CANCELLED", "FAILED")
REPO = Path(__file__).resolve().parents[1]

_calls: Counter[tuple[str, str]] = Counter()
_calls_lock = threading.Lock()
_counting = threading.Event()
# The benchmark's own reads (progress polling, the final job scan) are not the system's work.
_not_counted = threading.local()
_original_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]


# Who is calling (capacity mode) ---------------------------------------------------------------------------------
# The function whose invocation runs in this thread (or in a thread it started), POLL_LABEL for the benchmark's own
# progress reads through the API, RUNNER_LABEL for the local runner's account lookups (no AWS counterpart). DynamoDB
# requests carry it in CALLER_HEADER, so the capacity meter (which runs in moto's server threads) knows it too.
class _Caller(threading.local):
    label: str | None = None
    # CPU seconds that threads started by the current invocation spent (added when each of them ends).
    child_cpu: list[float] | None = None


_caller = _Caller()
CALLER_HEADER = "x-wabacast-bench-caller"
POLL_HEADER = "x-wabacast-bench-poll"
POLL_LABEL = "bench-poll"
RUNNER_LABEL = "local-runner"
IGNORED_LABELS = frozenset({POLL_LABEL, RUNNER_LABEL})

_calls_by_caller: Counter[tuple[str, str]] = Counter()
_sqs_billed = Counter[str]()  # "requests": SQS requests as billed (64 KB chunks)
_invocations: defaultdict[str, list[float]] = defaultdict(list)  # wall seconds of each invocation
_invocation_cpu: defaultdict[str, list[float]] = defaultdict(list)  # CPU seconds of each (its threads included)
_local_memory_mb: dict[str, int] = {}
SQS_CHUNK_BYTES = 64 * 1024


def _counting_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
    if (
        not _counting.is_set()
        or getattr(_not_counted, "active", False)
        or (_caller.label is not None and _caller.label in IGNORED_LABELS)
    ):
        return _original_call(self, operation_name, api_params)
    service = self.meta.service_model.service_name
    with _calls_lock:
        _calls[(service, operation_name)] += 1
        _calls_by_caller[(_caller.label or "unlabelled", service)] += 1
    result: Any = None
    try:
        result = _original_call(self, operation_name, api_params)
        return result
    finally:
        if service == "sqs" and (service, operation_name) not in RUNNER_ONLY:
            billed = _sqs_billed_requests(operation_name, api_params, result)
            with _calls_lock:
                _sqs_billed["requests"] += billed


def _sqs_billed_requests(operation: str, params: Mapping[str, Any], result: Any) -> int:
    """SQS bills each 64 KB chunk of a request's payload as one request (https://aws.amazon.com/sqs/pricing/)."""

    def message_bytes(message: Mapping[str, Any], body_key: str) -> int:
        size = len(str(message.get(body_key, "")).encode())
        for name, attribute in (message.get("MessageAttributes") or {}).items():
            size += len(name.encode()) + len(str(attribute.get("DataType", "")).encode())
            size += len(str(attribute.get("StringValue", "")).encode()) + len(attribute.get("BinaryValue", b""))
        return size

    if operation == "SendMessage":
        payload = message_bytes(params, "MessageBody")
    elif operation == "SendMessageBatch":
        payload = sum(message_bytes(entry, "MessageBody") for entry in params.get("Entries", []))
    elif operation == "ReceiveMessage" and isinstance(result, Mapping):
        payload = sum(message_bytes(message, "Body") for message in result.get("Messages", []))
    else:
        return 1
    return max(1, math.ceil(payload / SQS_CHUNK_BYTES))


def _instrument_callers() -> list[str]:
    """Install the caller labels and the invocation timer; returns what could not be installed (the local stack is
    being rewritten: a missing hook leaves a figure out instead of failing the run)."""
    missing: list[str] = []
    original_start = threading.Thread.start

    def start_with_caller(self: threading.Thread) -> None:
        label, child_cpu, target = _caller.label, _caller.child_cpu, self.__dict__.get("_target")
        if label is not None and target is not None:

            def labelled(*args: Any, **kwargs: Any) -> Any:
                _caller.label, _caller.child_cpu = label, child_cpu
                started = time.thread_time()
                try:
                    return target(*args, **kwargs)
                finally:
                    if child_cpu is not None:
                        with _calls_lock:
                            child_cpu[0] += time.thread_time() - started

            self.__dict__["_target"] = labelled
        original_start(self)

    threading.Thread.start = start_with_caller  # type: ignore[method-assign]

    original_create_request = botocore.endpoint.Endpoint.create_request

    def create_request_with_caller(self: Any, params: dict[str, Any], operation_model: Any = None) -> Any:
        if _caller.label is not None:
            params.setdefault("headers", {})[CALLER_HEADER] = _caller.label
        return original_create_request(self, params, operation_model)

    botocore.endpoint.Endpoint.create_request = create_request_with_caller  # type: ignore[method-assign, assignment]

    original_invoke = LocalLambdaFunction.invoke

    def timed_invoke(self: LocalLambdaFunction, event: Any) -> Any:
        headers = event.get("headers") if isinstance(event, Mapping) else None
        poll = isinstance(headers, Mapping) and any(str(name).lower() == POLL_HEADER for name in headers)
        previous = _caller.label, _caller.child_cpu
        _caller.label, _caller.child_cpu = POLL_LABEL if poll else self.config.name, [0.0]
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            return original_invoke(self, event)
        finally:
            elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
            with _calls_lock:
                cpu += _caller.child_cpu[0]
            _caller.label, _caller.child_cpu = previous
            if not poll and _counting.is_set():
                with _calls_lock:
                    _invocations[self.config.name].append(elapsed)
                    _invocation_cpu[self.config.name].append(cpu)
                    _local_memory_mb[self.config.name] = self.config.memory_limit_in_mb

    LocalLambdaFunction.invoke = timed_invoke  # type: ignore[method-assign]

    try:
        from wabacast_local.event_sources import DynamoDbAccountLookup
    except ImportError:
        missing.append("runner account lookups are not told apart (they count as unlabelled)")
    else:
        original_lookup = DynamoDbAccountLookup.__call__

        def labelled_lookup(self: Any, *args: Any, **kwargs: Any) -> Any:
            previous, _caller.label = _caller.label, RUNNER_LABEL
            try:
                return original_lookup(self, *args, **kwargs)
            finally:
                _caller.label = previous

        DynamoDbAccountLookup.__call__ = labelled_lookup  # type: ignore[method-assign]
    return missing


class _LogCounter(io.TextIOBase):
    """Stands in for stdout while the stack runs: counts what the functions print (Powertools' JSON log lines and
    EMF metric lines, both ingested by CloudWatch Logs in AWS) by caller, and optionally keeps a copy."""

    def __init__(self, copy_to: TextIO | None = None) -> None:
        super().__init__()
        self._copy_to = copy_to
        self._lock = threading.Lock()
        self.bytes: Counter[str] = Counter()
        self.lines: Counter[str] = Counter()

    def reset(self) -> None:
        with self._lock:
            self.bytes.clear()
            self.lines.clear()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        label = _caller.label
        if _counting.is_set() and label not in IGNORED_LABELS:
            with self._lock:
                self.bytes[label or "unlabelled"] += len(text.encode())
                self.lines[label or "unlabelled"] += text.count("\n")
        if self._copy_to is not None:
            with self._lock:
                self._copy_to.write(text)
        return len(text)

    def flush(self) -> None:
        if self._copy_to is not None:
            self._copy_to.flush()


# Prices (capacity mode) -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Price:
    usd: float
    per: float  # how many units `usd` buys
    unit: str
    source: str
    as_of: str
    checked: str


# List prices, US East (N. Virginia), without free tiers (they do not matter per million messages at volume).
PRICES: dict[str, Price] = {
    "dynamodbWrite": Price(
        0.625,
        1e6,
        "write request unit (on-demand, Standard table class)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "price in force since 2024-11-01 (on-demand throughput cut by 50%)",
        "re-checked 2026-11-29 on a secondary source quoting the AWS page (airbyte.com DynamoDB pricing guide, "
        "2025-07-21); the AWS page itself not re-checked",
    ),
    "dynamodbRead": Price(
        0.125,
        1e6,
        "read request unit (on-demand, Standard table class)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "price in force since 2024-11-01",
        "re-checked 2026-11-29 on the same secondary source; the AWS page itself not re-checked",
    ),
    "sqsFifo": Price(
        0.50,
        1e6,
        "FIFO request (each 64 KB chunk of a payload is one request)",
        "https://aws.amazon.com/sqs/pricing/",
        "2026-03 (cloudburn.io, 2026-03-14) and 2026-06 (factualminds.com, 2026-06-13)",
        "re-checked 2026-11-29 on those two secondary sources; the AWS page itself not re-checked",
    ),
    "lambdaRequests": Price(
        0.20,
        1e6,
        "Lambda request (invocation)",
        "https://aws.amazon.com/lambda/pricing/",
        "unchanged since 2014",
        "re-checked 2026-11-29 on secondary sources (cloudchipr.com 2024; a 2025 Lambda cost guide); "
        "the AWS page itself not re-checked",
    ),
    "lambdaArmGbSecond": Price(
        0.0000133334,
        1,
        "GB-second of duration, arm64, first 7.5 billion GB-s a month",
        "https://aws.amazon.com/lambda/pricing/",
        "since arm64 (Graviton2) launch, 2021-09; tiers since 2022-01",
        "re-checked 2026-11-29 on the same secondary sources; the AWS page itself not re-checked",
    ),
    "xrayTraces": Price(
        5.00,
        1e6,
        "X-Ray trace recorded",
        "https://aws.amazon.com/xray/pricing/",
        "stored copy of the AWS page (German edition), 2026",
        "re-checked 2026-11-29 on the AWS page (aws.amazon.com/de/xray/pricing/: USD 5 per million recorded)",
    ),
    "cloudwatchLogsGb": Price(
        0.50,
        1,
        "GB of log data ingested, Standard class (Lambda logs: first 10 TB a month)",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "tiered Lambda log pricing since 2025-05-01; first tier unchanged at USD 0.50",
        "re-checked 2026-11-29 on secondary sources (duckbillgroup.com, hykell.com); the AWS page itself not "
        "re-checked",
    ),
    "schedulerInvocations": Price(
        1.00,
        1e6,
        "EventBridge Scheduler invocation (14 million a month free)",
        "https://aws.amazon.com/eventbridge/pricing/",
        "2026-03 (cloudburn.io, 2026-03-13)",
        "re-checked 2026-11-29 on that secondary source; the AWS page itself not re-checked",
    ),
    "twilioWhatsApp": Price(
        0.005,
        1,
        "WhatsApp message through Twilio (Twilio's own fee, inbound or outbound; Meta's template fee is extra)",
        "https://www.twilio.com/whatsapp/pricing",
        "Twilio pricing page (Meta's per-template pricing of 2025-07-01 in force)",
        "re-checked 2026-11-29 on a stored copy of the Twilio page: USD 0.005 per message",
    ),
}
# Lambda's own START, END and REPORT lines (with the XRAY suffix of active tracing) per invocation, in the text log
# format the stack uses: an estimate of their size, not a measurement.
PLATFORM_LOG_BYTES_PER_INVOCATION = 350
GIB = 1024**3

# Function name (local stack) -> the memory setting's field in infra/capabilities/*.py.
INFRA_MEMORY_FIELDS = {
    "wabacast-api": ("api.py", "api_memory_mb"),
    "wabacast-authorizer": ("api.py", "authorizer_memory_mb"),
    "wabacast-planner": ("delivery.py", "planner_memory_mb"),
    "wabacast-sender": ("delivery.py", "sender_memory_mb"),
    "wabacast-dead-letter": ("delivery.py", "dead_letter_memory_mb"),
}
SENDER = "wabacast-sender"
PLANNER = "wabacast-planner"


def infra_memory_mb(function_name: str) -> int | None:
    """The function's memory in the CDK code, read from its settings dataclass without importing the CDK."""
    location = INFRA_MEMORY_FIELDS.get(function_name)
    if location is None:
        return None
    file_name, field_name = location
    try:
        tree = ast.parse((REPO / "infra" / "capabilities" / file_name).read_text())
    except (OSError, SyntaxError):
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == field_name
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, int)
        ):
            return node.value.value
    return None


# The default mode ---------------------------------------------------------------------------------------------------
# The at-most-once gap: from the provider's acceptance (the job's sent_at) until the SENT settle is written.
# A sender that dies inside it leaves the job SENDING, and the job is then failed as UNKNOWN_OUTCOME.
_settle_gaps: list[float] = []
# The whole window a sender's death turns into UNKNOWN_OUTCOME: from the claim to the settle written.
_claim_gaps: list[float] = []


def _time_settles() -> bool:
    """Time the at-most-once window on every SENT settle (DynamoJobStore.settle): from the claim (the SENDING
    job's updated_at) and from the provider's acceptance (sent_at) to the settle written."""
    from wabacast.adapters.dynamodb.jobs import DynamoJobStore
    from wabacast.domain.jobs import JobMove, JobStatus

    original_settle = DynamoJobStore.settle

    def timed_settle(self: DynamoJobStore, moves: Any) -> list[JobMove]:
        applied = original_settle(self, moves)
        done = time.time()
        for move in applied:
            if move.job.status == JobStatus.SENT and move.job.sent_at is not None:
                _settle_gaps.append(done - move.job.sent_at.timestamp())
                _claim_gaps.append(done - move.before.updated_at.timestamp())
        return applied

    DynamoJobStore.settle = timed_settle  # type: ignore[method-assign]
    return True


def _ms(values: list[float], share: float) -> float | None:
    return round(_percentile(values, share) * 1000, 1) if values else None


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _create_account(api: httpx.Client, name: str, phone_number: str, mps: int) -> str:
    account = api.post(
        "/api/whatsapp/accounts",
        json={
            "displayName": name,
            "phoneNumber": phone_number,
            "provider": "sandbox",
            "limits": {"messagesPerSecond": mps, "dailyRecipientLimit": 10_000_000},
            # Never held by the messaging limit (its cap alone, 10M), while every send still goes through it.
            "messagingTier": "TIER_UNLIMITED",
        },
    )
    account.raise_for_status()
    return str(account.json()["id"])


def _upload_contacts(api: httpx.Client, messages: int) -> None:
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


def run(messages: int, mps: int, feed_window: float, latency_ms: float, timeout_s: float) -> dict[str, Any]:
    botocore.client.BaseClient._make_api_call = _counting_call  # type: ignore[attr-defined]
    settles_timed = _time_settles()
    # The functions' INFO lines would bury the report on stdout.
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    state_dir = Path(tempfile.mkdtemp(prefix="wabacast-bench-"))
    config = LocalStackConfig(
        port=0,
        state_dir=state_dir,
        feed_window_seconds=feed_window,
        # The send path alone: status callbacks are measured by bench/webhook_bench.py.
        sandbox=SandboxSettings(latency_ms=latency_ms, jitter_ms=latency_ms / 2, callbacks=False),
    )
    stack = LocalStack(config)
    endpoints = stack.start()
    try:
        api = httpx.Client(
            base_url=endpoints.api_url, headers={"Authorization": f"Bearer {endpoints.api_key}"}, timeout=60
        )
        _create_account(api, "Bench", "+14155550100", mps)
        _upload_contacts(api, messages)
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
            if item["status"] in TERMINAL_STATUSES:
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
                "providerAcceptedToRecordedP50": _ms(_settle_gaps, 0.5),
                "providerAcceptedToRecordedP99": _ms(_settle_gaps, 0.99),
                "claimToRecordedP50": _ms(_claim_gaps, 0.5),
                "claimToRecordedP99": _ms(_claim_gaps, 0.99),
            }
            if settles_timed
            else None,
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
    """The queue's jobs: the items of its job partitions whose sort key starts with "JOB#"."""
    from wabacast.adapters.dynamodb.jobs import JOB_PREFIX, job_partitions

    table = boto3.resource("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1").Table("wabacast-local")
    items: list[dict[str, Any]] = []
    for partition in job_partitions(queue_id):
        request: dict[str, Any] = {
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": partition},
        }
        while True:
            response = table.query(**request)
            items.extend(item for item in response["Items"] if str(item.get("SK", "")).startswith(JOB_PREFIX))
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return items


# The capacity mode --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CapacitySettings:
    messages: int
    inline_recipients: int
    mps: int
    feed_window: float
    latency_ms: float
    timeout_s: float
    sender_memory_mb: int
    xray_sampled_share: float
    log_copy: Path | None


def _progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _reset_counters() -> None:
    with _calls_lock:
        _calls.clear()
        _calls_by_caller.clear()
        _sqs_billed.clear()
        _invocations.clear()
        _invocation_cpu.clear()


def _run_campaign(
    api: httpx.Client,
    meter: CapacityMeter,
    logs: _LogCounter,
    settings: CapacitySettings,
    name: str,
    queue_id: str,
    audience: int,
) -> dict[str, Any]:
    """Process one queue, metered from the process call until it is done; the result per message."""
    _reset_counters()
    logs.reset()
    meter.reset()
    _counting.set()
    started = time.perf_counter()
    api.post(f"/api/whatsapp/queue/{queue_id}/process").raise_for_status()
    # Progress through the public API; the requests carry POLL_HEADER, so nothing they cause is counted.
    progress: dict[str, Any] = {}
    last_report = started
    while time.perf_counter() - started < settings.timeout_s:
        progress = api.get(f"/api/whatsapp/queue/{queue_id}/process", headers={POLL_HEADER: "1"}).json()
        if progress.get("status") in TERMINAL_STATUSES:
            break
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            _progress(f"{name}: {progress.get('status')} {progress.get('counters')}")
        time.sleep(1.0)
    elapsed = time.perf_counter() - started
    report = meter.snapshot()
    _counting.clear()
    with _calls_lock:
        calls = dict(_calls)
        calls_by_caller = dict(_calls_by_caller)
        sqs_billed = _sqs_billed["requests"]
        invocations = {function: list(durations) for function, durations in _invocations.items()}
        cpu = {function: list(durations) for function, durations in _invocation_cpu.items()}
    counters = progress.get("counters", {})
    sent = int(counters.get("sent", 0))
    per = float(sent or audience)
    _progress(f"{name}: {progress.get('status')} after {elapsed:.0f} s, {counters}")
    return {
        "audience": audience,
        "status": progress.get("status"),
        "counters": counters,
        "elapsedSeconds": round(elapsed, 1),
        "perMessageDenominator": per,
        "dynamodb": _dynamodb_section(report, per),
        "aws": _calls_section(calls, calls_by_caller, sqs_billed, per),
        "lambda": _lambda_section(invocations, cpu, settings, per),
        "logs": _logs_section(logs, invocations, per),
    }


def _dynamodb_section(report: CapacityReport, per: float) -> dict[str, Any]:
    def item_row(item: ItemWrites) -> dict[str, Any]:
        wru_per_message = item.total_wru / per
        return {
            "key": str(item.key),
            "writesPerMessage": round(item.writes / per, 4),
            "wruPerWrite": round(item.wru_per_write, 3),
            "wruPerMessage": round(wru_per_message, 4),
            # The campaign send rate at which this item (or partition) alone takes 1,000 WCU/s.
            "sendRateAt1000WcuPerSecond": round(1000 / wru_per_message, 1) if wru_per_message else None,
        }

    hottest = report.hottest_items(5)
    costliest = sorted(report.items.values(), key=lambda item: -item.total_wru)[:5]
    return {
        "wruPerMessage": {
            "total": round(report.wru / per, 4),
            "table": round(report.wru_table / per, 4),
            "index": round(report.wru_index / per, 4),
            "byIndex": {name: round(units / per, 4) for name, units in sorted(report.wru_by_index.items())},
        },
        "rruPerMessage": {
            "total": round(report.rru / per, 4),
            "table": round(report.rru_table / per, 4),
            "index": round(report.rru_index / per, 4),
            "byIndex": {name: round(units / per, 4) for name, units in sorted(report.rru_by_index.items())},
        },
        "indexWritesPerMessage": {name: round(count / per, 4) for name, count in sorted(report.index_writes.items())},
        "requestsPerMessage": round(report.requests / per, 4),
        "byOperationPerMessage": {
            operation: totals.to_dict(per) for operation, totals in sorted(report.by_operation.items())
        },
        "byCallerPerMessage": {label: totals.to_dict(per) for label, totals in sorted(report.by_label.items())},
        "hottestItem": item_row(hottest[0]) if hottest else None,
        "hottestItems": [item_row(item) for item in hottest],
        "costliestItems": [item_row(item) for item in costliest],
        "hottestPartitions": [item_row(partition) for partition in report.hottest_partitions(3)],
        "ignoredRequests": dict(report.ignored_requests),
    }


def _calls_section(
    calls: Mapping[tuple[str, str], int], calls_by_caller: Mapping[tuple[str, str], int], sqs_billed: int, per: float
) -> dict[str, Any]:
    by_service: Counter[str] = Counter()
    for (service, operation), count in calls.items():
        if (service, operation) not in RUNNER_ONLY:
            by_service[service] += count
    return {
        "callsPerMessage": {service: round(count / per, 3) for service, count in sorted(by_service.items())},
        "callsByOperation": {
            f"{service}:{operation}": count
            for (service, operation), count in sorted(calls.items(), key=lambda item: -item[1])
            if (service, operation) not in RUNNER_ONLY
        },
        "callsByCaller": {f"{caller}:{service}": count for (caller, service), count in sorted(calls_by_caller.items())},
        "sqsBilledRequestsPerMessage": round(sqs_billed / per, 4),
        "runnerOnlyCalls": {f"{s}:{o}": calls.get((s, o), 0) for s, o in sorted(RUNNER_ONLY)},
    }


def _memory_mb(function: str, settings: CapacitySettings) -> int:
    if function == SENDER:
        return settings.sender_memory_mb
    return infra_memory_mb(function) or _local_memory_mb.get(function) or 256


def _gb_seconds(durations: list[float], memory_mb: int) -> float:
    # Lambda bills duration rounded up to the millisecond.
    return sum(math.ceil(duration * 1000) / 1000 for duration in durations) * memory_mb / 1024


def _lambda_section(
    invocations: Mapping[str, list[float]], cpu: Mapping[str, list[float]], settings: CapacitySettings, per: float
) -> dict[str, Any]:
    """Each function's invocations, handler time and GB-seconds: at the wall time measured here (an upper bound:
    every DynamoDB request waits its turn in moto) and at the handler's CPU time, its threads included (a lower
    bound: no time for the network or the provider)."""

    def milliseconds(seconds: list[float]) -> dict[str, float]:
        in_ms = sorted(value * 1000 for value in seconds)
        return {
            "mean": round(statistics.fmean(in_ms), 1),
            "p50": round(statistics.median(in_ms), 1),
            "p99": round(_percentile(in_ms, 0.99), 1),
            "max": round(in_ms[-1], 1),
        }

    functions: dict[str, Any] = {}
    for function, durations in sorted(invocations.items()):
        memory = _memory_mb(function, settings)
        functions[function] = {
            "invocations": len(durations),
            "invocationsPerMessage": round(len(durations) / per, 4),
            "handlerMs": milliseconds(durations),
            "handlerCpuMs": milliseconds(cpu.get(function) or [0.0]),
            "memoryMb": memory,
            "gbSecondsPerMessage": round(_gb_seconds(durations, memory) / per, 6),
            "gbSecondsPerMessageAtCpuTime": round(_gb_seconds(cpu.get(function, []), memory) / per, 6),
        }
    return {
        "functions": functions,
        "invocationsPerMessage": round(sum(len(d) for d in invocations.values()) / per, 4),
        "gbSecondsPerMessage": round(sum(f["gbSecondsPerMessage"] for f in functions.values()), 6),
        "gbSecondsPerMessageAtCpuTime": round(sum(f["gbSecondsPerMessageAtCpuTime"] for f in functions.values()), 6),
    }


def _logs_section(logs: _LogCounter, invocations: Mapping[str, list[float]], per: float) -> dict[str, Any]:
    captured = sum(logs.bytes.values())
    platform = PLATFORM_LOG_BYTES_PER_INVOCATION * sum(len(durations) for durations in invocations.values())
    return {
        "bytesPerMessage": {
            "functions": round(captured / per, 1),
            "platformEstimate": round(platform / per, 1),
            "total": round((captured + platform) / per, 1),
        },
        "functionBytesByCaller": dict(sorted(logs.bytes.items())),
        "functionLinesByCaller": dict(sorted(logs.lines.items())),
    }


@dataclass(frozen=True)
class CostLine:
    component: str
    price: str  # a key of PRICES
    label: str
    in_total: bool = True


def _cost_lines(settings: CapacitySettings) -> list[CostLine]:
    return [
        CostLine("dynamodbWrite", "dynamodbWrite", "DynamoDB writes (WRU, table + indexes)"),
        CostLine("dynamodbRead", "dynamodbRead", "DynamoDB reads (RRU, table + indexes)"),
        CostLine("sqsFifo", "sqsFifo", "SQS FIFO requests (64 KB chunks)"),
        CostLine("lambdaRequests", "lambdaRequests", "Lambda requests (all functions)"),
        CostLine("lambdaDuration", "lambdaArmGbSecond", "Lambda duration (GB-s, arm64, wall time measured here)"),
        CostLine("xrayTraces", "xrayTraces", f"X-Ray traces ({settings.xray_sampled_share:g} of invocations sampled)"),
        CostLine("cloudwatchLogs", "cloudwatchLogsGb", "CloudWatch Logs ingestion (GB)"),
        CostLine("scheduler", "schedulerInvocations", f"EventBridge Scheduler (1 tick/min at {settings.mps} msg/s)"),
        CostLine(
            "lambdaDurationAtCpuTime",
            "lambdaArmGbSecond",
            "Lambda duration at handler CPU time (lower bound; instead of the wall time, not in the total)",
            in_total=False,
        ),
        CostLine("twilio", "twilioWhatsApp", "Twilio WhatsApp fee (comparison; not in the AWS total)", in_total=False),
    ]


def _cost_rows(campaign: Mapping[str, Any], settings: CapacitySettings) -> list[dict[str, Any]]:
    """Units per message of each billed dimension and what they cost per 1,000,000 messages."""
    dynamodb, aws, functions, logs = campaign["dynamodb"], campaign["aws"], campaign["lambda"], campaign["logs"]
    units = {
        "dynamodbWrite": dynamodb["wruPerMessage"]["total"],
        "dynamodbRead": dynamodb["rruPerMessage"]["total"],
        "sqsFifo": aws["sqsBilledRequestsPerMessage"],
        "lambdaRequests": functions["invocationsPerMessage"],
        "lambdaDuration": functions["gbSecondsPerMessage"],
        "xrayTraces": functions["invocationsPerMessage"] * settings.xray_sampled_share,
        "cloudwatchLogs": logs["bytesPerMessage"]["total"] / GIB,
        # The planner's schedule ticks once a minute whatever the volume: a million messages at the account's rate
        # take 1e6 / mps seconds.
        "scheduler": 1 / (settings.mps * 60),
        "lambdaDurationAtCpuTime": functions["gbSecondsPerMessageAtCpuTime"],
        "twilio": 1.0,
    }
    rows = []
    for line in _cost_lines(settings):
        price = PRICES[line.price]
        per_message = units[line.component]
        rows.append(
            {
                "component": line.component,
                "label": line.label,
                "price": line.price,
                "inAwsTotal": line.in_total,
                "unitsPerMessage": per_message,
                "priceUsd": price.usd,
                "pricePerUnits": price.per,
                "costPerMillionMessagesUsd": round(per_message * 1e6 * price.usd / price.per, 4),
            }
        )
    return rows


def _cost_section(campaigns: Mapping[str, Mapping[str, Any]], settings: CapacitySettings) -> dict[str, Any]:
    section: dict[str, Any] = {}
    for name, campaign in campaigns.items():
        rows = _cost_rows(campaign, settings)
        aws_total = sum(row["costPerMillionMessagesUsd"] for row in rows if row["inAwsTotal"])
        section[name] = {"rows": rows, "awsTotalPerMillionMessagesUsd": round(aws_total, 2)}
    return section


def _format_units(value: float) -> str:
    return f"{value:.3g}" if value < 0.01 else f"{value:,.3f}"


def _markdown_costs(costs: Mapping[str, Mapping[str, Any]]) -> str:
    names = list(costs)
    header = ["Component"]
    header += [f"Units/msg ({name})" for name in names]
    header += ["Price (USD)"]
    header += [f"USD per 1M msgs ({name})" for name in names]
    header += ["Source, date"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows_by_campaign = {name: {row["component"]: row for row in costs[name]["rows"]} for name in names}
    components = [row["component"] for row in costs[names[0]]["rows"]]

    def line(component: str) -> str:
        first = rows_by_campaign[names[0]][component]
        price = PRICES[first["price"]]
        cells = [first["label"]]
        cells += [_format_units(rows_by_campaign[name][component]["unitsPerMessage"]) for name in names]
        cells += [f"{price.usd:g} per {price.per:,.0f} ({price.unit})"]
        cells += [f"{rows_by_campaign[name][component]['costPerMillionMessagesUsd']:,.2f}" for name in names]
        cells += [f"{price.source} ({price.as_of}; {price.checked})"]
        return "| " + " | ".join(cells) + " |"

    lines += [line(component) for component in components if rows_by_campaign[names[0]][component]["inAwsTotal"]]
    totals = ["**AWS total**", *[""] * len(names), ""]
    totals += [f"**{costs[name]['awsTotalPerMillionMessagesUsd']:,.2f}**" for name in names]
    totals += [""]
    lines.append("| " + " | ".join(totals) + " |")
    lines += [line(component) for component in components if not rows_by_campaign[names[0]][component]["inAwsTotal"]]
    return "\n".join(lines)


def _markdown_capacity(campaigns: Mapping[str, Mapping[str, Any]]) -> str:
    names = list(campaigns)
    lines = ["| Figure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label: str, value: Callable[[Mapping[str, Any]], Any]) -> None:
        lines.append(f"| {label} | " + " | ".join(str(value(campaigns[name])) for name in names) + " |")

    row("Messages sent / status", lambda c: f"{c['counters'].get('sent', 0):,} / {c['status']}")
    row("WRU per message (table + index)", lambda c: _table_index(c["dynamodb"]["wruPerMessage"]))
    row("RRU per message (table + index)", lambda c: _table_index(c["dynamodb"]["rruPerMessage"]))
    row("Hottest item: writes per message", lambda c: _hot(c, "writesPerMessage"))
    row("Hottest item: WRU per write", lambda c: _hot(c, "wruPerWrite"))
    row("Send rate at which it takes 1,000 WCU/s (msg/s)", lambda c: _hot(c, "sendRateAt1000WcuPerSecond"))
    row("Hottest partition: WRU per message", lambda c: _partition(c, "wruPerMessage"))
    row("Send rate at which it takes 1,000 WCU/s (msg/s)", lambda c: _partition(c, "sendRateAt1000WcuPerSecond"))
    row(
        "AWS API calls per message",
        lambda c: ", ".join(f"{service} {count}" for service, count in c["aws"]["callsPerMessage"].items()),
    )
    row("SQS billed requests per message", lambda c: c["aws"]["sqsBilledRequestsPerMessage"])
    row(
        "Sender: invocations per message / mean handler ms",
        lambda c: _function(c, SENDER, "invocationsPerMessage", "mean"),
    )
    row(
        "Sender: mean handler CPU ms per invocation",
        lambda c: c["lambda"]["functions"].get(SENDER, {}).get("handlerCpuMs", {}).get("mean"),
    )
    row(
        "Lambda GB-s per message, all functions (wall / CPU)",
        lambda c: f"{c['lambda']['gbSecondsPerMessage']} / {c['lambda']['gbSecondsPerMessageAtCpuTime']}",
    )
    row("Log bytes per message (functions + platform estimate)", lambda c: c["logs"]["bytesPerMessage"]["total"])
    return "\n".join(lines)


def _table_index(units: Mapping[str, Any]) -> str:
    return f"{units['total']} ({units['table']} + {units['index']})"


def _hot(campaign: Mapping[str, Any], field: str) -> Any:
    hottest = campaign["dynamodb"]["hottestItem"]
    if not hottest:
        return None
    return f"{hottest[field]} ({hottest['key']})" if field == "writesPerMessage" else hottest[field]


def _partition(campaign: Mapping[str, Any], field: str) -> Any:
    partitions = campaign["dynamodb"]["hottestPartitions"]
    if not partitions:
        return None
    return f"{partitions[0][field]} ({partitions[0]['key']})" if field == "wruPerMessage" else partitions[0][field]


def _function(campaign: Mapping[str, Any], function: str, count_field: str, time_field: str) -> str:
    figures = campaign["lambda"]["functions"].get(function)
    if not figures:
        return "-"
    return f"{figures[count_field]} / {figures['handlerMs'][time_field]}"


def run_capacity(settings: CapacitySettings) -> dict[str, Any]:
    botocore.client.BaseClient._make_api_call = _counting_call  # type: ignore[attr-defined]
    missing = _instrument_callers()
    meter = CapacityMeter(label_header=CALLER_HEADER, ignore_labels=IGNORED_LABELS).install()
    # The functions log at INFO as in AWS (infra: LOG_LEVEL=INFO) and print their EMF metric lines: both end up in
    # CloudWatch Logs there. Here they go to the counter instead of the terminal.
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO"
    log_copy = settings.log_copy.open("w") if settings.log_copy else None
    logs = _LogCounter(log_copy)
    real_stdout, sys.stdout = sys.stdout, logs
    campaigns: dict[str, dict[str, Any]] = {}
    try:
        config = LocalStackConfig(
            port=0,
            state_dir=Path(tempfile.mkdtemp(prefix="wabacast-bench-")),
            feed_window_seconds=settings.feed_window,
            show_metrics=True,
            # The send path alone: status callbacks are measured by bench/webhook_bench.py.
            sandbox=SandboxSettings(latency_ms=settings.latency_ms, jitter_ms=settings.latency_ms / 2, callbacks=False),
        )
        stack = LocalStack(config)
        endpoints = stack.start()
        try:
            api = httpx.Client(
                base_url=endpoints.api_url, headers={"Authorization": f"Bearer {endpoints.api_key}"}, timeout=60
            )
            template = {"name": "bench", "language": "en_US"}
            # (a) contacts selected by tag
            tag_account = _create_account(api, "Bench contacts", "+14155550100", settings.mps)
            _progress(f"uploading {settings.messages:,} contacts")
            _upload_contacts(api, settings.messages)
            queue = api.post(
                "/api/whatsapp/queue",
                json={
                    "name": "bench-contacts",
                    "accountId": tag_account,
                    "template": template,
                    "variables": {"1": "{{contact.name}}"},
                    "audience": {"contactTags": ["bench"]},
                },
            )
            queue.raise_for_status()
            _progress(f"campaign contactTags: {settings.messages:,} messages")
            campaigns["contactTags"] = _run_campaign(
                api, meter, logs, settings, "contactTags", queue.json()["id"], settings.messages
            )
            # (b) inline recipients, each with a variable of its own, on an account of their own
            inline_account = _create_account(api, "Bench inline", "+14155550101", settings.mps)
            recipients = [
                {"phoneNumber": f"+1415{3000000 + index:07d}", "variables": {"1": f"R{index}"}}
                for index in range(settings.inline_recipients)
            ]
            queue = api.post(
                "/api/whatsapp/queue",
                json={
                    "name": "bench-inline",
                    "accountId": inline_account,
                    "template": template,
                    "audience": {"recipients": recipients},
                },
            )
            queue.raise_for_status()
            _progress(f"campaign inlineRecipients: {settings.inline_recipients:,} messages")
            campaigns["inlineRecipients"] = _run_campaign(
                api, meter, logs, settings, "inlineRecipients", queue.json()["id"], settings.inline_recipients
            )
        finally:
            stack.stop()
    finally:
        sys.stdout = real_stdout
        meter.uninstall()
        if log_copy is not None:
            log_copy.close()
    costs = _cost_section(campaigns, settings)
    return {
        "mode": "capacity",
        "measuredAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "messages": settings.messages,
            "inlineRecipients": settings.inline_recipients,
            "messagesPerSecondLimit": settings.mps,
            "feedWindowSeconds": settings.feed_window,
            "sandboxLatencyMs": settings.latency_ms,
            "senderMemoryMb": settings.sender_memory_mb,
            "xraySampledShare": settings.xray_sampled_share,
            "platformLogBytesPerInvocation": PLATFORM_LOG_BYTES_PER_INVOCATION,
        },
        "notMeasured": missing,
        "campaigns": campaigns,
        "prices": {name: asdict(price) for name, price in PRICES.items()},
        "costPerMillionMessages": costs,
        "capacityTableMarkdown": _markdown_capacity(campaigns),
        "costTableMarkdown": _markdown_costs(costs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--mps", type=int, default=100, help="the account's messagesPerSecond")
    parser.add_argument("--feed-window", type=float, default=1.0, help="FEED_WINDOW_S (cloud: 60)")
    parser.add_argument("--sandbox-latency-ms", type=float, default=50.0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per campaign")
    parser.add_argument("--output", help="also write the JSON report to this file")
    capacity = parser.add_argument_group("capacity mode")
    capacity.add_argument("--capacity", action="store_true", help="measure request units and cost, not speed")
    capacity.add_argument("--inline-recipients", type=int, default=1000, help="campaign (b)'s size (at most 1000)")
    capacity.add_argument(
        "--sender-memory-mb", type=int, default=None, help="default: infra/capabilities/delivery.py, else 256"
    )
    capacity.add_argument("--xray-sampled-share", type=float, default=0.01, help="share of invocations traced")
    capacity.add_argument("--log-copy", type=Path, help="also write what the functions print to this file")
    capacity.add_argument("--markdown", type=Path, help="also write the markdown tables to this file")
    arguments = parser.parse_args()
    if arguments.capacity:
        report = run_capacity(
            CapacitySettings(
                messages=arguments.messages,
                inline_recipients=min(arguments.inline_recipients, 1000),
                mps=arguments.mps,
                feed_window=arguments.feed_window,
                latency_ms=arguments.sandbox_latency_ms,
                timeout_s=arguments.timeout,
                sender_memory_mb=arguments.sender_memory_mb or infra_memory_mb(SENDER) or 256,
                xray_sampled_share=arguments.xray_sampled_share,
                log_copy=arguments.log_copy,
            )
        )
        markdown = f"{report['capacityTableMarkdown']}\n\n{report['costTableMarkdown']}\n"
        print(markdown, file=sys.stderr)
        if arguments.markdown:
            arguments.markdown.write_text(markdown)
    else:
        report = run(
            arguments.messages, arguments.mps, arguments.feed_window, arguments.sandbox_latency_ms, arguments.timeout
        )
    text = json.dumps(report, indent=2)
    if arguments.output:
        Path(arguments.output).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
