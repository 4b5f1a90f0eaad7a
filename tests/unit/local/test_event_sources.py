"""The runner's SQS event source mappings: the event Lambda would send, ReportBatchItemFailures, concurrency,
discovery of the account queues. Against moto's server on loopback, with fake functions."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from wabacast.adapters.sqs import sender_concurrency
from wabacast_local.event_sources import (
    MappingState,
    SqsEventSourceMappings,
    SqsQueueMapping,
    lambda_sqs_event,
    parse_queue,
    sender_mapping_state,
    settle_batch,
)
from wabacast_local.lambda_runtime import FunctionConfig, LocalLambdaFunction

REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def sqs(moto_endpoint: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class FakeFunction:
    """A function run through the real LocalLambdaFunction; records events and answers what the test says."""

    def __init__(self, respond: Any = None, delay_s: float = 0.0) -> None:
        self.events: list[dict[str, Any]] = []
        self.respond = respond if respond is not None else (lambda event: {"batchItemFailures": []})
        self.delay_s = delay_s
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()
        self.function = LocalLambdaFunction(FunctionConfig(name="fake-sender"), self._handle)

    def _handle(self, event: dict[str, Any], context: Any) -> Any:
        with self._lock:
            self.events.append(event)
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            return self.respond(event)
        finally:
            with self._lock:
                self.running -= 1

    @property
    def message_ids(self) -> list[str]:
        return [record["messageId"] for event in self.events for record in event["Records"]]


def fifo_queue(sqs: Any, name: str | None = None, tags: dict[str, str] | None = None) -> tuple[str, str]:
    name = name or f"wabacast-acc_{uuid.uuid4().hex[:12]}.fifo"
    url = sqs.create_queue(
        QueueName=name,
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "false", "VisibilityTimeout": "360"},
        tags=tags or {},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def send(sqs: Any, url: str, count: int, groups: int | None = None) -> None:
    entries = [
        {
            "Id": str(index),
            "MessageBody": json.dumps({"j": f"job-{index}"}),
            "MessageGroupId": f"+1415555{(index % (groups or count)):04d}",
            "MessageDeduplicationId": f"job-{index}-{uuid.uuid4().hex}",
        }
        for index in range(count)
    ]
    for start in range(0, count, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=entries[start : start + 10])


def counts(sqs: Any, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def mapping_for(sqs: Any, url: str, arn: str, fake: FakeFunction, concurrency: int = 2) -> SqsQueueMapping:
    return SqsQueueMapping(
        sqs=sqs,
        queue_url=url,
        queue_arn=arn,
        function=fake.function,
        region=REGION,
        state=MappingState(enabled=True, maximum_concurrency=concurrency),
    )


def wait_until(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# The event ------------------------------------------------------------------------------------------------------
def test_event_has_the_shape_lambda_sends_for_a_fifo_queue(sqs):
    # GIVEN a FIFO queue with one message
    url, arn = fifo_queue(sqs)
    sqs.send_message(
        QueueUrl=url,
        MessageBody='{"b":"biz","q":"q1","j":"job-1"}',
        MessageGroupId="+14155552700",
        MessageDeduplicationId="job-1",
    )
    fake = FakeFunction()

    # WHEN the mapping polls it
    assert mapping_for(sqs, url, arn, fake).poll_once() == 1

    # THEN the function got a real Lambda SQS event
    (record,) = fake.events[0]["Records"]
    assert set(record) == {
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody", "eventSource",
        "eventSourceARN", "awsRegion",
    }  # fmt: skip
    assert record["body"] == '{"b":"biz","q":"q1","j":"job-1"}'
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert arn.endswith(url.rsplit("/", 1)[-1])
    assert record["awsRegion"] == REGION
    assert record["messageAttributes"] == {}
    assert len(record["md5OfBody"]) == 32
    attributes = record["attributes"]
    assert attributes["ApproximateReceiveCount"] == "1"
    assert attributes["MessageGroupId"] == "+14155552700"
    assert attributes["MessageDeduplicationId"] == "job-1"
    for name in ("SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId", "SequenceNumber"):
        assert attributes[name], name
    assert attributes["SentTimestamp"].isdigit()


def test_message_attributes_take_lambdas_camel_case_shape():
    # GIVEN a received message with attributes, as the SQS API returns it
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": "{}",
        "MD5OfBody": "x" * 32,
        "MD5OfMessageAttributes": "y" * 32,
        "Attributes": {"ApproximateReceiveCount": "2"},
        "MessageAttributes": {
            "kind": {"StringValue": "bulk", "DataType": "String"},
            "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
    }

    # WHEN it becomes an event record
    (record,) = lambda_sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:q.fifo", REGION)["Records"]

    # THEN the attributes look like Lambda's
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "bulk", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    assert record["md5OfMessageAttributes"] == "y" * 32


# ReportBatchItemFailures ----------------------------------------------------------------------------------------
RECORDS = [{"messageId": f"m{index}", "receiptHandle": f"r{index}"} for index in range(3)]


@pytest.mark.parametrize(
    "response", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}], ids=["null", "empty", "[]", "None"]
)
def test_a_response_without_failures_deletes_the_whole_batch(response):
    settlement = settle_batch(RECORDS, response)
    assert settlement.delete == ["r0", "r1", "r2"]
    assert settlement.keep == []


def test_listed_failures_are_kept_and_the_rest_deleted():
    settlement = settle_batch(RECORDS, {"batchItemFailures": [{"itemIdentifier": "m1"}]})
    assert settlement.delete == ["r0", "r2"]
    assert settlement.keep == ["m1"]
    assert settlement.reason is None


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemId": "m1"}]},
        {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
        {"batchItemFailures": "m1"},
        "ok",
    ],
    ids=["empty id", "null id", "bad key", "unknown id", "not a list", "not an object"],
)
def test_an_invalid_response_fails_the_whole_batch(response):
    settlement = settle_batch(RECORDS, response)
    assert settlement.delete == []
    assert settlement.keep == ["m0", "m1", "m2"]
    assert settlement.reason


def test_records_not_listed_are_deleted_and_listed_ones_stay_in_flight(sqs):
    # GIVEN three messages in different groups, and a function that reports one of them as failed
    url, arn = fifo_queue(sqs)
    send(sqs, url, 3)

    def fail_second(event):
        return {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}

    fake = FakeFunction(fail_second)

    # WHEN the mapping polls and settles the batch
    assert mapping_for(sqs, url, arn, fake).poll_once() == 3

    # THEN two are deleted, the failed one is still there, invisible until its visibility timeout
    assert counts(sqs, url) == (0, 1)


def test_a_visibility_the_function_set_on_a_failed_record_is_kept(sqs):
    # GIVEN a function that hands one record back to SQS with a short delay, as the sender does on a retry
    url, arn = fifo_queue(sqs)
    send(sqs, url, 2)

    def retry_first_soon(event):
        first = event["Records"][0]
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["receiptHandle"], VisibilityTimeout=1)
        return {"batchItemFailures": [{"itemIdentifier": first["messageId"]}]}

    fake = FakeFunction(retry_first_soon)
    mapping = mapping_for(sqs, url, arn, fake)
    mapping.poll_once()

    # WHEN the delay has passed and the mapping polls again (the function now succeeds)
    fake.respond = lambda event: None
    time.sleep(1.2)
    assert mapping.poll_once() == 1

    # THEN the same message came back, with its receive count up, and the queue is empty
    first_id = fake.events[0]["Records"][0]["messageId"]
    (again,) = fake.events[1]["Records"]
    assert again["messageId"] == first_id
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    assert counts(sqs, url) == (0, 0)


def test_nothing_is_deleted_when_the_function_raises(sqs, caplog):
    # GIVEN a function that raises
    url, arn = fifo_queue(sqs)
    send(sqs, url, 4)

    def crash(event):
        raise RuntimeError("boom")

    fake = FakeFunction(crash)

    # WHEN the mapping polls
    with caplog.at_level(logging.WARNING, logger="wabacast_local"):
        assert mapping_for(sqs, url, arn, fake).poll_once() == 4

    # THEN every message is left to SQS (in flight until the visibility timeout), and that is said
    assert counts(sqs, url) == (0, 4)
    assert "nothing deleted" in caplog.text


# Polling and concurrency ----------------------------------------------------------------------------------------
def test_mapping_drains_the_queue_with_at_most_its_maximum_concurrency(sqs):
    # GIVEN 40 messages in 40 groups, and a slow function
    url, arn = fifo_queue(sqs)
    send(sqs, url, 40)
    # A batch lasts long enough for the next poll to start another one even on a loaded machine.
    fake = FakeFunction(delay_s=1.0)
    mapping = mapping_for(sqs, url, arn, fake, concurrency=3)

    # WHEN the mapping runs
    mapping.start()
    try:
        wait_until(lambda: counts(sqs, url) == (0, 0) and fake.running == 0)
    finally:
        mapping.request_stop()
        assert mapping.wait_stopped(time.monotonic() + 5)

    # THEN each message was handled once, never more than 3 batches at a time, and in parallel
    assert sorted(fake.message_ids) == sorted(set(fake.message_ids))
    assert len(fake.message_ids) == 40
    assert fake.peak <= 3
    assert mapping.peak_in_flight <= 3
    assert fake.peak >= 2


def test_one_message_group_is_never_in_two_batches_at_once(sqs):
    # GIVEN 12 messages of one recipient (one group)
    url, arn = fifo_queue(sqs)
    send(sqs, url, 12, groups=1)
    fake = FakeFunction(delay_s=0.1)
    mapping = mapping_for(sqs, url, arn, fake, concurrency=4)

    # WHEN the mapping runs with room for 4 batches
    mapping.start()
    try:
        wait_until(lambda: counts(sqs, url) == (0, 0) and fake.running == 0)
    finally:
        mapping.request_stop()
        mapping.wait_stopped(time.monotonic() + 5)

    # THEN SQS handed the group out one batch at a time, in order
    assert fake.peak == 1
    bodies = [json.loads(record["body"])["j"] for event in fake.events for record in event["Records"]]
    assert bodies == [f"job-{index}" for index in range(12)]


def test_a_disabled_mapping_leaves_the_queue_alone_until_enabled(sqs):
    # GIVEN a disabled mapping (the account is not ACTIVE) on a queue with messages
    url, arn = fifo_queue(sqs)
    send(sqs, url, 3)
    fake = FakeFunction()
    mapping = mapping_for(sqs, url, arn, fake)
    mapping.configure(MappingState(enabled=False, maximum_concurrency=2))
    mapping.start()
    try:
        # WHEN it runs for a while
        time.sleep(0.8)

        # THEN nothing was received
        assert fake.events == []
        assert counts(sqs, url) == (3, 0)

        # WHEN it is enabled
        mapping.configure(MappingState(enabled=True, maximum_concurrency=2))

        # THEN the queue is drained
        wait_until(lambda: counts(sqs, url) == (0, 0))
    finally:
        mapping.request_stop()
        mapping.wait_stopped(time.monotonic() + 5)


def test_stopping_an_idle_mapping_is_prompt(sqs):
    # GIVEN a mapping long-polling an empty queue
    url, arn = fifo_queue(sqs)
    mapping = mapping_for(sqs, url, arn, FakeFunction())
    mapping.start()
    time.sleep(0.3)

    # WHEN it is stopped
    started = time.monotonic()
    mapping.request_stop()
    stopped = mapping.wait_stopped(time.monotonic() + 5)

    # THEN it stops within about one long poll
    assert stopped
    assert time.monotonic() - started < 2.5


# Discovery ------------------------------------------------------------------------------------------------------
def test_queue_names_map_to_accounts_and_functions():
    assert parse_queue("http://h/1/wabacast-acc_1.fifo", "wabacast").account_id == "acc_1"
    assert parse_queue("http://h/1/wabacast-acc_1.fifo", "wabacast").dead_letter is False
    dead_letter = parse_queue("http://h/1/wabacast-acc_1-dlq.fifo", "wabacast")
    assert (dead_letter.account_id, dead_letter.dead_letter) == ("acc_1", True)
    assert parse_queue("http://h/1/other-acc_1.fifo", "wabacast") is None
    assert parse_queue("http://h/1/wabacast-acc_1", "wabacast") is None


def test_sender_mapping_follows_the_account_like_provision_does():
    assert sender_mapping_state(("ACTIVE", 50)) == MappingState(
        enabled=True, maximum_concurrency=sender_concurrency(50)
    )
    assert sender_mapping_state(("SUSPENDED", 50)).enabled is False
    assert sender_mapping_state(None).enabled is False


def test_discovery_maps_account_queues_and_follows_their_accounts(sqs):
    # GIVEN an account's queue and dead-letter queue (tagged with the business, as provision() does), and a queue
    # of something else
    prefix = f"t{uuid.uuid4().hex[:6]}"
    tags = {"wabacast:business": "biz_1", "wabacast:account": "acc_1"}
    queue_url, _ = fifo_queue(sqs, f"{prefix}-acc_1.fifo", tags)
    dead_letter_url, _ = fifo_queue(sqs, f"{prefix}-acc_1-dlq.fifo", tags)
    fifo_queue(sqs, f"{prefix}x-unrelated.fifo")
    accounts = {("biz_1", "acc_1"): ("ACTIVE", 50)}
    sender, dead_letter = FakeFunction(), FakeFunction()
    mappings = SqsEventSourceMappings(
        sqs=sqs,
        queue_name_prefix=prefix,
        sender=sender.function,
        dead_letter=dead_letter.function,
        account_lookup=lambda business_id, account_id: accounts.get((business_id, account_id)),
        region=REGION,
    )
    try:
        # WHEN the queues are discovered
        mappings.refresh()

        # THEN the queue goes to the sender with the account's concurrency, the DLQ to the dead-letter consumer
        found = mappings.mappings
        assert set(found) == {queue_url, dead_letter_url}
        assert found[queue_url].function is sender.function
        assert found[queue_url].state == MappingState(enabled=True, maximum_concurrency=sender_concurrency(50))
        assert found[dead_letter_url].function is dead_letter.function
        assert found[dead_letter_url].state == MappingState(enabled=True, maximum_concurrency=2)

        # WHEN the account is suspended and its rate raised
        accounts[("biz_1", "acc_1")] = ("SUSPENDED", 200)
        mappings.refresh()

        # THEN the sender mapping is disabled, the DLQ one is not
        assert mappings.mappings[queue_url].state.enabled is False
        assert mappings.mappings[dead_letter_url].state.enabled is True

        # WHEN the account's queues are deleted (the account was)
        sqs.delete_queue(QueueUrl=queue_url)
        sqs.delete_queue(QueueUrl=dead_letter_url)
        mappings.refresh()

        # THEN their mappings are gone
        assert mappings.mappings == {}
    finally:
        mappings.stop()


def test_a_message_sent_to_a_discovered_queue_reaches_the_sender(sqs):
    # GIVEN running mappings that discover queues quickly
    prefix = f"t{uuid.uuid4().hex[:6]}"
    sender, dead_letter = FakeFunction(), FakeFunction()
    mappings = SqsEventSourceMappings(
        sqs=sqs,
        queue_name_prefix=prefix,
        sender=sender.function,
        dead_letter=dead_letter.function,
        account_lookup=lambda business_id, account_id: ("ACTIVE", 10),
        region=REGION,
        discovery_interval_s=0.2,
    )
    mappings.start()
    try:
        # WHEN an account queue appears and gets a message
        url, _ = fifo_queue(sqs, f"{prefix}-acc_2.fifo", {"wabacast:business": "biz_2"})
        send(sqs, url, 1)

        # THEN the sender gets it and it is deleted
        wait_until(lambda: len(sender.message_ids) == 1 and counts(sqs, url) == (0, 0))
        assert dead_letter.events == []
    finally:
        started = time.monotonic()
        mappings.stop()
    assert time.monotonic() - started < 3
