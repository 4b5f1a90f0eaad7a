"""Sender memory: how much memory the sender Lambda needs, measured on this machine.

    .venv/bin/python bench/sender_memory.py                  # real jobs, sent to the sandbox provider
    .venv/bin/python bench/sender_memory.py --in-process     # moto in the measured process, jobs not in the table

The sender is measured in a fresh Python process of its own, as a Lambda execution environment runs it: it imports
functions/sender/handler.py (as tests/integration/conftest.py `load_function_module` does), then handles
`--batches` SQS batches of 10 records one after the other, as a warm environment does. The process reports its
peak resident set size (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) after the import and after each batch. A
second fresh process does the same under `tracemalloc` and reports the Python allocation peaks of the import and
of each batch (tracemalloc's own bookkeeping inflates that process's RSS, hence two processes).

Default mode: this process plays AWS and the provider. It starts moto's server (with the project's DynamoDB fix,
wabacast_local.moto_fixes) and the sandbox WhatsApp provider, creates the table (`create_table_request`, through
wabacast.bootstrap), then through the real API and authorizer handlers an admin key, a business, a sandbox
account (its FIFO queues) and a queue of `--batches` x 10 inline recipients per measured process, starts it, and
runs the planner handler once, which materializes the jobs and puts them on the account's queue. It receives
the messages in batches of 10 and hands them, as Lambda SQS events, to the measured processes, which reach moto
and the sandbox over HTTP (AWS_ENDPOINT_URL, SANDBOX_BASE_URL): the measured process holds only what the sender
holds in Lambda. The measured processes get the environment Lambda's active tracing sets (a sampled trace header,
the X-Ray daemon's address pointing at a local socket of this process): the functions trace with Lambda's own
active tracing and no SDK (docs/decisions.md 18-19), so nothing in the process should send a segment, and the run
reports how many arrived (expected: 0).

`--in-process`: the measured process itself runs moto (`moto.mock_aws`), creates the table with
`create_table_request` and handles batches of 10 records whose jobs do not exist (the sender settles them as
duplicates). Simpler, but moto's own modules and state are then counted too, and no provider call is made.

The figures are for CPython on this machine (see the printed platform); Lambda runs CPython 3.12 on ARM64, and
its runtime client adds a little on top. See docs/operations.md ("Sizing") for how they size the function.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SENDER_DIR = REPO_ROOT / "functions" / "sender"
RECORDS_PER_BATCH = 10  # the account queues' event source mappings hand the sender up to 10 records
MB = 1024 * 1024
TABLE_NAME = "wabacast-bench"
REGION = "us-east-1"
QUEUE_NAME_PREFIX = "wabacast"
SYNTHETIC_ACCOUNT = "acc_bench"  # --in-process: the account of the records (no such account in the table)
# What every function gets from the stack (infra/capabilities/runtime.py, delivery.py), plus test credentials.
BASE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "TABLE_NAME": TABLE_NAME,
    "SECRETS_PREFIX": "wabacast",
    "QUEUE_NAME_PREFIX": QUEUE_NAME_PREFIX,
    "MAX_RATE_WAIT_S": "20",
    "JOB_RETENTION_DAYS": "90",
    "POWERTOOLS_SERVICE_NAME": "wabacast",
    "POWERTOOLS_METRICS_NAMESPACE": "wabacast",
    "LOG_LEVEL": "INFO",
}
# Variables of the operator's own shell that would send boto3 elsewhere.
FOREIGN_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


def peak_rss_bytes() -> int:
    """The process's peak resident set size so far (ru_maxrss is in KiB on Linux, in bytes on macOS).

    On Linux a new process starts with the ru_maxrss of the process it was forked from; the measured processes
    are therefore started before this script imports anything large (see `MeasuredProcess`).
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def high_water_rss_bytes() -> int | None:
    """Linux's VmHWM: the peak RSS of this process's own memory since its exec, as a cross-check; None elsewhere."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def rss_figures() -> dict[str, float | None]:
    high_water = high_water_rss_bytes()
    return {"ru_maxrss_mb": peak_rss_bytes() / MB, "vmhwm_mb": None if high_water is None else high_water / MB}


def load_function_module(function_dir: Path, module: str) -> ModuleType:
    """Import a handler file the way Lambda does: from its own code folder, under a unique name."""
    path = function_dir / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"wabacast_bench_{function_dir.name}_{module}", path)
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    spec.loader.exec_module(loaded)
    return loaded


class BenchLambdaContext:
    """The attributes of the Python runtime's context object the handler and Powertools read."""

    def __init__(self, function_name: str, memory_mb: int, timeout_s: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"bench/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# The measured process ---------------------------------------------------------------------------------------------
def measure(events: list[dict[str, Any]], trace_allocations: bool, in_process: bool) -> dict[str, Any]:
    """Import the sender and handle `events` in this process; the figures after each step."""
    report: dict[str, Any] = {"start": rss_figures(), "tracemalloc": trace_allocations}
    mock: Any = None
    if in_process:
        import boto3
        from moto import mock_aws

        from wabacast.storage.table import create_table_request

        mock = mock_aws()
        mock.start()
        boto3.client("dynamodb", region_name=REGION).create_table(**create_table_request(TABLE_NAME))
        # The queue the records come from: the sender looks its URL up from the event's ARN.
        boto3.client("sqs", region_name=REGION).create_queue(
            QueueName=f"{QUEUE_NAME_PREFIX}-{SYNTHETIC_ACCOUNT}.fifo", Attributes={"FifoQueue": "true"}
        )
        report["moto_ready"] = rss_figures()
    if trace_allocations:
        tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    sender = load_function_module(SENDER_DIR, "handler")
    report["import_s"] = time.perf_counter() - started
    report["import_cpu_s"] = time.process_time() - cpu_started
    report["after_import"] = rss_figures()
    if trace_allocations:
        current, peak = tracemalloc.get_traced_memory()
        report["import_traced_mb"] = {"current": current / MB, "peak": peak / MB}
    batches: list[dict[str, Any]] = []
    for event in events:
        before = 0
        if trace_allocations:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
        started, cpu_started = time.perf_counter(), time.process_time()
        answer = sender.lambda_handler(event, BenchLambdaContext("wabacast-sender", 512, 60))
        batch: dict[str, Any] = {
            "records": len(event["Records"]),
            "handed_back": len(answer["batchItemFailures"]),
            "seconds": time.perf_counter() - started,
            # CPU time of the whole process (every thread of the sender's pool) during the batch.
            "cpu_seconds": time.process_time() - cpu_started,
            **rss_figures(),
        }
        if trace_allocations:
            current, peak = tracemalloc.get_traced_memory()
            # Above what was allocated before the batch: what handling it needed at most, and what it kept.
            batch["traced_mb"] = {"peak_above_before": (peak - before) / MB, "kept": (current - before) / MB}
        batches.append(batch)
    report["batches"] = batches
    if mock is not None:
        mock.stop()
    return report


def synthetic_events(batches: int) -> list[dict[str, Any]]:
    """Batches of records whose jobs are not in the table (--in-process): the sender settles them as duplicates."""
    arn = f"arn:aws:sqs:{REGION}:123456789012:{QUEUE_NAME_PREFIX}-{SYNTHETIC_ACCOUNT}.fifo"
    events = []
    for batch in range(batches):
        records = []
        for index in range(RECORDS_PER_BATCH):
            number = batch * RECORDS_PER_BATCH + index
            body = {"b": "biz_bench", "q": "que_bench", "j": f"job{number:05d}"}
            records.append(
                {
                    "messageId": str(uuid.uuid4()),
                    "receiptHandle": uuid.uuid4().hex,
                    "body": json.dumps(body),
                    "attributes": {"MessageGroupId": f"+34612{number:06d}", "ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": REGION,
                }
            )
        events.append({"Records": records})
    return events


def child_main(arguments: argparse.Namespace) -> int:
    """A measured process: waits for its orders on stdin (environment, events), then measures."""
    orders = json.loads(sys.stdin.readline())
    # Before the sender, boto3 and Powertools are imported: they read their settings from the environment.
    for name in (*FOREIGN_VARIABLES, "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(orders["environment"])
    events = json.loads(Path(orders["events_file"]).read_text()) if orders["events_file"] else []
    if arguments.in_process:
        events = synthetic_events(orders["batches"])
    report = measure(events, trace_allocations=arguments.trace_allocations, in_process=arguments.in_process)
    Path(orders["report_file"]).write_text(json.dumps(report))
    return 0


class MeasuredProcess:
    """A fresh Python process for the sender, started while this script is still small.

    On Linux, a process starts with the peak RSS (ru_maxrss) of the process it was forked from: started after
    this one has loaded moto and the handlers, it would report their memory as its own. So it is started first,
    and gets its environment and events over stdin once they exist.
    """

    def __init__(self, *, trace_allocations: bool, in_process: bool) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--child"]
        command += ["--trace-allocations"] if trace_allocations else []
        command += ["--in-process"] if in_process else []
        # The function's log and EMF lines go to its stdout, as in Lambda: kept out of this report.
        self._process = subprocess.Popen(  # noqa: S603
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def run(self, events: list[dict[str, Any]], environment: dict[str, str], batches: int) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="wabacast-sender-memory-") as folder:
            events_file = Path(folder) / "events.json"
            report_file = Path(folder) / "report.json"
            if events:
                events_file.write_text(json.dumps(events))
            orders = {
                "environment": environment,
                "events_file": str(events_file) if events else None,
                "report_file": str(report_file),
                "batches": batches,
            }
            stdout, stderr = self._process.communicate(json.dumps(orders) + "\n")
            if self._process.returncode != 0 or not report_file.exists():
                sys.stderr.write(stdout[-4000:] + stderr[-4000:])
                raise SystemExit(f"the measured process failed (exit code {self._process.returncode})")
            report: dict[str, Any] = json.loads(report_file.read_text())
        report["log_lines"] = stdout.count("\n")
        return report

    def cancel(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()


# This process: AWS, the provider and the data ---------------------------------------------------------------------
class UdpSink:
    """The X-Ray daemon's place in Lambda: counts any segment the measured process sends (none without an SDK)."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.address = "{}:{}".format(*self._socket.getsockname())
        self.datagrams = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                self._socket.recv(65536)
            except TimeoutError:
                continue
            self.datagrams += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


def prepare_pipeline(
    measured_processes: int, batches: int
) -> tuple[list[list[dict[str, Any]]], dict[str, str], Callable[[], int]]:
    """Start moto and the sandbox, create the data through the API, plan it; one list of events per process.

    Returns the events, the environment of the measured processes and a function that stops moto and the sandbox
    and says how many messages the sandbox accepted.
    """
    import boto3

    from wabacast.bootstrap import issue_admin_key
    from wabacast.settings import Settings
    from wabacast.storage.table import create_table_request
    from wabacast_local.emulator import MotoEmulator
    from wabacast_local.event_sources import lambda_sqs_event
    from wabacast_local.http_api import HttpApi, HttpRequest, LambdaAuthorizer
    from wabacast_local.lambda_runtime import FunctionConfig, LocalLambdaContext, LocalLambdaFunction
    from wabacast_local.moto_fixes import serialize_dynamodb_requests
    from wabacast_local.sandbox import SandboxServer
    from wabacast_local.stack import api_routes

    serialize_dynamodb_requests()
    emulator = MotoEmulator()
    emulator.start()
    # A provider answer takes 50-100 ms: the sender's 10 calls of a batch overlap, as they do in AWS.
    sandbox = SandboxServer(latency_ms=50, jitter_ms=50, seed=7)
    sandbox.start()
    for name in FOREIGN_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(BASE_ENVIRONMENT)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": emulator.endpoint_url,
            "SANDBOX_BASE_URL": sandbox.url,
            "ALLOW_SANDBOX_ACCOUNTS": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    settings = Settings.from_env()
    # The table of the stack, except that its indexes project every attribute: the measured sender reads no
    # index, and the planner that prepares the data then works whichever index attributes its revision reads
    # (the planner of this revision still reads whole jobs from GSI1, which now projects only phone_number).
    request = create_table_request(settings.table_name)
    for index in request["GlobalSecondaryIndexes"]:
        index["Projection"] = {"ProjectionType": "ALL"}
    boto3.client("dynamodb", region_name=REGION).create_table(**request)
    admin_key = issue_admin_key(settings, "bench")

    functions = REPO_ROOT / "functions"
    api_function = LocalLambdaFunction.from_file(FunctionConfig(name="wabacast-api"), functions / "api" / "handler.py")
    authorizer = LambdaAuthorizer(
        LocalLambdaFunction.from_file(FunctionConfig(name="wabacast-authorizer"), functions / "api" / "authorizer.py")
    )
    http_api = HttpApi(routes=api_routes(api_function, authorizer), region=REGION)

    def call(method: str, path: str, key: str, body: Any = None, expected: int = 200) -> Any:
        request = HttpRequest(
            method=method,
            raw_path=path,
            headers=[("authorization", f"Bearer {key}"), ("content-type", "application/json")],
            body=json.dumps(body).encode() if body is not None else b"",
        )
        response = http_api.handle(request)
        if response.status != expected:
            raise SystemExit(f"{method} {path} answered {response.status}: {response.body[:500]!r}")
        return json.loads(response.body) if response.body else None

    business = call("POST", "/api/admin/businesses", admin_key, {"name": "Bench", "timezone": "UTC"}, 201)
    key = business["apiKey"]
    account = call(
        "POST",
        "/api/whatsapp/accounts",
        key,
        {
            "displayName": "Bench sender",
            "phoneNumber": "+34600000001",
            "provider": "sandbox",
            "limits": {"messagesPerSecond": 1000, "dailyRecipientLimit": 1_000_000},
            "messagingTier": "TIER_UNLIMITED",
        },
        201,
    )
    recipients = measured_processes * batches * RECORDS_PER_BATCH
    queue = call(
        "POST",
        "/api/whatsapp/queue",
        key,
        {
            "name": "Sender memory",
            "template": {"name": "spring_sale", "language": "en_US"},
            "audience": {"recipients": [{"phoneNumber": f"+34612{n:06d}"} for n in range(recipients)]},
        },
        201,
    )
    call("POST", f"/api/whatsapp/queue/{queue['id']}/process", key, expected=202)

    planner = LocalLambdaFunction.from_file(
        FunctionConfig(name="wabacast-planner", timeout_seconds=300), functions / "planner" / "handler.py"
    )
    tick = planner.handler({"source": "bench"}, LocalLambdaContext(planner.config, str(uuid.uuid4())))
    if tick.get("errors"):
        raise SystemExit(f"the planner could not plan the bench queue: {tick['errors']}")

    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.get_queue_url(QueueName=f"{QUEUE_NAME_PREFIX}-{account['id']}.fifo")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events: list[list[dict[str, Any]]] = []
    for _ in range(measured_processes):
        process_events = []
        for _ in range(batches):
            received = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=RECORDS_PER_BATCH,
                AttributeNames=["All"],
                VisibilityTimeout=600,
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if len(received) != RECORDS_PER_BATCH:
                raise SystemExit(f"the planner fed too few messages: a receive got {len(received)}")
            process_events.append(lambda_sqs_event(received, queue_arn, REGION))
        events.append(process_events)

    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in FOREIGN_VARIABLES and key not in ("POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_DISABLED")
    }
    environment["LOG_LEVEL"] = "INFO"

    def finish() -> int:
        """Stop the sandbox and moto; how many messages the sandbox accepted."""
        accepted = int(sandbox.stats()["accepted"])
        sandbox.stop()
        emulator.stop()
        return accepted

    return events, environment, finish


def with_active_tracing(environment: dict[str, str], sink: UdpSink) -> dict[str, str]:
    """What Lambda sets for a function with active tracing and a sampled invocation (an SDK would trace with it)."""
    trace_id = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return {
        **environment,
        "LAMBDA_TASK_ROOT": str(SENDER_DIR),
        "AWS_LAMBDA_FUNCTION_NAME": "wabacast-sender",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "_X_AMZN_TRACE_ID": f"Root={trace_id};Parent={uuid.uuid4().hex[:16]};Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": sink.address,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }


def _rss(figures: dict[str, Any]) -> str:
    text = f"peak RSS {figures['ru_maxrss_mb']:6.1f} MB"
    return text + (f" (VmHWM {figures['vmhwm_mb']:6.1f} MB)" if figures.get("vmhwm_mb") is not None else "")


def summary(report: dict[str, Any]) -> str:
    lines = [f"  interpreter started:      {_rss(report['start'])}"]
    if "moto_ready" in report:
        lines.append(f"  moto + table ready:       {_rss(report['moto_ready'])}")
    lines.append(
        f"  sender imported:          {_rss(report['after_import'])}, import {report['import_s']:.2f} s "
        f"({report['import_cpu_s']:.2f} s CPU)"
    )
    if "import_traced_mb" in report:
        lines.append(f"    Python allocations of the import: peak {report['import_traced_mb']['peak']:.1f} MB")
    for index, batch in enumerate(report["batches"], start=1):
        line = (
            f"  batch {index:2d} ({batch['records']} records, {batch['handed_back']} handed back, "
            f"{batch['seconds']:.2f} s, {batch['cpu_seconds']:.3f} s CPU): {_rss(batch)}"
        )
        if "traced_mb" in batch:
            traced = batch["traced_mb"]
            line += f"; allocations peak +{traced['peak_above_before']:.2f} MB, kept {traced['kept']:+.2f} MB"
        lines.append(line)
    if report["batches"]:
        growth = report["batches"][-1]["ru_maxrss_mb"] - report["after_import"]["ru_maxrss_mb"]
        lines.append(f"  peak RSS growth from the import to the last batch: {growth:.1f} MB")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=10, help="batches of 10 records per measured process")
    parser.add_argument("--in-process", action="store_true", help="moto.mock_aws in the measured process")
    parser.add_argument("--no-tracing", action="store_true", help="without the environment of Lambda's active tracing")
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    # Internal: how this script starts the measured processes.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trace-allocations", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_args(argv)
    if arguments.child:
        return child_main(arguments)
    tracing = not arguments.no_tracing and not arguments.in_process
    # First, while this process holds only the standard library: one process for RSS, one under tracemalloc.
    processes = {
        name: MeasuredProcess(trace_allocations=name == "allocations", in_process=arguments.in_process)
        for name in ("rss", "allocations")
    }
    results: dict[str, Any] = {
        "platform": f"{platform.python_implementation()} {platform.python_version()} {platform.machine()}",
        "mode": "in-process moto, missing jobs" if arguments.in_process else "moto server + sandbox provider",
        "tracing": tracing,
        "batches": arguments.batches,
    }
    try:
        if arguments.in_process:
            environment = {**BASE_ENVIRONMENT, "POWERTOOLS_TRACE_DISABLED": "true"}
            for name, process in processes.items():
                results[name] = process.run([], environment, arguments.batches)
        else:
            started = time.perf_counter()
            events, environment, finish = prepare_pipeline(measured_processes=len(processes), batches=arguments.batches)
            print(f"data created, planned and fed in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            sink = UdpSink()
            try:
                if tracing:
                    environment = with_active_tracing(environment, sink)
                else:
                    environment["POWERTOOLS_TRACE_DISABLED"] = "true"
                for (name, process), process_events in zip(processes.items(), events, strict=True):
                    results[name] = process.run(process_events, environment, arguments.batches)
            finally:
                sink.close()
                results["sandbox_accepted"] = finish()
            results["xray_datagrams"] = sink.datagrams
    finally:
        for process in processes.values():
            process.cancel()
    print(f"Sender memory ({results['mode']}; tracing {'on' if tracing else 'off'}; {results['platform']})")
    print("Fresh process, no tracemalloc:")
    print(summary(results["rss"]))
    print("Fresh process under tracemalloc (Python allocations; tracemalloc's bookkeeping inflates this RSS):")
    print(summary(results["allocations"]))
    if "sandbox_accepted" in results:
        sent = len(processes) * arguments.batches * RECORDS_PER_BATCH
        print(f"Messages the sandbox provider accepted: {results['sandbox_accepted']} of {sent}")
        print(f"X-Ray segment datagrams sent by the measured processes: {results['xray_datagrams']}")
    if arguments.output:
        arguments.output.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
