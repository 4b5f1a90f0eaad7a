"""Account sync capability: the periodic read of every account's health from its provider.

  schedule group <stack name>
    account sync   rate(15 minutes) --{"source": "wabacast.account-sync"}--> account-sync function

The function (functions/scheduler/account_sync.py) reads each account's phone number and templates with the
account's own credentials (Meta's Graph API, Twilio's REST API) and writes what changed: the account (quality,
tier, status), its templates, and the queues a sync pauses or moves to the business's default account. Provider
calls are outbound HTTPS and need nothing in IAM; metrics are EMF log lines, so no cloudwatch:PutMetricData.

Reserved concurrency 1: two passes at once would only read every provider twice. The schedule is invoked through
the schedule group's invoke role and dead-letters to its queue, like the planner tick (infra/capabilities/
scheduling.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from infra.capabilities.data import DataStore
from infra.capabilities.delivery import Delivery
from infra.capabilities.names import account_sync_function_name
from infra.capabilities.runtime import LambdaRuntime
from infra.capabilities.scheduling import Scheduling
from infra.nag import acknowledge, wildcard_resource_rule

CODE_FOLDER = "scheduler"  # functions/scheduler
HANDLER = "account_sync.lambda_handler"
# What the schedule sends; the handler logs it as the pass's trigger.
SYNC_INPUT = {"source": "wabacast.account-sync"}


@dataclass(frozen=True)
class AccountSyncSettings:
    """Tunables with production defaults; another environment can pass its own."""

    # Issue 8: "every 15 minutes, and on demand" (on demand is the API's POST /accounts/{id}/sync).
    interval_minutes: int = 15
    # A pass reads every account one after the other (two provider calls each, at most `PROVIDER_TIMEOUT_S` each):
    # the handler stops starting new accounts before the timeout, and the next pass goes on from there.
    memory_mb: int = 512
    timeout_seconds: int = 300
    # A firing Scheduler could not deliver is retried for a few minutes (the next pass is due anyway), then goes to
    # the schedules' dead-letter queue.
    retry_attempts: int = 2
    max_event_age_seconds: int = 300
    # Lambda's own handling of the asynchronous invocation: no retry of a failed pass (the next one comes), and an
    # invocation throttled by the reserved concurrency (a pass still running) is dropped after this long.
    async_max_event_age_seconds: int = 600

    def __post_init__(self) -> None:
        if not 1 <= self.interval_minutes <= 1440:
            raise ValueError(f"interval_minutes must be between 1 and 1440, not {self.interval_minutes}")
        if not 60 <= self.timeout_seconds <= 900:
            raise ValueError(f"timeout_seconds must be between 60 and 900 (Lambda's bound), not {self.timeout_seconds}")
        if self.timeout_seconds >= self.interval_minutes * 60:
            raise ValueError(
                f"timeout_seconds ({self.timeout_seconds}) must be shorter than the interval "
                f"({self.interval_minutes} minutes): a pass must end before the next one is due"
            )
        if not 60 <= self.async_max_event_age_seconds <= 6 * 3600:
            raise ValueError(
                "async_max_event_age_seconds must be between 60 and 21600 (Lambda's bounds), not "
                f"{self.async_max_event_age_seconds}"
            )

    @property
    def schedule_expression(self) -> str:
        unit = "minute" if self.interval_minutes == 1 else "minutes"
        return f"rate({self.interval_minutes} {unit})"


class AccountSync(Construct):
    """The account-sync function, its least-privilege role and its schedule in the stack's group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: LambdaRuntime,
        data: DataStore,
        delivery: Delivery,
        scheduling: Scheduling,
        settings: AccountSyncSettings | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings = settings or AccountSyncSettings()
        stack = cdk.Stack.of(self)
        names = runtime.names

        self.function = runtime.function(
            self,
            "AccountSyncFunction",
            function_name=account_sync_function_name(stack),
            code_folder=CODE_FOLDER,
            handler=HANDLER,
            description="wabacast account sync: reads every account's quality, tier and templates from its provider",
            memory_mb=settings.memory_mb,
            timeout=cdk.Duration.seconds(settings.timeout_seconds),
            reserved_concurrent_executions=1,
            environment={
                "TABLE_NAME": data.table.table_name,
                "SECRETS_PREFIX": names.secrets_prefix,
                "QUEUE_NAME_PREFIX": names.queue_name_prefix,
                **delivery.settings.meta_environment,
                **delivery.settings.sandbox_environment,
            },
        )
        self.function.configure_async_invoke(
            retry_attempts=0, max_event_age=cdk.Duration.seconds(settings.async_max_event_age_seconds)
        )
        # Accounts, businesses, queues and templates are items of the one table: read them, write accounts,
        # templates and the queues a sync pauses or moves (transactions are authorized item by item).
        self.function.add_to_role_policy(data.read_write_statement())
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadAccountSecrets",
                actions=["secretsmanager:GetSecretValue"],
                resources=[names.secrets_arn_pattern(stack)],
            )
        )
        assert self.function.role is not None
        acknowledge(
            self.function.role,
            wildcard_resource_rule(names.secrets_nag_resource),
            "Read-only (GetSecretValue) on the account credentials, as the sender: one secret per WhatsApp account "
            f"named {names.secrets_prefix}/{{businessId}}/accounts/{{accountId}}, created at run time by the API, so "
            f"the names cannot be known at deploy time. The wildcard is limited to the {names.secrets_prefix}/ "
            "prefix (this environment's) in this account and region.",
        )

        # --- the schedule --------------------------------------------------------------------------------------
        # The group's invoke role may invoke this function too (unqualified, as the other targets).
        invoke_policy = iam.Policy(
            self,
            "AccountSyncInvokePolicy",
            roles=[scheduling.invoke_role],
            statements=[
                iam.PolicyStatement(
                    sid="InvokeAccountSync", actions=["lambda:InvokeFunction"], resources=[self.function.function_arn]
                )
            ],
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "AccountSyncSchedule",
            description=f"wabacast: sync every account with its provider every {settings.interval_minutes} minutes",
            group_name=scheduling.group.ref,
            schedule_expression=settings.schedule_expression,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn,
                role_arn=scheduling.invoke_role.role_arn,
                input=json.dumps(SYNC_INPUT),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=settings.retry_attempts,
                    maximum_event_age_in_seconds=settings.max_event_age_seconds,
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                    arn=scheduling.dead_letter_queue.queue_arn
                ),
            ),
        )
        # The invoke permission must exist before the first firing uses it.
        self.schedule.node.add_dependency(invoke_policy)
