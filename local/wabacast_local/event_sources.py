"""Plays Lambda's SQS event source mappings for the per-account FIFO queues (moto never invokes anything itself).

In the cloud, `wabacast.adapters.sqs.AccountQueues.provision` maps each account queue "<prefix>-<accountId>.fifo"
to the sender (enabled while the account is ACTIVE, ScalingConfig.MaximumConcurrency = sender_concurrency(rate))
and its "-dlq.fifo" twin to the dead-letter consumer (always enabled, concurrency 2), both with batch size 10 and
ReportBatchItemFailures. Locally the settings leave the function ARNs unset, so no mapping is created, and this
module does the mappings' work:

  - `SqsEventSourceMappings` discovers the queues (ListQueues by prefix) every couple of seconds and keeps one
    `SqsQueueMapping` per queue, re-reading the account (status, messages per second) each time, as the cloud
    mapping follows `provision` after an account change;
  - `SqsQueueMapping` long-polls its queue, invokes the function with a real Lambda SQS event, up to
    `maximum_concurrency` batches at once, each in an execution environment of its own (a `LocalLambdaFunction`
    sharing the loaded handler: Lambda runs separate environments in parallel, each one event at a time);
  - after the invocation, the records not listed in the response's `batchItemFailures` are deleted; the listed
    ones stay in flight until their visibility timeout (which the handler may have changed) ends. When the function
    raises, nothing is deleted.

FIFO order is SQS's business: moto hands out no message of a group while another message of that group is in flight.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from wabacast.adapters.sqs import RECEIVE_BATCH_SIZE, sender_concurrency
from wabacast.domain.delivery import parse_account_queue_name
from wabacast_local.lambda_runtime import FunctionError, LocalLambdaFunction

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

LOGGER = logging.getLogger(__name__)

# What provision() gives the dead-letter mapping.
DEAD_LETTER_CONCURRENCY = 2
BUSINESS_TAG = "wabacast:business"
_MISSING_QUEUE_CODES = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


# The event ------------------------------------------------------------------------------------------------------
def _lambda_message_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """SQS API message attributes -> the shape Lambda puts in `messageAttributes` (camelCase, list fields)."""
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        entry: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
        if "StringValue" in value:
            entry["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            entry["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
        converted[name] = entry
    return converted


def lambda_sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage message as a record of the event Lambda's SQS event source mapping sends."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {name: str(value) for name, value in message.get("Attributes", {}).items()},
        "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def lambda_sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {"Records": [lambda_sqs_record(message, queue_arn, region) for message in messages]}


# The response ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchSettlement:
    """What happens to a batch after the invocation: receipt handles to delete, message ids left to SQS."""

    delete: list[str]
    keep: list[str]
    reason: str | None = None  # why the whole batch is kept, when it is


def settle_batch(records: Sequence[Mapping[str, Any]], response: Any) -> BatchSettlement:
    """ReportBatchItemFailures as Lambda applies it to an SQS batch.

    Complete success (delete all): a null or empty response, a null or empty `batchItemFailures`. Complete failure
    (delete nothing): a response that is not an object, `batchItemFailures` that is not a list, an entry without a
    non-empty string `itemIdentifier`, or an identifier that is not a message of the batch. Otherwise every record
    not listed is deleted.
    """
    all_ids = [str(record["messageId"]) for record in records]

    def keep_all(reason: str) -> BatchSettlement:
        return BatchSettlement(delete=[], keep=all_ids, reason=reason)

    if response is None:
        failures: Any = None
    elif isinstance(response, dict):
        failures = response.get("batchItemFailures")
    else:
        return keep_all(f"the function returned {type(response).__name__}, not a batch response")
    if failures is None:
        failures = []
    if not isinstance(failures, list):
        return keep_all("batchItemFailures is not a list")
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or not identifier:
            return keep_all("a batchItemFailures entry has no itemIdentifier")
        if identifier not in all_ids:
            return keep_all(f"batchItemFailures names {identifier!r}, which is not in the batch")
        failed.add(identifier)
    return BatchSettlement(
        delete=[str(record["receiptHandle"]) for record in records if record["messageId"] not in failed],
        keep=[message_id for message_id in all_ids if message_id in failed],
    )


# One mapping ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MappingState:
    """The parts of an event source mapping's configuration that change at run time."""

    enabled: bool
    maximum_concurrency: int


