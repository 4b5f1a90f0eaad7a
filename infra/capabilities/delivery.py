"""Delivery capability: the planner tick, the plan queue and its workers, the sender and the dead-letter consumer.

  EventBridge Scheduler, rate(1 minute) --{"source": "wabacast.tick"}--> planner tick (also started by the API
                                                                          and by the scheduler function)
  planner tick --SendMessageBatch {"b": <businessId>, "a": <accountId>}--> plan queue (SQS standard, one message
                                                                            per active account and tick)
  plan queue   --event source mapping, batch size 1--> plan worker (plans one account)
               --after 3 failed receives--> plan dead-letter queue
  plan worker  --SendMessageBatch--> wabacast-<env>-<accountId>.fifo      (one FIFO queue per WhatsApp account)
  wabacast-<env>-<accountId>.fifo      --event source mapping--> sender (reserved concurrency: all accounts' cap)
  wabacast-<env>-<accountId>-dlq.fifo  --event source mapping--> dead-letter consumer

The tick's schedule belongs to the scheduling capability (infra/capabilities/scheduling.py), with the other
schedules. The plan queue, its dead-letter queue and their mapping are part of the stack. The per-account queues
and their event source mappings are not: the API function creates them at run time when an account is created
(see infra/capabilities/api.py and docs/operations.md). So the roles that touch them are scoped to the queue-name
pattern `wabacast-<env>-*` (infra/capabilities/names.py), and the sender's role is what those mappings poll the
queues with.

The sender and the plan worker run once per batch and once per active account and minute, so their traces grow
with the volume: an X-Ray sampling rule per function asks for a small fixed rate (see `_trace_sampling_rule` for
what it does and does not govern).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_xray as xray
from constructs import Construct, Node

from infra.capabilities.data import DataStore
from infra.capabilities.names import Names
from infra.capabilities.runtime import LambdaRuntime
from infra.nag import acknowledge, wildcard_resource_rule

PLANNER_CODE_FOLDER = "planner"  # functions/planner holds the planner tick and the plan worker
PLANNER_HANDLER = "handler.lambda_handler"
PLAN_WORKER_HANDLER = "worker.lambda_handler"
SENDER_CODE_FOLDER = "sender"  # functions/sender holds the sender and the dead-letter consumer
SENDER_HANDLER = "handler.lambda_handler"
DEAD_LETTER_HANDLER = "dead_letter.lambda_handler"

# Context values (cdk.json "context", or `cdk deploy -c sandboxBaseUrl=...`); unset means the variable is not set.
SANDBOX_BASE_URL_CONTEXT = "sandboxBaseUrl"
META_BASE_URL_CONTEXT = "metaBaseUrl"
# Reserved concurrency of the sender (0: not reserved), and the account's Lambda concurrency quota it is checked
# against (docs/operations.md, "Concurrency").
SENDER_RESERVED_CONCURRENCY_CONTEXT = "senderReservedConcurrency"
LAMBDA_CONCURRENCY_QUOTA_CONTEXT = "lambdaConcurrencyQuota"
DEFAULT_SENDER_RESERVED_CONCURRENCY = 100
# Lambda's default concurrency quota per region for an established account; new accounts start lower (10).
DEFAULT_LAMBDA_CONCURRENCY_QUOTA = 1000
# Lambda refuses a reservation that leaves fewer unreserved executions than this in the region.
MIN_UNRESERVED_CONCURRENCY = 100 // 10

# What the plan worker calls on the account queues it feeds (SendMessageBatch is authorized as SendMessage).
PLAN_WORKER_QUEUE_ACTIONS = ("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage")
# Every plan-queue message asks for one account to be planned: one message per worker invocation.
PLAN_QUEUE_BATCH_SIZE = 1
# AWS's advice for a queue with a Lambda event source: a visibility timeout of at least six times the function's
# timeout, so a message is not handed out again while an invocation (and Lambda's retries of it) may still run.
VISIBILITY_TIMEOUT_PER_FUNCTION_TIMEOUT = 6
# Lambda's bounds for an SQS event source mapping's MaximumConcurrency.
MIN_MAPPING_CONCURRENCY = 2
MAX_MAPPING_CONCURRENCY = 1000
# X-Ray sampling rules: priority (1 = first, 10000 = the Default rule) and the fixed format version.
TRACE_SAMPLING_PRIORITY = 9000
SAMPLING_RULE_VERSION = 1
SAMPLING_RULE_NAME_MAX_LENGTH = 32
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


def queues_created_at_run_time(names: Names) -> str:
    return (
        f"One FIFO queue and one FIFO dead-letter queue per WhatsApp account ({names.queue_name_prefix}-<accountId>"
        f".fifo, {names.queue_name_prefix}-<accountId>-dlq.fifo), created at run time by the API when a tenant adds "
        "an account, so their names cannot be known at deploy time. The wildcard is limited to the "
        f"{names.queue_name_prefix}- prefix (this environment's) in this account and region."
    )


def dead_letter_queues_created_at_run_time(names: Names) -> str:
    return (
        f"One FIFO dead-letter queue per WhatsApp account ({names.queue_name_prefix}-<accountId>-dlq.fifo), created "
        "at run time by the API when a tenant adds an account, so the names cannot be known at deploy time. The "
        f"wildcard is limited to queue names starting with {names.queue_name_prefix}- and ending with -dlq.fifo in "
        "this account and region."
    )


def _optional_url(node: Node, key: str) -> str | None:
    value: Any = node.try_get_context(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ValueError(f"The CDK context value {key!r} must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def _optional_int(node: Node, key: str, default: int) -> int:
    """A whole number from the context (`-c key=5` arrives as the string "5"); unset means `default`."""
    value: Any = node.try_get_context(key)
    if value in (None, ""):
        return default
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
        raise ValueError(f"The CDK context value {key!r} must be a whole number of 0 or more, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class DeliverySettings:
    """Tunables with production defaults; another environment can pass its own."""

    # The tick only lists the active accounts and hands them to the plan queue.
    planner_memory_mb: int = 512
    planner_timeout_seconds: int = 300
    # The plan worker plans one account per invocation: at up to 1,000 messages/s, a minute of that account's
    # rate is 60,000 jobs to materialize and put on its queue, within the timeout.
    plan_worker_memory_mb: int = 512
    plan_worker_timeout_seconds: int = 300
    # At most this many accounts are planned at the same time (the plan queue mapping's MaximumConcurrency).
    plan_worker_max_concurrency: int = 50
    # A plan message whose worker failed this many times goes to the plan dead-letter queue. Each retry waits for
    # the visibility timeout (six worker timeouts), and the next tick asks again for the account anyway.
    plan_queue_max_receive_count: int = 3
    # An account not planned within this long has been asked for again by later ticks: older messages are dropped.
    # Longer than max_receive_count visibility timeouts, so a message failing every time reaches the DLQ first.
    plan_queue_retention_seconds: int = 2 * 3600
    # Measured with bench/sender_memory.py (docs/operations.md, "Sizing"): the sender peaks at about 80 MB of RSS
    # (63 MB after the import, +17 MB on the first batch, then flat over 30 batches), so 256 MB would hold it; but
    # a warm batch of 10 also takes about 0.15 s of CPU (a full x86 core), which Lambda's CPU share turns into
    # about 1 s at 256 MB and 0.5 s at 512 MB, against a 0.3 s provider round trip. At 512 MB a batch costs about
    # the same GB-seconds as at 256 MB (its CPU-bound part costs the same at any size) and takes half as long.
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
    # Jobs expire (DynamoDB TTL) this many days after they were planned (JOB_RETENTION_DAYS).
    job_retention_days: int = 90
    # How long a sender batch takes besides its rate slots: the provider round trip (~0.3 s) plus the handler's own
    # time at sender_memory_mb (~0.5 s measured by bench/sender_memory.py). The API sizes each sender mapping's
    # MaximumConcurrency from it and the account's messages per second (SENDER_BATCH_S).
    sender_batch_seconds: float = 0.8
    # X-Ray sampling of the sender and the plan worker: this many traces per second, then this share of the rest.
    trace_reservoir_per_second: int = 1
    trace_sampling_rate: float = 0.01
    # Asynchronous invocations of the planner (the ticks, the API's and the scheduler's starts): no retries, since
    # a new tick comes within a minute, and an event waiting longer than this (throttling) is dropped for the same
    # reason.
    planner_async_max_event_age_seconds: int = 120
    # Reserved concurrency of the sender: caps every sender invocation of every account together, so senders can
    # never take the whole region's concurrency from the API, the authorizer and the planner (and guarantees the
    # senders that much). 0 means not reserved: for an account whose quota is still too low to reserve anything.
    sender_reserved_concurrency: int = DEFAULT_SENDER_RESERVED_CONCURRENCY
    # The account's Lambda concurrency quota in the region (Service Quotas, `aws lambda get-account-settings`),
    # only used to refuse at synth a reservation Lambda would refuse at deploy.
    lambda_concurrency_quota: int = DEFAULT_LAMBDA_CONCURRENCY_QUOTA
    # Where the providers are; None leaves the variable unset (the code's defaults apply: Meta's Graph API, and
    # sandbox accounts refused).
    sandbox_base_url: str | None = None
    meta_base_url: str | None = None

    def __post_init__(self) -> None:
        if not MIN_MAPPING_CONCURRENCY <= self.plan_worker_max_concurrency <= MAX_MAPPING_CONCURRENCY:
            raise ValueError(
                f"plan_worker_max_concurrency must be between {MIN_MAPPING_CONCURRENCY} and "
                f"{MAX_MAPPING_CONCURRENCY} (Lambda's bounds), not {self.plan_worker_max_concurrency}"
            )
        redrive_after = self.plan_queue_max_receive_count * self.plan_queue_visibility_timeout_seconds
        if self.plan_queue_retention_seconds <= redrive_after:
            raise ValueError(
                f"plan_queue_retention_seconds ({self.plan_queue_retention_seconds}) must exceed "
                f"plan_queue_max_receive_count visibility timeouts ({redrive_after} s): a plan message failing "
                "every time would expire before reaching the dead-letter queue"
            )
        if self.sender_reserved_concurrency < 0:
            raise ValueError(
                f"sender_reserved_concurrency must be 0 (not reserved) or more, not {self.sender_reserved_concurrency}"
            )
        most = self.lambda_concurrency_quota - MIN_UNRESERVED_CONCURRENCY
        if self.sender_reserved_concurrency > most:
            raise ValueError(
                f"sender_reserved_concurrency {self.sender_reserved_concurrency} is more than the account can reserve: "
                f"Lambda keeps {MIN_UNRESERVED_CONCURRENCY} of the quota ({self.lambda_concurrency_quota}) unreserved, "
                f"so at most {max(most, 0)}. Pass -c {SENDER_RESERVED_CONCURRENCY_CONTEXT}=0 (not reserved) or "
                "request a higher quota (docs/operations.md, Concurrency)."
            )
        if not 0 <= self.trace_sampling_rate <= 1:
            raise ValueError(f"trace_sampling_rate is a share between 0 and 1, not {self.trace_sampling_rate}")

    @property
    def plan_queue_visibility_timeout_seconds(self) -> int:
        return VISIBILITY_TIMEOUT_PER_FUNCTION_TIMEOUT * self.plan_worker_timeout_seconds

    @property
    def job_retention_environment(self) -> dict[str, str]:
        return {"JOB_RETENTION_DAYS": str(self.job_retention_days)}

    @property
    def sender_reservation(self) -> int | None:
        """The sender's ReservedConcurrentExecutions: None (the property left out) when not reserved."""
        return self.sender_reserved_concurrency or None

    @classmethod
    def from_context(cls, node: Node) -> DeliverySettings:
        """The defaults, with the provider URLs (sandboxBaseUrl, metaBaseUrl) and the sender's reserved concurrency
        (senderReservedConcurrency, checked against lambdaConcurrencyQuota) from the CDK context."""
        return cls(
            sandbox_base_url=_optional_url(node, SANDBOX_BASE_URL_CONTEXT),
            meta_base_url=_optional_url(node, META_BASE_URL_CONTEXT),
            sender_reserved_concurrency=_optional_int(
                node, SENDER_RESERVED_CONCURRENCY_CONTEXT, DEFAULT_SENDER_RESERVED_CONCURRENCY
            ),
            lambda_concurrency_quota=_optional_int(
                node, LAMBDA_CONCURRENCY_QUOTA_CONTEXT, DEFAULT_LAMBDA_CONCURRENCY_QUOTA
            ),
        )

    @property
    def sandbox_environment(self) -> dict[str, str]:
        return {"SANDBOX_BASE_URL": self.sandbox_base_url} if self.sandbox_base_url else {}

    @property
    def meta_environment(self) -> dict[str, str]:
        return {"META_BASE_URL": self.meta_base_url} if self.meta_base_url else {}


