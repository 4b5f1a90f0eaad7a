"""The delivery pipeline on moto: the API starts queues, the planner and sender Lambdas move the jobs, and a sandbox
WhatsApp provider on 127.0.0.1 receives the messages.

`Pipeline` plays what AWS does between the functions: the planner's schedule (`tick`), the SQS event source
mapping of every account queue (`drain_once`: up to k concurrent sender invocations, each with a batch of up to 10
records, deleting what the sender did not report in `batchItemFailures`) and of every dead-letter queue
(`drain_dead_letters`). Sender and planner handlers may run in several threads at once (each thread is one
Lambda sandbox); the API client is only used from the test's own thread.
"""

from __future__ import annotations

import copy
import functools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import pytest
from moto.core import responses as moto_responses
from moto.core import utils as moto_utils
from moto.dynamodb import models as ddb_models
from moto.dynamodb import responses as ddb_responses
from moto.dynamodb.models import dynamo_type as ddb_type
from moto.dynamodb.models import table as ddb_table
from moto.sqs import models as sqs_models

from tests.integration.conftest import ApiClient, FakeLambdaContext, account_body, load_function_module
from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.adapters.dynamodb.delivery import DeliveryStore
from wabacast.domain.jobs import Job
from wabacast.settings import Settings
from wabacast_local.sandbox import SandboxServer

SETTLED = frozenset({"COMPLETED", "PAUSED", "CANCELLED", "FAILED"})
COUNTER_PARTS = ("pending", "sent", "failed", "optedOut", "skipped")
_PLAIN_JSON_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})


