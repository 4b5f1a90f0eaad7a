"""Per-account SQS FIFO queues: provisioning (queue, DLQ, event source mappings) and feeding.

Each account has "<prefix>-<accountId>.fifo" redriving to "<prefix>-<accountId>-dlq.fifo". In AWS the queue is
mapped to the sender function and the DLQ to the dead-letter consumer; locally the runner plays those mappings
(settings leave the function ARNs unset).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from wabacast.domain.delivery import MAX_RECEIVE_COUNT, OutgoingMessage, PlanAccountMessage, account_queue_name
from wabacast.domain.models import Account, AccountStatus
from wabacast.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["MAX_RECEIVE_COUNT", "AccountQueues", "SqsPlanDispatch", "sender_concurrency"]

LOGGER = logging.getLogger(__name__)
# AWS recommends a visibility timeout of at least six times the consuming function's timeout (60 s).
VISIBILITY_TIMEOUT_S = 360
SEND_BATCH_SIZE = 10
SEND_CONCURRENCY = 16
RECEIVE_BATCH_SIZE = 10


def sender_concurrency(messages_per_second: int, batch_time_s: float = 0.8) -> int:
    """Concurrent sender invocations an account needs: ceil(rate x batch time / batch size) + 1.

    `batch_time_s` is what a batch of 10 takes besides waiting for its rate slots: the provider round trip plus
    the handler's own time (SENDER_BATCH_S). An invocation then carries 10 messages per batch time, so
    rate x batch time / 10 invocations keep up with the rate, and one more absorbs slow calls. More would only
    sleep, billed, waiting for rate slots. The event source mapping accepts 2..1000."""
    return max(2, min(1000, math.ceil(messages_per_second * batch_time_s / RECEIVE_BATCH_SIZE) + 1))


class AccountQueues:
    def __init__(self, sqs: SQSClient, lambda_client: LambdaClient | None, settings: Settings) -> None:
        self._sqs = sqs
        self._lambda = lambda_client
        self._settings = settings
        self._urls: dict[str, str] = {}

    # Names ---------------------------------------------------------------------------------------------------
    def queue_name(self, account_id: str) -> str:
        return account_queue_name(self._settings.queue_name_prefix, account_id)

    def dead_letter_name(self, account_id: str) -> str:
        return account_queue_name(self._settings.queue_name_prefix, account_id, dead_letter=True)

    def queue_url(self, account_id: str) -> str:
        name = self.queue_name(account_id)
        if name not in self._urls:
            self._urls[name] = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return self._urls[name]

    # Provisioning --------------------------------------------------------------------------------------------
    def provision(self, account: Account) -> None:
        """Create (or complete) the account's queues and mappings. Safe to repeat at any point."""
        tags = {"wabacast:business": account.business_id, "wabacast:account": account.id}
        dead_letter_url = self._ensure_queue(
            self.dead_letter_name(account.id),
            {"MessageRetentionPeriod": str(14 * 24 * 3600)},
            tags,
        )
        dead_letter_arn = self._arn(dead_letter_url)
        queue_url = self._ensure_queue(
            self.queue_name(account.id),
            {
                "VisibilityTimeout": str(VISIBILITY_TIMEOUT_S),
                "MessageRetentionPeriod": str(4 * 24 * 3600),
                # Derived from the largest maxAttempts, the SQS hand-backs and a headroom (domain.delivery): receive
                # counts are not attempts, and the dead-letter consumer checks the job's real attempts.
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
                ),
            },
            tags,
        )
        self._urls[self.queue_name(account.id)] = queue_url
        if self._lambda is not None and self._settings.sender_function_arn:
            self._ensure_mapping(
                self._arn(queue_url),
                self._settings.sender_function_arn,
                enabled=account.status == AccountStatus.ACTIVE,
                maximum_concurrency=sender_concurrency(
                    account.limits.messages_per_second, self._settings.sender_batch_s
                ),
            )
        if self._lambda is not None and self._settings.dead_letter_function_arn:
            self._ensure_mapping(
                dead_letter_arn, self._settings.dead_letter_function_arn, enabled=True, maximum_concurrency=2
            )

    def teardown(self, account: Account) -> None:
        for name in (self.queue_name(account.id), self.dead_letter_name(account.id)):
            try:
                url = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except ClientError as error:
                if error.response["Error"]["Code"] in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                    continue
                raise
            if self._lambda is not None:
                arn = self._arn(url)
                for mapping in self._mappings(arn):
                    self._lambda.delete_event_source_mapping(UUID=mapping["UUID"])
            self._sqs.delete_queue(QueueUrl=url)
            self._urls.pop(name, None)

    def _ensure_queue(self, name: str, attributes: dict[str, str], tags: dict[str, str]) -> str:
        fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false", "SqsManagedSseEnabled": "true"}
        all_attributes: Any = {**fifo, **attributes}
        try:
            url = self._sqs.create_queue(QueueName=name, Attributes=all_attributes, tags=tags)["QueueUrl"]
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            # Same name, other attributes (an earlier version, or limits changed): converge them.
            url = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
            self._sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)  # type: ignore[arg-type]
            self._sqs.tag_queue(QueueUrl=url, Tags=tags)
        return url

    def _arn(self, url: str) -> str:
        attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return attributes["QueueArn"]

    def _mappings(self, source_arn: str) -> list[dict[str, Any]]:
        assert self._lambda is not None
        response = self._lambda.list_event_source_mappings(EventSourceArn=source_arn)
        return list(response.get("EventSourceMappings", []))  # type: ignore[arg-type]

    def _ensure_mapping(self, source_arn: str, function_arn: str, *, enabled: bool, maximum_concurrency: int) -> None:
        assert self._lambda is not None
        existing = [m for m in self._mappings(source_arn) if m.get("FunctionArn") == function_arn]
        if existing:
            self._lambda.update_event_source_mapping(
                UUID=existing[0]["UUID"],
                Enabled=enabled,
                BatchSize=RECEIVE_BATCH_SIZE,
                ScalingConfig={"MaximumConcurrency": maximum_concurrency},
            )
            return
        self._lambda.create_event_source_mapping(
            EventSourceArn=source_arn,
            FunctionName=function_arn,
            Enabled=enabled,
            BatchSize=RECEIVE_BATCH_SIZE,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            ScalingConfig={"MaximumConcurrency": maximum_concurrency},
        )

    # Feeding -------------------------------------------------------------------------------------------------
    def backlog(self, account_id: str) -> int:
        """Messages in the account's queue, visible or in flight (approximate, as SQS reports them)."""
        names: Any = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        response: Any = self._sqs.get_queue_attributes(QueueUrl=self.queue_url(account_id), AttributeNames=names)
        attributes: dict[str, str] = response["Attributes"]
        return sum(int(attributes.get(name, "0")) for name in names)

    def send(self, account_id: str, messages: Sequence[OutgoingMessage]) -> list[str]:
        """SendMessageBatch in tens, up to SEND_CONCURRENCY at once (an account at 1,000 msg/s takes 6,000 batches a
        minute: one after the other they would not fit in a tick); returns the job ids SQS refused (the caller
        leaves them to be fed again)."""
        url = self.queue_url(account_id)
        chunks = [messages[start : start + SEND_BATCH_SIZE] for start in range(0, len(messages), SEND_BATCH_SIZE)]
        if len(chunks) <= 1:
            return [job_id for chunk in chunks for job_id in self._send_chunk(url, chunk)]
        with ThreadPoolExecutor(max_workers=min(SEND_CONCURRENCY, len(chunks))) as pool:
            return [
                job_id for refused in pool.map(lambda chunk: self._send_chunk(url, chunk), chunks) for job_id in refused
            ]

    def _send_chunk(self, url: str, chunk: Sequence[OutgoingMessage]) -> list[str]:
        response = self._sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {
                    "Id": str(index),
                    "MessageBody": message.message.body(),
                    # SQS drops a second enqueue with the same dedupe id within its 5-minute window.
                    "MessageDeduplicationId": message.deduplication_id,
                    "MessageGroupId": message.group_id,
                }
                for index, message in enumerate(chunk)
            ],
        )
        return [chunk[int(entry["Id"])].job_id for entry in response.get("Failed", [])]

    def delay_redelivery(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        """Backoff: keep a message invisible for `seconds` before SQS hands it out again.

        Best effort: when SQS refuses (throttled, or the receipt handle expired) the message comes back when the
        visibility timeout it was received with ends (VISIBILITY_TIMEOUT_S), which costs no attempt. Raising would
        fail the whole batch after its provider calls, leaving its sent jobs SENDING (UNKNOWN_OUTCOME)."""
        try:
            self._sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43_200))
            )
        except (ClientError, BotoCoreError) as error:
            LOGGER.warning(
                "redelivery delay not set; the message returns after its visibility timeout",
                extra={"queue_url": queue_url, "seconds": seconds, "error": type(error).__name__},
            )

    def url_of_arn(self, queue_arn: str) -> str:
        name = queue_arn.rsplit(":", 1)[-1]
        if name not in self._urls:
            self._urls[name] = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return self._urls[name]


class SqsPlanDispatch:
    """The planner tick's fan-out: one "plan account X" message per active account on the plan queue (standard
    SQS); the plan worker's event source mapping runs one invocation per message, retried by SQS on failure."""

    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def dispatch(self, accounts: Sequence[PlanAccountMessage]) -> list[PlanAccountMessage]:
        refused: list[PlanAccountMessage] = []
        for start in range(0, len(accounts), SEND_BATCH_SIZE):
            chunk = accounts[start : start + SEND_BATCH_SIZE]
            response = self._sqs.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(index), "MessageBody": message.body()} for index, message in enumerate(chunk)],
            )
            refused.extend(chunk[int(entry["Id"])] for entry in response.get("Failed", []))
        return refused
