"""The delivery pipeline on moto: the API starts queues, the planner and sender Lambdas move the jobs, and a sandbox
WhatsApp provider on 127.0.0.1 receives the messages.

`Pipeline` plays what AWS does between the functions: the planner's schedule (`tick`), the SQS event source
mapping of every account queue (`drain_once`: up to k concurrent sender invocations, each with a batch of up to 10
records, deleting what the sender did not report in `batchItemFailures`) and of every dead-letter queue
(`drain_dead_letters`). Sender and planner handlers may run in several threads at once (each thread is one
Lambda sandbox); the API client is only used from the test's own thread.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import pytest

from tests.integration.conftest import ApiClient, FakeLambdaContext, account_body, load_function_module
from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.adapters.dynamodb.jobs import JOB_PREFIX, job_from_item, job_partitions
from wabacast.domain.delivery import account_queue_name, parse_account_queue_name
from wabacast.domain.jobs import Job
from wabacast.settings import Settings
from wabacast_local.event_sources import lambda_sqs_event
from wabacast_local.moto_fixes import install_all as install_moto_fixes
from wabacast_local.sandbox import SandboxServer

SETTLED = frozenset({"COMPLETED", "PAUSED", "CANCELLED", "FAILED"})
COUNTER_PARTS = ("pending", "sent", "failed", "optedOut", "skipped")


@pytest.fixture(autouse=True, scope="session")
def moto_like_aws_and_faster() -> None:
    """The local stack's own moto fixes (isolated DynamoDB requests, AWS's 5-minute SQS deduplication, speed)."""
    install_moto_fixes()


# Environment ---------------------------------------------------------------------------------------------------
@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture(autouse=True)
def delivery_environment(
    settings: Settings,
    sandbox: SandboxServer,
    concurrent_sandboxes: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before any handler reads its settings: sandbox accounts send to the local sandbox, and a retried job is
    visible again at once instead of after 15 s, 30 s, ... (the backoff's length is not what these tests check)."""
    monkeypatch.setenv("SANDBOX_BASE_URL", sandbox.url)
    monkeypatch.setattr("wabacast.logic.sender.BACKOFF_BASE_S", 0)


# Driver --------------------------------------------------------------------------------------------------------
@dataclass
class Invocation:
    account_id: str
    messages: list[dict[str, Any]]
    failures: set[str] = field(default_factory=set)
    error: BaseException | None = None


@dataclass
class DrainReport:
    invocations: list[Invocation] = field(default_factory=list)

    @property
    def received(self) -> int:
        return sum(len(invocation.messages) for invocation in self.invocations)

    @property
    def crashed(self) -> list[Invocation]:
        return [invocation for invocation in self.invocations if invocation.error is not None]


PLAN_QUEUE_NAME = "wabacast-plan"