class Delivery(Construct):
    """The planner tick, the plan queue and worker, the sender and the dead-letter consumer, each function with its
    own least-privilege role."""

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
        names = runtime.names
        table = data.table
        queues_arn = names.account_queues_arn_pattern(stack)

        # --- the plan queue ------------------------------------------------------------------------------------
        self.plan_dead_letter_queue = sqs.Queue(
            self,
            "PlanDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.plan_queue = sqs.Queue(
            self,
            "PlanQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(settings.plan_queue_visibility_timeout_seconds),
            retention_period=cdk.Duration.seconds(settings.plan_queue_retention_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.plan_dead_letter_queue, max_receive_count=settings.plan_queue_max_receive_count
            ),
        )

        # --- planner tick --------------------------------------------------------------------------------------
        self.planner = runtime.function(
            self,
            "PlannerFunction",
            code_folder=PLANNER_CODE_FOLDER,
            handler=PLANNER_HANDLER,
            description="wabacast delivery planner tick: hands each active account to the plan queue",
            memory_mb=settings.planner_memory_mb,
            timeout=cdk.Duration.seconds(settings.planner_timeout_seconds),
            environment={
                "TABLE_NAME": table.table_name,
                "PLAN_QUEUE_URL": self.plan_queue.queue_url,
                **settings.job_retention_environment,
            },
        )
        self.planner.configure_async_invoke(
            retry_attempts=0,
            max_event_age=cdk.Duration.seconds(settings.planner_async_max_event_age_seconds),
        )
        self.planner.add_to_role_policy(data.read_write_statement())
        # Hand-written rather than plan_queue.grant_send_messages(), which adds GetQueueAttributes and GetQueueUrl:
        # the tick has the URL and only sends (SendMessageBatch is authorized as SendMessage).
        self.planner.add_to_role_policy(
            iam.PolicyStatement(
                sid="DispatchAccounts", actions=["sqs:SendMessage"], resources=[self.plan_queue.queue_arn]
            )
        )

        # --- plan worker ---------------------------------------------------------------------------------------
        self.plan_worker = runtime.function(
            self,
            "PlanWorkerFunction",
            code_folder=PLANNER_CODE_FOLDER,
            handler=PLAN_WORKER_HANDLER,
            description="wabacast plan worker: plans one account and feeds its queue",
            memory_mb=settings.plan_worker_memory_mb,
            timeout=cdk.Duration.seconds(settings.plan_worker_timeout_seconds),
            environment={
                "TABLE_NAME": table.table_name,
                "QUEUE_NAME_PREFIX": names.queue_name_prefix,
                "FEED_WINDOW_S": str(settings.feed_window_seconds),
                "REQUEUE_AFTER_S": str(settings.requeue_after_seconds),
                **settings.job_retention_environment,
            },
        )
        self.plan_worker.add_to_role_policy(data.read_write_statement())
        self.plan_worker.add_to_role_policy(
            iam.PolicyStatement(
                sid="FeedAccountQueues", actions=list(PLAN_WORKER_QUEUE_ACTIONS), resources=[queues_arn]
            )
        )
        self._acknowledge_queues(self.plan_worker, names.queues_nag_resource, queues_created_at_run_time(names))
        # Also grants the worker's role what the mapping polls with (receive, delete, change visibility) on the
        # plan queue only.
        self.plan_worker.add_event_source(
            event_sources.SqsEventSource(
                self.plan_queue,
                batch_size=PLAN_QUEUE_BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=settings.plan_worker_max_concurrency,
            )
        )

        # --- sender --------------------------------------------------------------------------------------------
        self.sender = runtime.function(
            self,
            "SenderFunction",
            code_folder=SENDER_CODE_FOLDER,
            handler=SENDER_HANDLER,
            description="wabacast sender: sends the messages of an account queue",
            memory_mb=settings.sender_memory_mb,
            timeout=cdk.Duration.seconds(settings.sender_timeout_seconds),
            reserved_concurrent_executions=settings.sender_reservation,
            environment={
                "TABLE_NAME": table.table_name,
                "SECRETS_PREFIX": names.secrets_prefix,
                "QUEUE_NAME_PREFIX": names.queue_name_prefix,
                "MAX_RATE_WAIT_S": str(settings.max_rate_wait_seconds),
                **settings.job_retention_environment,
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
                resources=[names.secrets_arn_pattern(stack)],
            )
        )
        self._acknowledge_queues(self.sender, names.queues_nag_resource, queues_created_at_run_time(names))
        assert self.sender.role is not None
        acknowledge(
            self.sender.role,
            wildcard_resource_rule(names.secrets_nag_resource),
            "Read-only (GetSecretValue) on the account credentials, one secret per WhatsApp account named "
            f"{names.secrets_prefix}/{{businessId}}/accounts/{{accountId}} and created at run time by the API, so the "
            f"names cannot be known at deploy time. The wildcard is limited to the {names.secrets_prefix}/ prefix "
            "(this environment's) in this account and region.",
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
            # The queue prefix tells the consumer which account a dead-lettered batch came from (its metric).
            environment={"TABLE_NAME": table.table_name, "QUEUE_NAME_PREFIX": names.queue_name_prefix},
        )
        self.dead_letter_function.add_to_role_policy(data.read_write_statement())
        self.dead_letter_function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ConsumeAccountDeadLetterQueues",
                actions=list(DEAD_LETTER_QUEUE_ACTIONS),
                resources=[names.account_dead_letter_queues_arn_pattern(stack)],
            )
        )
        self._acknowledge_queues(
            self.dead_letter_function,
            names.dead_letter_queues_nag_resource,
            dead_letter_queues_created_at_run_time(names),
        )

        # --- trace sampling ------------------------------------------------------------------------------------
        self.trace_sampling_rules = {
            "sender": self._trace_sampling_rule("SenderTraceSampling", self.sender),
            "plan_worker": self._trace_sampling_rule("PlanWorkerTraceSampling", self.plan_worker),
        }

    def _trace_sampling_rule(self, construct_id: str, function: lambda_.Function) -> xray.CfnSamplingRule:
        """An X-Ray sampling rule for `function`: `trace_reservoir_per_second` traces a second, then
        `trace_sampling_rate` of the rest, instead of the Default rule's 1 a second and 5% of the rest.

        It matches the function's segments by service name, which is the function's name for a Lambda function,
        on any host, method, path and resource. Its name is derived from the construct path (unique per stack:
        rule names are per account and region, at most 32 characters).

        Caveat: the Lambda developer guide ("Visualize Lambda function invocations using AWS X-Ray") says that for
        an invocation without a sampled trace header, Lambda's own active-tracing decision is 1 request a second
        and 5% of the rest, and cannot be configured; and inside Lambda the X-Ray SDK (Powertools' Tracer) takes
        the decision from Lambda's trace header, not from sampling rules. The rule applies to decisions taken
        through X-Ray's centralized sampling (e.g. an OpenTelemetry X-Ray remote sampler, when the SDK is
        replaced); check the effective rate after a deploy (docs/operations.md, "Tracing").
        """
        rule = xray.CfnSamplingRule(self, construct_id)
        rule.sampling_rule = xray.CfnSamplingRule.SamplingRuleProperty(
            rule_name=cdk.Names.unique_resource_name(rule, max_length=SAMPLING_RULE_NAME_MAX_LENGTH),
            priority=TRACE_SAMPLING_PRIORITY,
            reservoir_size=self.settings.trace_reservoir_per_second,
            fixed_rate=self.settings.trace_sampling_rate,
            service_name=function.function_name,
            service_type="*",
            host="*",
            http_method="*",
            url_path="*",
            resource_arn="*",
            version=SAMPLING_RULE_VERSION,
        )
        return rule

    @property
    def account_queue_functions(self) -> list[lambda_.Function]:
        """The functions the API may map account queues to: the sender and the dead-letter consumer."""
        return [self.sender, self.dead_letter_function]

    @staticmethod
    def _acknowledge_queues(function: lambda_.Function, nag_resource: str, reason: str) -> None:
        assert function.role is not None
        acknowledge(function.role, wildcard_resource_rule(nag_resource), reason)
