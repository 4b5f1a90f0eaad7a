"""Scheduling capability: everything EventBridge Scheduler does for the stack, in one schedule group.

  schedule group <stack name>
    planner tick     rate(1 minute) --{"source": "wabacast.tick"}--> planner tick (infra/capabilities/delivery.py)
    queue starts     one at() schedule per scheduled queue start  --> scheduler function
    recurrences      one cron() schedule per recurring queue      --> scheduler function
    limit resumes    one at() schedule per queue a provider limit paused (Twilio 63038), made by the sender or the
                     status webhooks (the API)                    --> scheduler function
    account sync     rate(15 minutes)                             --> account sync (infra/capabilities/account_sync.py)
  every schedule     retry policy, then the schedule dead-letter queue; invoked through the one invoke role

The tick is part of the stack. The queue schedules are not: the API creates, moves and deletes them at run time
(and the scheduler function deletes or moves the ones it fired), so the roles that manage them are scoped to the
group's schedules (`schedule/<group>/*`) and may pass only the invoke role, only to EventBridge Scheduler.

The scheduler function starts the queue a schedule names and wakes the planner with an asynchronous invoke, as the
API does when a queue is processed at once. Scheduler invokes it asynchronously too: what Scheduler cannot deliver
goes to the dead-letter queue after the schedule's retries, and an invocation that keeps failing (after Lambda's
retries) goes there as well, so a start is never silently lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.capabilities.data import DataStore
from infra.capabilities.delivery import Delivery
from infra.capabilities.names import (
    function_arn,
    nag_arn,
    schedule_group_arn,
    schedule_group_name,
    scheduler_function_name,
    schedules_arn_pattern,
)
from infra.capabilities.runtime import LambdaRuntime
from infra.nag import acknowledge, wildcard_resource_rule

CODE_FOLDER = "scheduler"  # functions/scheduler
HANDLER = "handler.lambda_handler"
SCHEDULER_SERVICE = "scheduler.amazonaws.com"
# What the planner's schedule sends; the planner tells a tick from an API start by it.
TICK_INPUT = {"source": "wabacast.tick"}
# What the API and the scheduler function do with the queue schedules (Create/Update/Delete/GetSchedule are
# authorized against arn:...:schedule/<group>/<name>). The sender only makes a queue's limit resume (create, or
# update when it exists).
SENDER_SCHEDULE_ACTIONS = ("scheduler:CreateSchedule", "scheduler:UpdateSchedule")
SCHEDULE_ACTIONS = (
    "scheduler:CreateSchedule",
    "scheduler:DeleteSchedule",
    "scheduler:GetSchedule",
    "scheduler:UpdateSchedule",
)


@dataclass(frozen=True)
class SchedulingSettings:
    """Tunables with production defaults; another environment can pass its own."""

    # A start is a few item reads and writes and one asynchronous invoke.
    scheduler_memory_mb: int = 256
    scheduler_timeout_seconds: int = 30
    # Lambda's own retries of a failed asynchronous invocation of the scheduler function (starting a queue is
    # idempotent), and how long an invocation may wait (throttling) before it goes to the dead-letter queue.
    scheduler_async_retry_attempts: int = 2
    scheduler_async_max_event_age_seconds: int = 6 * 3600
    # The tick: one every minute; a tick Scheduler could not deliver is retried for up to a minute (the next one is
    # due then anyway), then goes to the dead-letter queue.
    tick_retry_attempts: int = 2
    tick_max_event_age_seconds: int = 60
    dead_letter_retention_days: int = 14

    def __post_init__(self) -> None:
        if not 0 <= self.scheduler_async_retry_attempts <= 2:
            raise ValueError(
                f"scheduler_async_retry_attempts must be between 0 and 2 (Lambda's bounds), not "
                f"{self.scheduler_async_retry_attempts}"
            )
        if not 60 <= self.scheduler_async_max_event_age_seconds <= 6 * 3600:
            raise ValueError(
                "scheduler_async_max_event_age_seconds must be between 60 and 21600 (Lambda's bounds), not "
                f"{self.scheduler_async_max_event_age_seconds}"
            )
        if not 0 <= self.tick_retry_attempts <= 185:
            raise ValueError(f"tick_retry_attempts must be between 0 and 185, not {self.tick_retry_attempts}")
        if not 60 <= self.tick_max_event_age_seconds <= 86400:
            raise ValueError(
                f"tick_max_event_age_seconds must be between 60 and 86400, not {self.tick_max_event_age_seconds}"
            )


class Scheduling(Construct):
    """The schedule group, the planner tick, the scheduler function, the invoke role Scheduler uses for every
    schedule of the group, and the one dead-letter queue of those schedules."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: LambdaRuntime,
        data: DataStore,
        delivery: Delivery,
        settings: SchedulingSettings | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings = settings or SchedulingSettings()
        stack = cdk.Stack.of(self)
        planner = delivery.planner

        # --- the group and the dead-letter queue ---------------------------------------------------------------
        self.group_name = schedule_group_name(stack)
        self.group = scheduler.CfnScheduleGroup(self, "ScheduleGroup", name=self.group_name)
        self.dead_letter_queue = sqs.Queue(
            self,
            "ScheduleDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(settings.dead_letter_retention_days),
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: that of every EventBridge Scheduler schedule of the stack's "
            "group (Target.DeadLetterConfig) and the on-failure destination of the scheduler function's "
            "asynchronous invocations, neither of which cdk-nag recognizes (it only knows queues named in another "
            "queue's redrive policy). A dead-letter queue of a dead-letter queue would add nothing.",
        )

        # --- the role Scheduler invokes the targets with -------------------------------------------------------
        self.invoke_role = iam.Role(
            self,
            "ScheduleInvokeRole",
            description="Role EventBridge Scheduler assumes for the wabacast schedules: the planner tick and the "
            "queue starts",
            # Confused-deputy protection: only schedules of this stack's group, in this account, may assume it.
            assumed_by=iam.ServicePrincipal(
                SCHEDULER_SERVICE,
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "aws:SourceArn": schedule_group_arn(stack),
                    }
                },
            ),
        )

        # --- the scheduler function ----------------------------------------------------------------------------
        own_name = scheduler_function_name(stack)
        self.function = runtime.function(
            self,
            "SchedulerFunction",
            function_name=own_name,
            code_folder=CODE_FOLDER,
            handler=HANDLER,
            description="wabacast scheduler: starts a scheduled or recurring queue when its schedule fires",
            memory_mb=settings.scheduler_memory_mb,
            timeout=cdk.Duration.seconds(settings.scheduler_timeout_seconds),
            environment={
                "TABLE_NAME": data.table.table_name,
                "SECRETS_PREFIX": runtime.names.secrets_prefix,
                "QUEUE_NAME_PREFIX": runtime.names.queue_name_prefix,
                "PLANNER_FUNCTION_NAME": planner.function_name,
                # Its own ARN from its fixed name: a reference to itself would be a circular dependency.
                **self._schedule_environment(target_arn=function_arn(stack, own_name)),
            },
        )
        self.function.add_to_role_policy(data.read_write_statement())
        self.function.add_to_role_policy(
            iam.PolicyStatement(sid="StartPlanner", actions=["lambda:InvokeFunction"], resources=[planner.function_arn])
        )
        self.grant_schedule_management(self.function)
        # Adds sqs:SendMessage (and GetQueueAttributes, GetQueueUrl) on the dead-letter queue to the function's role.
        self.function.configure_async_invoke(
            retry_attempts=settings.scheduler_async_retry_attempts,
            max_event_age=cdk.Duration.seconds(settings.scheduler_async_max_event_age_seconds),
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )

        # Hand-written rather than grant_invoke(), which also allows "<function ARN>:*" (every version and alias):
        # the schedules invoke the unqualified functions and nothing else.
        invoke_policy = iam.Policy(
            self,
            "ScheduleInvokePolicy",
            roles=[self.invoke_role],
            statements=[
                iam.PolicyStatement(
                    sid="InvokeTargets",
                    actions=["lambda:InvokeFunction"],
                    resources=[planner.function_arn, self.function.function_arn],
                ),
                iam.PolicyStatement(
                    sid="DeadLetters", actions=["sqs:SendMessage"], resources=[self.dead_letter_queue.queue_arn]
                ),
            ],
        )

        # --- the planner tick ----------------------------------------------------------------------------------
        self.tick_schedule = scheduler.CfnSchedule(
            self,
            "PlannerTickSchedule",
            description="wabacast: tick the delivery planner every minute",
            group_name=self.group.ref,
            schedule_expression="rate(1 minute)",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=planner.function_arn,
                role_arn=self.invoke_role.role_arn,
                input=json.dumps(TICK_INPUT),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=settings.tick_retry_attempts,
                    maximum_event_age_in_seconds=settings.tick_max_event_age_seconds,
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dead_letter_queue.queue_arn),
            ),
        )
        # The role's policy must exist before the first tick tries to use it (the role itself is referenced).
        self.tick_schedule.node.add_dependency(invoke_policy)

        # --- the sender: a provider limit that resets by itself (Twilio's daily limit) resumes its queue then ----
        # The scheduler function is the schedules' target, as for the API's.
        for variable, value in self.environment.items():
            delivery.sender.add_environment(variable, value)
        self._grant_schedules(
            delivery.sender,
            SENDER_SCHEDULE_ACTIONS,
            "One one-time EventBridge Scheduler schedule per queue a provider limit paused, named after the queue "
            "and made at run time (it resumes the queue when the limit resets), so the names cannot be known at "
            "deploy time. Create and update only; the wildcard is limited to the schedules of this stack's schedule "
            "group in this account and region.",
        )

    def _schedule_environment(self, *, target_arn: str) -> dict[str, str]:
        """What the code needs to create a queue schedule: the group, its target, the role Scheduler invokes the
        target with, and the dead-letter queue."""
        return {
            "SCHEDULE_GROUP_NAME": self.group.ref,
            "SCHEDULER_TARGET_ARN": target_arn,
            "SCHEDULER_ROLE_ARN": self.invoke_role.role_arn,
            "SCHEDULE_DLQ_ARN": self.dead_letter_queue.queue_arn,
        }

    @property
    def environment(self) -> dict[str, str]:
        """The variables a function that manages queue schedules (the API) gets."""
        return self._schedule_environment(target_arn=self.function.function_arn)

    def grant_schedule_management(self, function: lambda_.Function) -> None:
        """Create, update, read and delete the schedules of the stack's group (no other group), and pass the invoke
        role (no other role) to EventBridge Scheduler (no other service)."""
        self._grant_schedules(
            function,
            SCHEDULE_ACTIONS,
            "One EventBridge Scheduler schedule per scheduled queue start and per recurring queue, named after the "
            "queue and created, moved and deleted at run time, so the names cannot be known at deploy time. The "
            "wildcard is limited to the schedules of this stack's schedule group in this account and region.",
        )

    def _grant_schedules(self, function: lambda_.Function, actions: tuple[str, ...], reason: str) -> None:
        stack = cdk.Stack.of(self)
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ManageQueueSchedules",
                actions=list(actions),
                resources=[schedules_arn_pattern(stack)],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="PassScheduleInvokeRole",
                actions=["iam:PassRole"],
                resources=[self.invoke_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": SCHEDULER_SERVICE}},
            )
        )
        assert function.role is not None
        acknowledge(
            function.role, wildcard_resource_rule(nag_arn("scheduler", f"schedule/{self.group_name}/*")), reason
        )