class Pipeline:
    """Plays the planner schedule and the SQS event source mappings for one test's moto world: the plan queue's
    (one plan worker invocation per message), the account queues' and their dead-letter queues'."""

    def __init__(self, settings: Settings, api: ApiClient, sandbox: SandboxServer) -> None:
        self.settings = settings
        self.api = api
        self.sandbox = sandbox
        self.planner = load_function_module("planner", "handler")
        self.plan_worker = load_function_module("planner", "worker")
        self.sender = load_function_module("sender", "handler")
        self.dead_letter = load_function_module("sender", "dead_letter")
        self.sqs = boto3.client("sqs", region_name=settings.region)
        self.table = TableGateway(boto3.client("dynamodb", region_name=settings.region), settings.table_name)
        self.tick_reports: list[dict[str, Any]] = []
        self.drain_reports: list[DrainReport] = []
        self._urls: dict[str, str] = {}
        self._arns: dict[str, str] = {}
        # Batches whose sender invocation raised: still in flight, as in AWS until their visibility timeout.
        self.crashed: list[Invocation] = []

    # Planner -----------------------------------------------------------------------------------------------
    def tick(self) -> dict[str, Any]:
        """The schedule fires the planner, which dispatches one message per active account to the plan queue;
        its mapping invokes the plan worker once per message. Returns the workers' reports added up."""
        dispatch: dict[str, Any] = self.planner.lambda_handler({"source": "test"}, FakeLambdaContext())
        assert not dispatch["errors"], dispatch["errors"]
        report: dict[str, Any] = {"dispatched": dispatch["dispatched"], "errors": []}
        url = self.sqs.get_queue_url(QueueName=PLAN_QUEUE_NAME)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        while messages := self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", []):
            for message in messages:
                event = lambda_sqs_event([message], arn, self.settings.region)
                answer = self.plan_worker.lambda_handler(event, FakeLambdaContext())
                for name, value in answer["report"].items():
                    if name == "errors":
                        report["errors"] += value
                    elif name != "dispatched":
                        report[name] = report.get(name, 0) + value
                if not answer["batchItemFailures"]:
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        assert not report["errors"], report["errors"]
        report.setdefault("accounts", 0)
        self.tick_reports.append(report)
        return report

    # Queues ------------------------------------------------------------------------------------------------
    def _queue_name(self, account_id: str, dead_letter: bool = False) -> str:
        return account_queue_name(self.settings.queue_name_prefix, account_id, dead_letter=dead_letter)

    def queue_url(self, account_id: str, dead_letter: bool = False) -> str:
        name = self._queue_name(account_id, dead_letter)
        if name not in self._urls:
            self._urls[name] = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return self._urls[name]

    def queue_arn(self, account_id: str, dead_letter: bool = False) -> str:
        url = self.queue_url(account_id, dead_letter)
        if url not in self._arns:
            attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
            self._arns[url] = attributes["QueueArn"]
        return self._arns[url]

    def account_ids(self) -> list[str]:
        """Every account with a delivery queue (created by the API when the account was)."""
        prefix = self.settings.queue_name_prefix
        urls = self.sqs.list_queues(QueueNamePrefix=f"{prefix}-").get("QueueUrls", [])
        parsed = [parse_account_queue_name(prefix, url) for url in urls]
        return sorted(queue.account_id for queue in parsed if queue is not None and not queue.dead_letter)

    def mapped_account_ids(self) -> list[str]:
        """The accounts whose queue's event source mapping is enabled: ACTIVE ones (AccountQueues.provision)."""
        response = self.api.get("/api/whatsapp/accounts", limit=100)
        assert response.status == 200, response.body
        active = {item["id"] for item in response.body["items"] if item["status"] == "ACTIVE"}
        return [account_id for account_id in self.account_ids() if account_id in active]

    def backlog(self, account_id: str) -> int:
        names: Any = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url(account_id), AttributeNames=names)
        return sum(int(value) for value in attributes["Attributes"].values())

    def receive(self, account_id: str, dead_letter: bool = False, limit: int = 10) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url(account_id, dead_letter),
            MaxNumberOfMessages=limit,
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        messages: Any = response.get("Messages", [])
        return list(messages)

    def event(self, account_id: str, messages: list[dict[str, Any]], dead_letter: bool = False) -> dict[str, Any]:
        """The Lambda SQS event the event source mapping would build from received messages."""
        return lambda_sqs_event(messages, self.queue_arn(account_id, dead_letter), self.settings.region)

    def release(self, invocations: Iterable[Invocation]) -> None:
        """Their visibility timeout lapses: SQS hands the messages out again."""
        for invocation in invocations:
            url = self.queue_url(invocation.account_id)
            for message in invocation.messages:
                self.sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )

    def redeliver_crashed(self) -> int:
        crashed, self.crashed = self.crashed, []
        self.release(crashed)
        return sum(len(invocation.messages) for invocation in crashed)

    # Sender ------------------------------------------------------------------------------------------------
    def invoke_sender(self, account_id: str, messages: list[dict[str, Any]]) -> Invocation:
        """One sender invocation; its answer settles the messages as the event source mapping does."""
        invocation = Invocation(account_id, messages)
        try:
            answer = self.sender.lambda_handler(self.event(account_id, messages), FakeLambdaContext())
        except Exception as error:  # the function failed: Lambda deletes nothing
            invocation.error = error
            return invocation
        invocation.failures = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
        done = [message for message in messages if message["MessageId"] not in invocation.failures]
        if done:
            response = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url(account_id),
                Entries=[{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(done)],
            )
            assert not response.get("Failed"), response
        return invocation

    def drain_once(self, concurrency: int = 1, account_ids: Iterable[str] | None = None) -> DrainReport:
        """One round of the enabled event source mappings: up to `concurrency` batches, each to its own
        concurrent sender invocation."""
        batches: list[tuple[str, list[dict[str, Any]]]] = []
        for account_id in account_ids if account_ids is not None else self.mapped_account_ids():
            while len(batches) < concurrency:
                messages = self.receive(account_id)
                if not messages:
                    break
                batches.append((account_id, messages))
        report = DrainReport()
        if not batches:
            return report
        with ThreadPoolExecutor(max_workers=len(batches)) as pool:
            report.invocations = list(pool.map(lambda batch: self.invoke_sender(*batch), batches))
        self.crashed.extend(report.crashed)
        self.drain_reports.append(report)
        return report

    def drain(
        self,
        concurrency: int = 1,
        max_rounds: int = 1000,
        after_round: Callable[[DrainReport], None] | None = None,
    ) -> int:
        """Rounds of `drain_once` until the account queues hand out nothing; returns the messages received."""
        received = 0
        account_ids = self.mapped_account_ids()
        for _ in range(max_rounds):
            report = self.drain_once(concurrency, account_ids)
            if after_round is not None:
                after_round(report)
            if not report.invocations:
                return received
            received += report.received
        raise AssertionError(f"the account queues still had messages after {max_rounds} rounds")

    def drain_dead_letters(self) -> int:
        """The dead-letter event source mappings: every DLQ message to the dead-letter consumer."""
        handled = 0
        for account_id in self.account_ids():
            for _ in range(1000):
                messages = self.receive(account_id, dead_letter=True)
                if not messages:
                    break
                answer = self.dead_letter.lambda_handler(
                    self.event(account_id, messages, dead_letter=True), FakeLambdaContext()
                )
                assert answer == {"batchItemFailures": []}
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url(account_id, dead_letter=True),
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )
                handled += len(messages)
        return handled

    # Whole runs --------------------------------------------------------------------------------------------
    def progress(self, queue_id: str) -> dict[str, Any]:
        response = self.api.get(f"/api/whatsapp/queue/{queue_id}/process")
        assert response.status == 200, response.body
        return response.body  # type: ignore[no-any-return]

    def run_until_settled(
        self,
        queue_ids: str | Iterable[str],
        max_rounds: int = 50,
        concurrency: int = 1,
        settled: frozenset[str] = SETTLED,
        after_drain: Callable[[DrainReport], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Tick, drain, repeat until every queue's status is in `settled`; returns their progress.

        After every drain round (one batch per concurrent sender) each queue's counters must add up; then
        `after_drain` runs with that round's report."""
        ids = [queue_ids] if isinstance(queue_ids, str) else list(queue_ids)

        def check(report: DrainReport) -> None:
            for queue_id in ids:
                assert_counters_add_up(self.progress(queue_id)["counters"])
            if after_drain is not None:
                after_drain(report)

        progress: dict[str, dict[str, Any]] = {}
        for _ in range(max_rounds):
            self.tick()
            self.drain(concurrency, after_round=check)
            progress = {queue_id: self.progress(queue_id) for queue_id in ids}
            if all(shown["status"] in settled for shown in progress.values()):
                return progress
        raise AssertionError(f"not settled after {max_rounds} rounds: {progress}")

    # Reading state -----------------------------------------------------------------------------------------
    def sandbox_messages(self) -> list[dict[str, Any]]:
        """What the sandbox accepted, through its GET /messages."""
        response = httpx.get(f"{self.sandbox.url}/messages", timeout=10)
        assert response.status_code == 200, response.text
        return list(response.json()["messages"])

    def recipients_messaged(self) -> Counter[str]:
        """Accepted messages per recipient, as E.164 (the sandbox records the digits)."""
        return Counter("+" + message["to"] for message in self.sandbox_messages())

    def jobs(self, queue_id: str) -> list[Job]:
        """Every job of a queue, straight from the table (all its job partitions)."""
        items: list[Job] = []
        for partition in job_partitions(queue_id):
            token: str | None = None
            for _ in range(1000):
                page, token = self.table.query_page(
                    partition_attribute="PK",
                    partition_value=partition,
                    sort_attribute="SK",
                    sort_prefix=JOB_PREFIX,
                    limit=100,
                    next_token=token,
                )
                items.extend(job_from_item(item) for item in page)
                if token is None:
                    break
            else:
                raise AssertionError("too many job pages")
        return items

    def job_statuses(self, queue_id: str) -> Counter[str]:
        return Counter(job.status.value for job in self.jobs(queue_id))


def assert_counters_add_up(counters: dict[str, Any]) -> None:
    """total = pending + sent + failed + optedOut + skipped, none negative."""
    assert all(counters[part] >= 0 for part in (*COUNTER_PARTS, "total")), counters
    assert counters["total"] == sum(counters[part] for part in COUNTER_PARTS), counters


@pytest.fixture
def make_pipeline(
    settings: Settings, business: ApiClient, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Pipeline]:
    """A Pipeline whose functions read these settings (fresh handler modules, so fresh cached settings)."""

    def make(feed_window_s: float = 60, max_rate_wait_s: float = 20, requeue_after_s: float = 900) -> Pipeline:
        plan_queue = boto3.client("sqs", region_name=settings.region).create_queue(QueueName=PLAN_QUEUE_NAME)
        monkeypatch.setenv("PLAN_QUEUE_URL", plan_queue["QueueUrl"])
        monkeypatch.setenv("FEED_WINDOW_S", str(feed_window_s))
        monkeypatch.setenv("MAX_RATE_WAIT_S", str(max_rate_wait_s))
        monkeypatch.setenv("REQUEUE_AFTER_S", str(requeue_after_s))
        return Pipeline(settings, business, sandbox)

    return make


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline()


# API helpers ---------------------------------------------------------------------------------------------------
def sandbox_account(
    api: ApiClient, phone_number: str, mps: int = 1000, daily: int = 1_000_000, **fields: Any
) -> dict[str, Any]:
    # Unlimited tier unless a test says otherwise: `daily` alone caps the unique recipients per 24 h.
    fields.setdefault("messagingTier", "TIER_UNLIMITED")
    body = account_body(phone_number, "sandbox", **fields)
    body["limits"] = {"messagesPerSecond": mps, "dailyRecipientLimit": daily}
    response = api.post("/api/whatsapp/accounts", body)
    assert response.status == 201, response.body
    return response.body  # type: ignore[no-any-return]


def new_queue(api: ApiClient, phones: Iterable[str] = (), **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Delivery test",
        "template": {"name": "spring_sale", "language": "en_US"},
        "audience": {"recipients": [{"phoneNumber": number} for number in phones]},
    }
    body.update(fields)
    response = api.post("/api/whatsapp/queue", body)
    assert response.status == 201, response.body
    return response.body  # type: ignore[no-any-return]


def process(api: ApiClient, queue_id: str) -> dict[str, Any]:
    response = api.post(f"/api/whatsapp/queue/{queue_id}/process")
    assert response.status == 202, response.body
    return response.body  # type: ignore[no-any-return]


def queue_action(api: ApiClient, queue_id: str, action: str) -> dict[str, Any]:
    response = api.post(f"/api/whatsapp/queue/{queue_id}/{action}")
    assert response.status == 200, response.body
    return response.body  # type: ignore[no-any-return]


def opt_out(api: ApiClient, phone_number: str) -> None:
    response = api.post("/api/whatsapp/opt-outs", {"phoneNumber": phone_number, "reason": "test"})
    assert response.status in (200, 201), response.body


def upload_contacts(api: ApiClient, phones: list[str], tags: list[str]) -> None:
    for start in range(0, len(phones), 1000):
        rows = [{"phoneNumber": number, "tags": tags} for number in phones[start : start + 1000]]
        response = api.post("/api/whatsapp/contacts", {"contacts": rows})
        assert response.status == 200, response.body
        assert response.body["rejected"] == [], response.body["rejected"][:3]


def error_counts(progress: dict[str, Any]) -> dict[str, int]:
    return {error["code"]: error["count"] for error in progress["lastErrors"]}


def digits(phone_number: str) -> str:
    return phone_number.removeprefix("+")
