"""Delivery capability: the planner, its one-minute schedule, the sender and the dead-letter consumer.

  EventBridge Scheduler, rate(1 minute) --{"source": "wabacast.tick"}--> planner (also started by the API)
  planner  --SendMessage--> wabacast-<accountId>.fifo       (one FIFO queue per WhatsApp account)
  wabacast-<accountId>.fifo      --event source mapping--> sender
  wabacast-<accountId>-dlq.fifo  --event source mapping--> dead-letter consumer

The per-account queues and their event source mappings are not part of the stack: the API function creates them at
run time when an account is created (see infra/capabilities/api.py and docs/operations.md). So the roles here are
scoped to the queue-name pattern `wabacast-*`, and the sender's role is what those mappings poll the queues with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct, Node

from infra.capabilities.data import DataStore
from infra.capabilities.names import (
    QUEUE_NAME_PREFIX,
    SECRETS_PREFIX,
    account_dead_letter_queues_arn_pattern,
    account_queues_arn_pattern,
    nag_arn,
    secrets_arn_pattern,
)
from infra.capabilities.runtime import LambdaRuntime
from infra.nag import acknowledge, wildcard_resource_rule

PLANNER_CODE_FOLDER = "planner"
PLANNER_HANDLER = "handler.lambda_handler"
SENDER_CODE_FOLDER = "sender"  # functions/sender holds the sender and the dead-letter consumer
SENDER_HANDLER = "handler.lambda_handler"
DEAD_LETTER_HANDLER = "dead_letter.lambda_handler"

# What the planner's schedule sends; the planner tells a tick from an API start by it.
TICK_INPUT = {"source": "wabacast.tick"}
# Context values (cdk.json "context", or `cdk deploy -c sandboxBaseUrl=...`); unset means the variable is not set.
SANDBOX_BASE_URL_CONTEXT = "sandboxBaseUrl"
META_BASE_URL_CONTEXT = "metaBaseUrl"

PLANNER_QUEUE_ACTIONS = ("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage")
# What a Lambda event source mapping needs from the function's role to poll an SQS queue (Receive, Delete,
# GetQueueAttributes), plus what the sender calls itself: GetQueueUrl (the URL of the queue a batch came from,
# whose ARN the event carries) and ChangeMessageVisibility (a message handed back to SQS with a delay: no
# rate-limit slot in time, or a retry with backoff).
SENDER_QUEUE_ACTIONS = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
)
DEAD_LETTER_QUEUE_ACTIONS = ("sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage")

QUEUES_NAG_RESOURCE = nag_arn("sqs", f"{QUEUE_NAME_PREFIX}-*")
DEAD_LETTER_QUEUES_NAG_RESOURCE = nag_arn("sqs", f"{QUEUE_NAME_PREFIX}-*-dlq.fifo")
SECRETS_NAG_RESOURCE = nag_arn("secretsmanager", f"secret:{SECRETS_PREFIX}/*")
QUEUES_CREATED_AT_RUN_TIME = (
    "One FIFO queue and one FIFO dead-letter queue per WhatsApp account (wabacast-<accountId>.fifo, "
    "wabacast-<accountId>-dlq.fifo), created at run time by the API when a tenant adds an account, so their names "
    "cannot be known at deploy time. The wildcard is limited to the wabacast- prefix in this account and region."
)
DEAD_LETTER_QUEUES_CREATED_AT_RUN_TIME = (
    "One FIFO dead-letter queue per WhatsApp account (wabacast-<accountId>-dlq.fifo), created at run time by the "
    "API when a tenant adds an account, so the names cannot be known at deploy time. The wildcard is limited to "
    "queue names starting with wabacast- and ending with -dlq.fifo in this account and region."
)


def _optional_url(node: Node, key: str) -> str | None:
    value: Any = node.try_get_context(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ValueError(f"The CDK context value {key!r} must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


@dataclass(frozen=True)
class DeliverySettings:
    """Tunables with production defaults; another environment can pass its own."""

    planner_memory_mb: int = 512
    planner_timeout_seconds: int = 300
    sender_memory_mb: int = 512
    sender_timeout_seconds: int = 60
    dead_letter_memory_mb: int = 256
    dead_letter_timeout_seconds: int = 60
    # Read by the functions (wabacast.settings): how much of an account's backlog the planner puts on its queue at
    # a time (its rate times this), when a QUEUED job is assumed lost and fed again, how long a sender waits for
    # rate-limit slots before handing the batch back.
    feed_window_seconds: int = 60
    requeue_after_seconds: int = 900
    max_rate_wait_seconds: int = 20
    # The schedule: a tick every minute; a tick Scheduler could not deliver is retried for up to a minute (the
    # next one is due then anyway), then goes to the schedule's dead-letter queue.
    tick_retry_attempts: int = 2
    tick_max_event_age_seconds: int = 60
    # Asynchronous invocations of the planner (the ticks, the API's starts): no retries, since a new tick comes
    # within a minute, and an event waiting longer than this (throttling) is dropped for the same reason.
    planner_async_max_event_age_seconds: int = 120
    # Where the providers are; None leaves the variable unset (the code's defaults apply: Meta's Graph API, and
    # sandbox accounts refused).
    sandbox_base_url: str | None = None
    meta_base_url: str | None = None

    @classmethod
    def from_context(cls, node: Node) -> DeliverySettings:
        """The defaults, with the provider URLs from the CDK context values sandboxBaseUrl and metaBaseUrl."""
        return cls(
            sandbox_base_url=_optional_url(node, SANDBOX_BASE_URL_CONTEXT),
            meta_base_url=_optional_url(node, META_BASE_URL_CONTEXT),
        )

    @property
    def sandbox_environment(self) -> dict[str, str]:
        return {"SANDBOX_BASE_URL": self.sandbox_base_url} if self.sandbox_base_url else {}

    @property
    def meta_environment(self) -> dict[str, str]:
        return {"META_BASE_URL": self.meta_base_url} if self.meta_base_url else {}


class Delivery(Construct):
    """The planner and its schedule, the sender and the dead-letter consumer, each with its own least-privilege role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: LambdaRuntime,
        data: DataStore,
        settings: DeliverySettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        stack = cdk.Stack.of(self)
        table = data.table
        queues_arn = account_queues_arn_pattern(stack)

        # --- planner -------------------------------------------------------------------------------------------
        self.planner = runtime.function(
            self,
            "PlannerFunction",
            code_folder=PLANNER_CODE_FOLDER,
            handler=PLANNER_HANDLER,
            description="wabacast delivery planner: feeds the account queues",
            memory_mb=settings.planner_memory_mb,
            timeout=cdk.Duration.seconds(settings.planner_timeout_seconds),
            environment={
                "TABLE_NAME": table.table_name,
                "QUEUE_NAME_PREFIX": QUEUE_NAME_PREFIX,
                "FEED_WINDOW_S": str(settings.feed_window_seconds),
                "REQUEUE_AFTER_S": str(settings.requeue_after_seconds),
            },
        )
        self.planner.configure_async_invoke(
            retry_attempts=0,
            max_event_age=cdk.Duration.seconds(settings.planner_async_max_event_age_seconds),
        )
        self.planner.add_to_role_policy(data.read_write_statement())
        self.planner.add_to_role_policy(
            iam.PolicyStatement(sid="FeedAccountQueues", actions=list(PLANNER_QUEUE_ACTIONS), resources=[queues_arn])
        )
        self._acknowledge_queues(self.planner, QUEUES_NAG_RESOURCE, QUEUES_CREATED_AT_RUN_TIME)

        # --- the planner's schedule ----------------------------------------------------------------------------
        self.schedule_dead_letter_queue = sqs.Queue(
            self,
            "PlannerScheduleDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            self.schedule_dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: the dead-letter queue of the planner's EventBridge Scheduler "
            "schedule (Target.DeadLetterConfig), which cdk-nag does not recognize (it only knows queues named in "
            "another queue's redrive policy). A dead-letter queue of a dead-letter queue would add nothing.",
        )
        default_schedule_group_arn = stack.format_arn(
            service="scheduler",
            resource="schedule-group",
            resource_name="default",
        )
        self.schedule_role = iam.Role(
            self,
            "PlannerScheduleRole",
            description="Role EventBridge Scheduler assumes to invoke the wabacast planner every minute",
            # Confused-deputy protection: only schedules of this account's default group may assume it.
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "aws:SourceArn": default_schedule_group_arn,
                    }
                },
            ),
        )
        # Hand-written rather than planner.grant_invoke(), which also allows "<planner ARN>:*" (every version and
        # alias): the schedule invokes the unqualified function and nothing else.
        schedule_policy = iam.Policy(
            self,
            "PlannerSchedulePolicy",
            roles=[self.schedule_role],
            statements=[
                iam.PolicyStatement(
                    sid="InvokePlanner", actions=["lambda:InvokeFunction"], resources=[self.planner.function_arn]
                ),
                iam.PolicyStatement(
                    sid="DeadLetters",
                    actions=["sqs:SendMessage"],
                    resources=[self.schedule_dead_letter_queue.queue_arn],
                ),
            ],
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "PlannerSchedule",
            description="wabacast: tick the delivery planner every minute",
            schedule_expression="rate(1 minute)",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.planner.function_arn,
                role_arn=self.schedule_role.role_arn,
                input=json.dumps(TICK_INPUT),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=settings.tick_retry_attempts,
                    maximum_event_age_in_seconds=settings.tick_max_event_age_seconds,
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                    arn=self.schedule_dead_letter_queue.queue_arn
                ),
            ),
        )
        # The role's policy must exist before the first tick tries to use it (the role itself is referenced).
        self.schedule.node.add_dependency(schedule_policy)

        # --- sender --------------------------------------------------------------------------------------------
        self.sender = runtime.function(
            self,
            "SenderFunction",
            code_folder=SENDER_CODE_FOLDER,
            handler=SENDER_HANDLER,
            description="wabacast sender: sends the messages of an account queue",
            memory_mb=settings.sender_memory_mb,
            timeout=cdk.Duration.seconds(settings.sender_timeout_seconds),
            environment={
                "TABLE_NAME": table.table_name,
                "SECRETS_PREFIX": SECRETS_PREFIX,
                "QUEUE_NAME_PREFIX": QUEUE_NAME_PREFIX,
                "MAX_RATE_WAIT_S": str(settings.max_rate_wait_seconds),
                **settings.meta_environment,
                **settings.sandbox_environment,
            },
        )
        self.sender.add_to_role_policy(data.read_write_statement())
        self.sender.add_to_role_policy(
            iam.PolicyStatement(sid="ConsumeAccountQueues", actions=list(SENDER_QUEUE_ACTIONS), resources=[queues_arn])
        )
        self.sender.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadAccountSecrets",
                actions=["secretsmanager:GetSecretValue"],
                resources=[secrets_arn_pattern(stack)],
            )
        )
        self._acknowledge_queues(self.sender, QUEUES_NAG_RESOURCE, QUEUES_CREATED_AT_RUN_TIME)
        assert self.sender.role is not None
        acknowledge(
            self.sender.role,
            wildcard_resource_rule(SECRETS_NAG_RESOURCE),
            "Read-only (GetSecretValue) on the account credentials, one secret per WhatsApp account named "
            "wabacast/{businessId}/accounts/{accountId} and created at run time by the API, so the names cannot be "
            "known at deploy time. The wildcard is limited to the wabacast/ prefix in this account and region.",
        )

        # --- dead-letter consumer ------------------------------------------------------------------------------
        self.dead_letter_function = runtime.function(
            self,
            "DeadLetterFunction",
            code_folder=SENDER_CODE_FOLDER,
            handler=DEAD_LETTER_HANDLER,
            description="wabacast dead-letter consumer: fails the jobs whose messages SQS gave up on",
            memory_mb=settings.dead_letter_memory_mb,
            timeout=cdk.Duration.seconds(settings.dead_letter_timeout_seconds),
            environment={"TABLE_NAME": table.table_name},
        )
        self.dead_letter_function.add_to_role_policy(data.read_write_statement())
        self.dead_letter_function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ConsumeAccountDeadLetterQueues",
                actions=list(DEAD_LETTER_QUEUE_ACTIONS),
                resources=[account_dead_letter_queues_arn_pattern(stack)],
            )
        )
        self._acknowledge_queues(
            self.dead_letter_function, DEAD_LETTER_QUEUES_NAG_RESOURCE, DEAD_LETTER_QUEUES_CREATED_AT_RUN_TIME
        )

    @property
    def account_queue_functions(self) -> list[lambda_.Function]:
        """The functions the API may map account queues to: the sender and the dead-letter consumer."""
        return [self.sender, self.dead_letter_function]

    @staticmethod
    def _acknowledge_queues(function: lambda_.Function, nag_resource: str, reason: str) -> None:
        assert function.role is not None
        acknowledge(function.role, wildcard_resource_rule(nag_resource), reason)