# Fidelity of moto's SQS ------------------------------------------------------------------------------------------
def sqs_deduplication_like_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS drops a FIFO message whose deduplication id was *sent* in the last 5 minutes, whether or not that
    message has been deleted since; moto only compares with the messages still in the queue. Here a queue
    remembers every deduplication id it accepted (a test runs well within 5 minutes), as AWS does."""
    original = sqs_models.Queue.add_message

    def add_message(self: Any, message: Any) -> None:
        dedup_id = message.deduplication_id
        if not self.fifo_queue or dedup_id is None or self.lambda_event_source_mappings:
            original(self, message)
            return
        seen: set[str] = self.__dict__.setdefault("_wabacast_dedup_ids", set())
        if dedup_id in seen:
            return
        seen.add(dedup_id)
        with self._messages_lock:
            self._messages.append(message)
            self._messages_lock.notify_all()

    monkeypatch.setattr(sqs_models.Queue, "add_message", add_message)


def moto_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same behaviour, less work, so thousands of jobs fit in a test (measured: 200 jobs took 35 s without).

    - A DynamoDB transaction in moto deep-copies every table it touches to roll back on failure: with
      thousands of items, each transaction costs ~50 ms. Here only the items the transaction names are saved
      and put back, which is all a failed transaction can have changed.
    - moto's SQS converts the time through naive datetimes for every message each time it checks visibility,
      and re-reads every queue attribute (counting all messages) for each message it hands out.
    """
    original_transact = ddb_models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for entry in transact_items:
            _, operation = next(iter(entry.items()))
            table = self.tables.get(operation.get("TableName"))
            if table is None:
                continue
            key = operation.get("Key") or {
                name: operation.get("Item", {}).get(name)
                for name in (table.hash_key_attr, table.range_key_attr)
                if name is not None
            }
            try:
                hash_value, range_value = self.get_keys_value(table, key)
                current = table.get_item(hash_value, range_value)
            except Exception:  # noqa: S112 - a malformed key: moto's own call reports it
                continue
            saved.append((table, hash_value, range_value, copy.deepcopy(current)))
        try:
            original_transact(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(saved):
                if item is None:
                    table.delete_item(hash_value, range_value)
                elif range_value is not None:
                    table.items[hash_value][range_value] = item
                else:
                    table.items[hash_value] = item
            raise

    class _CopyWithoutTables:
        """moto's `copy` as its transaction code sees it: a table "copy" is the table (restored item-wise)."""

        copy = staticmethod(copy.copy)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            if isinstance(value, ddb_table.Table):
                return value
            return copy.deepcopy(value, memo)

    monkeypatch.setattr(ddb_models.DynamoDBBackend, "transact_write_items", transact_write_items)
    monkeypatch.setattr(ddb_models, "copy", _CopyWithoutTables)

    # A read's answer is already DynamoDB JSON: written as it is instead of walked value by value along the
    # response shape (~30 us a value: a page of 100 jobs took 0.2 s).
    original_execute = ddb_responses.DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name in _PLAIN_JSON_READS and isinstance(self.result, dict):
            try:
                body = json.dumps({key: value for key, value in self.result.items() if value is not None})
            except TypeError:
                return original_execute(self, context)
            version = context.service_model.metadata.get("jsonVersion", "1.0")
            return 200, {"Content-Type": f"application/x-amz-json-{version}"}, body
        return original_execute(self, context)

    monkeypatch.setattr(ddb_responses.DynamoResult, "execute_result", execute_result)

    # A query through an index scans and sorts the whole table: compare strings as strings (moto asks each value
    # five questions first) and compute each item's sort key once instead of at every comparison.
    original_cast_value = vars(ddb_type.DynamoType)["cast_value"].fget

    def cast_value(self: Any) -> Any:
        return self.value if self.type == "S" else original_cast_value(self)

    def sorted_items(self: Any, hash_key_attrs: list[str], range_key_attrs: list[str | None], items: list[Any]) -> Any:
        names = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        items.sort(key=lambda item: tuple(item.attrs[name].cast_value for name in names))
        return items

    monkeypatch.setattr(ddb_type.DynamoType, "cast_value", property(cast_value))
    monkeypatch.setattr(ddb_table.Table, "sorted_items", sorted_items)

    def now_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else moto_utils.unix_time_millis(dt)

    def now_seconds(dt: Any = None) -> float:
        return time.time() if dt is None else moto_utils.unix_time(dt)

    monkeypatch.setattr(sqs_models, "unix_time_millis", now_millis)
    monkeypatch.setattr(sqs_models, "unix_time", now_seconds)

    def retention_ok(self: Any, queue_name: str, message: Any) -> bool:
        retention = self.get_queue(queue_name).message_retention_period
        return bool(int(retention) + message.sent_timestamp / 1000 > time.time())

    monkeypatch.setattr(sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", retention_ok)

    # The approximate counts: one comparison per message instead of two datetime conversions.
    def not_visible(self: Any) -> int:
        now = time.time() * 1000.0
        return sum(1 for message in self._messages if not now > message.visible_at)

    def delayed(self: Any) -> int:
        now = time.time() * 1000.0
        return sum(1 for message in self._messages if now < message.delayed_until)

    def visible(self: Any) -> int:
        now = time.time() * 1000.0
        return sum(1 for m in self._messages if now > m.visible_at and not now < m.delayed_until)

    monkeypatch.setattr(sqs_models.Queue, "approximate_number_of_messages_not_visible", property(not_visible))
    monkeypatch.setattr(sqs_models.Queue, "approximate_number_of_messages_delayed", property(delayed))
    monkeypatch.setattr(sqs_models.Queue, "approximate_number_of_messages", property(visible))

    # Validating a message to send reads one setting, not every attribute (message counts included).
    class _QueueView:
        def __init__(self, queue: Any) -> None:
            self._queue = queue
            flag = "true" if queue.content_based_deduplication else "false"
            self.attributes = {"ContentBasedDeduplication": flag}

        def __getattr__(self, name: str) -> Any:
            return getattr(self._queue, name)

    original_validate = sqs_models.SQSBackend._validate_message

    def validate_message(self: Any, queue: Any, *args: Any, **kwargs: Any) -> None:
        view: Any = _QueueView(queue)
        original_validate(self, view, *args, **kwargs)

    monkeypatch.setattr(sqs_models.SQSBackend, "_validate_message", validate_message)

    # Pure functions moto recomputes for every request.
    camel_to_snake = functools.cache(moto_utils.camelcase_to_underscores)
    monkeypatch.setattr(moto_responses, "camelcase_to_underscores", camel_to_snake)
    monkeypatch.setattr(sqs_models, "camelcase_to_underscores", camel_to_snake)
    monkeypatch.setattr(moto_responses, "method_names_from_class", functools.cache(moto_utils.method_names_from_class))


@pytest.fixture(autouse=True)
def moto_like_aws_and_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    sqs_deduplication_like_aws(monkeypatch)
    moto_fast_paths(monkeypatch)


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


class Pipeline:
    """Plays the planner schedule and the SQS event source mappings for one test's moto world."""

    def __init__(self, settings: Settings, api: ApiClient, sandbox: SandboxServer) -> None:
        self.settings = settings
        self.api = api
        self.sandbox = sandbox
        self.planner = load_function_module("planner", "handler")
        self.sender = load_function_module("sender", "handler")
        self.dead_letter = load_function_module("sender", "dead_letter")
        self.sqs = boto3.client("sqs", region_name=settings.region)
        self.store = DeliveryStore(
            TableGateway(boto3.client("dynamodb", region_name=settings.region), settings.table_name)
        )
        self.tick_reports: list[dict[str, Any]] = []
        self.drain_reports: list[DrainReport] = []
        self._urls: dict[str, str] = {}
        self._arns: dict[str, str] = {}
        # Batches whose sender invocation raised: still in flight, as in AWS until their visibility timeout.
        self.crashed: list[Invocation] = []

    # Planner -----------------------------------------------------------------------------------------------
    def tick(self) -> dict[str, Any]:
        report: dict[str, Any] = self.planner.lambda_handler({"source": "test"}, FakeLambdaContext())
        assert not report["errors"], report["errors"]
        self.tick_reports.append(report)
        return report

    # Queues ------------------------------------------------------------------------------------------------
    def _queue_name(self, account_id: str, dead_letter: bool = False) -> str:
        suffix = "-dlq.fifo" if dead_letter else ".fifo"
        return f"{self.settings.queue_name_prefix}-{account_id}{suffix}"

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
        prefix = f"{self.settings.queue_name_prefix}-"
        names = [url.rsplit("/", 1)[-1] for url in self.sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])]
        return sorted(
            name.removeprefix(prefix).removesuffix(".fifo") for name in names if not name.endswith("-dlq.fifo")
        )

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
        arn = self.queue_arn(account_id, dead_letter)
        return {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": message["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": self.settings.region,
                }
                for message in messages
            ]
        }

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
        """Every job of a queue, straight from the table."""
        items: list[Job] = []
        token: str | None = None
        for _ in range(1000):
            page, token = self.store._table.query_page(
                partition_attribute="PK",
                partition_value=f"Q#{queue_id}",
                sort_attribute="SK",
                sort_prefix="JOB#",
                limit=100,
                next_token=token,
            )
            items.extend(DeliveryStore._to_job(item) for item in page)
            if token is None:
                return items
        raise AssertionError("too many job pages")

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