def _is_missing_queue(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING_QUEUE_CODES


class SqsQueueMapping:
    """One queue mapped to one function: a poller thread and up to `maximum_concurrency` invocations at once."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        queue_arn: str,
        function: LocalLambdaFunction,
        region: str,
        state: MappingState,
        batch_size: int = RECEIVE_BATCH_SIZE,
        wait_time_seconds: int = 1,
    ) -> None:
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function = function
        self._sqs = sqs
        self._region = region
        self._batch_size = batch_size
        self._wait_time_seconds = wait_time_seconds
        self._state = state
        self._condition = threading.Condition()
        self._in_flight = 0
        self._peak_in_flight = 0
        # Warm execution environments: each runs one batch at a time; more are created up to the concurrency.
        self._idle_environments: list[LocalLambdaFunction] = [function]
        self._stopping = threading.Event()
        self._gone = False
        self._poller: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.queue_url.rsplit("/", 1)[-1]

    @property
    def state(self) -> MappingState:
        with self._condition:
            return self._state

    @property
    def gone(self) -> bool:
        """The queue was deleted (the account was): the poller has stopped."""
        return self._gone

    @property
    def peak_in_flight(self) -> int:
        with self._condition:
            return self._peak_in_flight

    def configure(self, state: MappingState) -> None:
        with self._condition:
            if state != self._state:
                LOGGER.info(
                    "mapping %s -> %s: %s, maximum concurrency %d",
                    self.name,
                    self.function.name,
                    "enabled" if state.enabled else "disabled",
                    state.maximum_concurrency,
                )
            self._state = state
            self._condition.notify_all()

    # Lifecycle ----------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._poller = threading.Thread(target=self._poll_loop, name=f"esm-{self.name}", daemon=True)
        self._poller.start()

    def request_stop(self) -> None:
        self._stopping.set()
        with self._condition:
            self._condition.notify_all()

    def wait_stopped(self, deadline: float) -> bool:
        """Wait (until the monotonic `deadline`) for the poller and the invocations in flight; True when done."""
        if self._poller is not None:
            self._poller.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._condition:
            while self._in_flight and time.monotonic() < deadline:
                self._condition.wait(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
            in_flight = self._in_flight
        poller_done = self._poller is None or not self._poller.is_alive()
        if in_flight:
            LOGGER.warning("%d invocation(s) of %s still running at shutdown", in_flight, self.function.name)
        return poller_done and not in_flight

    # Polling ------------------------------------------------------------------------------------------------------
    def poll_once(self) -> int:
        """One receive, and the batch (if any) invoked and settled in this thread; returns the batch size."""
        messages = self._receive()
        if messages:
            self._claim_slot()
            self._run_batch(messages)
        return len(messages)

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            if not self._wait_for_free_slot():
                break
            try:
                messages = self._receive()
            except ClientError as error:
                if _is_missing_queue(error):
                    LOGGER.info("queue %s is gone: its mapping stops", self.name)
                    self._gone = True
                    break
                self._report_poll_error(error)
                continue
            except (BotoCoreError, OSError) as error:
                self._report_poll_error(error)
                continue
            if not messages:
                continue
            if self._stopping.is_set():
                break  # received while stopping: left in flight, the emulator's memory goes with the process
            self._claim_slot()
            threading.Thread(
                target=self._run_batch, args=(messages,), name=f"esm-{self.name}-batch", daemon=True
            ).start()

    def _report_poll_error(self, error: Exception) -> None:
        if not self._stopping.is_set():
            LOGGER.warning("polling %s failed (%s); retrying", self.name, error)
            self._stopping.wait(1.0)

    def _wait_for_free_slot(self) -> bool:
        with self._condition:
            while not self._stopping.is_set() and (
                not self._state.enabled or self._in_flight >= self._state.maximum_concurrency
            ):
                self._condition.wait(timeout=0.5)
        return not self._stopping.is_set()

    def _receive(self) -> list[dict[str, Any]]:
        response: Any = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait_time_seconds,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    # One batch ----------------------------------------------------------------------------------------------------
    def _claim_slot(self) -> None:
        with self._condition:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)

    def _environment(self) -> LocalLambdaFunction:
        with self._condition:
            if self._idle_environments:
                return self._idle_environments.pop()
        return LocalLambdaFunction(self.function.config, self.function.handler)

    def _run_batch(self, messages: list[dict[str, Any]]) -> None:
        environment = self._environment()
        try:
            self._invoke_and_settle(environment, messages)
        except Exception:
            if not self._stopping.is_set():
                LOGGER.exception("settling a batch of %s failed", self.name)
        finally:
            with self._condition:
                self._idle_environments.append(environment)
                self._in_flight -= 1
                self._condition.notify_all()

    def _invoke_and_settle(self, environment: LocalLambdaFunction, messages: list[dict[str, Any]]) -> None:
        event = lambda_sqs_event(messages, self.queue_arn, self._region)
        try:
            response = environment.invoke(event)
        except FunctionError:
            # The runtime logged the traceback. Like Lambda: the whole batch comes back after its visibility timeout.
            LOGGER.warning(
                "%s failed on a batch of %d from %s: nothing deleted, SQS redelivers after the visibility timeout",
                self.function.name,
                len(messages),
                self.name,
            )
            return
        settlement = settle_batch(event["Records"], response)
        if settlement.reason is not None:
            LOGGER.warning("batch of %s treated as failed: %s", self.name, settlement.reason)
        self._delete(settlement.delete)

    def _delete(self, receipt_handles: Sequence[str]) -> None:
        for start in range(0, len(receipt_handles), RECEIVE_BATCH_SIZE):
            chunk = receipt_handles[start : start + RECEIVE_BATCH_SIZE]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(index), "ReceiptHandle": handle} for index, handle in enumerate(chunk)],
            )
            for failed in response.get("Failed", []):
                LOGGER.warning("deleting a message from %s failed: %s", self.name, failed.get("Message", failed))


class FixedQueueMapping:
    """A queue the stack itself creates (the plan queue) mapped to one function, as a stack component: what the
    CDK stack's event source mapping does for it in the cloud."""

    def __init__(self, mapping: SqsQueueMapping, shutdown_timeout_s: float = 10.0) -> None:
        self.mapping = mapping
        self.name = f"mapping {mapping.name} -> {mapping.function.name}"
        self._shutdown_timeout_s = shutdown_timeout_s

    def start(self) -> None:
        self.mapping.start()

    def stop(self) -> None:
        self.mapping.request_stop()
        self.mapping.wait_stopped(time.monotonic() + self._shutdown_timeout_s)


# Discovery ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AccountQueue:
    """An account queue as the runner finds it: whose it is, and which function it is mapped to."""

    url: str
    name: str
    account_id: str
    dead_letter: bool


def parse_queue(url: str, prefix: str) -> AccountQueue | None:
    """`<prefix>-<accountId>.fifo` or `<prefix>-<accountId>-dlq.fifo`; None for any other queue."""
    parsed = parse_account_queue_name(prefix, url)
    if parsed is None:
        return None
    return AccountQueue(
        url=url, name=url.rsplit("/", 1)[-1], account_id=parsed.account_id, dead_letter=parsed.dead_letter
    )


# (business id, account id) -> the account item's status and messages per second, or None when there is none.
AccountLookup = Callable[[str, str], tuple[str, int] | None]


def sender_mapping_state(account: tuple[str, int] | None) -> MappingState:
    """What provision() sets on the sender mapping for an account: enabled while ACTIVE, concurrency by rate."""
    if account is None:
        return MappingState(enabled=False, maximum_concurrency=2)
    status, messages_per_second = account
    return MappingState(enabled=status == "ACTIVE", maximum_concurrency=sender_concurrency(messages_per_second))


class SqsEventSourceMappings:
    """The account queues' mappings: found by prefix, kept in step with their accounts, stopped together."""

    name = "sqs-event-source-mappings"

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_name_prefix: str,
        sender: LocalLambdaFunction,
        dead_letter: LocalLambdaFunction,
        account_lookup: AccountLookup,
        region: str,
        discovery_interval_s: float = 2.0,
        wait_time_seconds: int = 1,
        shutdown_timeout_s: float = 10.0,
    ) -> None:
        self._sqs = sqs
        self._prefix = queue_name_prefix
        self._sender = sender
        self._dead_letter = dead_letter
        self._account_lookup = account_lookup
        self._region = region
        self._discovery_interval_s = discovery_interval_s
        self._wait_time_seconds = wait_time_seconds
        self._shutdown_timeout_s = shutdown_timeout_s
        self._mappings: dict[str, SqsQueueMapping] = {}
        self._businesses: dict[str, str] = {}  # queue URL -> business id (a tag, fixed at creation)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def mappings(self) -> dict[str, SqsQueueMapping]:
        with self._lock:
            return dict(self._mappings)

    def start(self) -> None:
        self._stopping.clear()
        self.refresh()
        self._thread = threading.Thread(target=self._discover_loop, name="esm-discovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self._discovery_interval_s + 5)
            self._thread = None
        with self._lock:
            mappings, self._mappings = list(self._mappings.values()), {}
        for mapping in mappings:  # all at once: each one's long poll ends within its wait time
            mapping.request_stop()
        deadline = time.monotonic() + self._shutdown_timeout_s
        for mapping in mappings:
            mapping.wait_stopped(deadline)

    def _discover_loop(self) -> None:
        while not self._stopping.wait(self._discovery_interval_s):
            try:
                self.refresh()
            except Exception as error:  # the emulator is always there; keep going whatever happened
                if not self._stopping.is_set():
                    LOGGER.warning("discovering account queues failed (%s); retrying", error)

    def refresh(self) -> None:
        """List the account queues; map new ones, drop deleted ones, follow account changes."""
        urls = self._list_queue_urls()
        found = {queue.url: queue for url in urls if (queue := parse_queue(url, self._prefix)) is not None}
        with self._lock:
            removed = [mapping for url, mapping in self._mappings.items() if url not in found or mapping.gone]
            for mapping in removed:
                del self._mappings[mapping.queue_url]
                self._businesses.pop(mapping.queue_url, None)
        for mapping in removed:
            mapping.request_stop()
        for queue in found.values():
            if self._stopping.is_set():
                return
            try:
                self._refresh_queue(queue)
            except ClientError as error:
                if not _is_missing_queue(error):
                    raise  # deleted between the listing and now: gone at the next listing

    def _list_queue_urls(self) -> list[str]:
        urls: list[str] = []
        kwargs: dict[str, Any] = {"QueueNamePrefix": f"{self._prefix}-", "MaxResults": 1000}
        while True:
            response: Any = self._sqs.list_queues(**kwargs)
            urls.extend(response.get("QueueUrls", []))
            token = response.get("NextToken")
            if not token:
                return urls
            kwargs["NextToken"] = token

    def _refresh_queue(self, queue: AccountQueue) -> None:
        state = self._state_of(queue)
        with self._lock:
            mapping = self._mappings.get(queue.url)
        if mapping is not None:
            mapping.configure(state)
            return
        attributes: Any = self._sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["QueueArn"])
        mapping = SqsQueueMapping(
            sqs=self._sqs,
            queue_url=queue.url,
            queue_arn=attributes["Attributes"]["QueueArn"],
            function=self._dead_letter if queue.dead_letter else self._sender,
            region=self._region,
            state=state,
            wait_time_seconds=self._wait_time_seconds,
        )
        with self._lock:
            if self._stopping.is_set() or queue.url in self._mappings:
                return
            self._mappings[queue.url] = mapping
        LOGGER.info(
            "mapping %s -> %s (%s, maximum concurrency %d)",
            queue.name,
            mapping.function.name,
            "enabled" if state.enabled else "disabled",
            state.maximum_concurrency,
        )
        mapping.start()

    def _state_of(self, queue: AccountQueue) -> MappingState:
        if queue.dead_letter:
            return MappingState(enabled=True, maximum_concurrency=DEAD_LETTER_CONCURRENCY)
        business_id = self._businesses.get(queue.url)
        if business_id is None:
            tags: Any = self._sqs.list_queue_tags(QueueUrl=queue.url)
            business_id = tags.get("Tags", {}).get(BUSINESS_TAG)
            if business_id is None:
                return MappingState(enabled=False, maximum_concurrency=2)
            self._businesses[queue.url] = business_id
        return sender_mapping_state(self._account_lookup(business_id, queue.account_id))


class DynamoDbAccountLookup:
    """Reads an account's status and rate from the table, as provision() reads them from the Account."""

    def __init__(self, client: Any, table_name: str) -> None:
        # Imported here: only the running stack needs the table layout.
        from wabacast.adapters.dynamodb.accounts import ACCOUNT_PREFIX
        from wabacast.adapters.dynamodb.base import TableGateway, business_pk

        self._table = TableGateway(client, table_name)
        self._business_pk = business_pk
        self._account_prefix = ACCOUNT_PREFIX

    def __call__(self, business_id: str, account_id: str) -> tuple[str, int] | None:
        item = self._table.get(self._business_pk(business_id), f"{self._account_prefix}{account_id}")
        if not item:
            return None
        limits = item.get("limits") or {}
        return str(item.get("status", "")), int(limits.get("messages_per_second", 1))
