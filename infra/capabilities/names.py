"""The environment (`-c env=dev|prod`), the names it puts on everything, and the ARN patterns permissions use.

Every name that two deployments in one account and region could share carries the environment: the stack name
(so every generated physical name: table, functions, roles, queues, log groups), the run-time names the functions
create (queues, secrets), the metrics' service dimension, the dashboard, the alarms and the alarm topic. The IAM
patterns are built from the same prefixes, so `dev` can never read or change what `prod` creates.

The functions read the prefixes from their environment (`wabacast.settings.Settings.from_env`); the stack sets them
from here, so the names the code creates and the names IAM allows cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk

# `cdk deploy -c env=prod`, `make deploy ENV=prod`; without it, the app builds the dev environment.
ENVIRONMENT_CONTEXT = "env"
ENVIRONMENTS = ("dev", "prod")
DEFAULT_ENVIRONMENT = "dev"
PROJECT = "wabacast"
STACK_NAME_PREFIX = "Wabacast"
DEAD_LETTER_QUEUE_SUFFIX = "-dlq.fifo"
# Powertools Metrics namespace (POWERTOOLS_METRICS_NAMESPACE) of every function; environments are told apart by
# the `service` dimension (Names.service).
METRICS_NAMESPACE = "wabacast"


@dataclass(frozen=True)
class Names:
    """Names of one environment (`dev` or `prod`)."""

    environment: str = DEFAULT_ENVIRONMENT

    def __post_init__(self) -> None:
        if self.environment not in ENVIRONMENTS:
            raise ValueError(
                f"The CDK context value {ENVIRONMENT_CONTEXT!r} must be one of {', '.join(ENVIRONMENTS)}, "
                f"not {self.environment!r} (e.g. `-c {ENVIRONMENT_CONTEXT}=dev`)"
            )

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Names:
        """The environment of the app's context; unset means dev."""
        value = context.get(ENVIRONMENT_CONTEXT)
        return cls(DEFAULT_ENVIRONMENT if value in (None, "") else value)

    @property
    def stack_name(self) -> str:
        """Wabacast-dev, Wabacast-prod: CloudFormation derives every generated physical name from it."""
        return f"{STACK_NAME_PREFIX}-{self.environment}"

    @property
    def prefix(self) -> str:
        """wabacast-dev: the start of every explicit name (alarms, dashboard, topic)."""
        return f"{PROJECT}-{self.environment}"

    @property
    def queue_name_prefix(self) -> str:
        """Each WhatsApp account gets "{prefix}-{accountId}.fifo" and "{prefix}-{accountId}-dlq.fifo"."""
        return self.prefix

    @property
    def secrets_prefix(self) -> str:
        """Secrets are named "{prefix}/{businessId}/accounts/{accountId}"."""
        return self.prefix

    @property
    def service(self) -> str:
        """The Powertools service name: the `service` dimension of every metric and the `service` key of logs."""
        return self.prefix

    def secrets_arn_pattern(self, stack: cdk.Stack) -> str:
        """arn:${Partition}:secretsmanager:${Region}:${Account}:secret:wabacast-<env>/* (every account secret)."""
        return stack.format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{self.secrets_prefix}/*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

    def account_queues_arn_pattern(self, stack: cdk.Stack) -> str:
        """arn:${Partition}:sqs:${Region}:${Account}:wabacast-<env>-* (every account queue and its DLQ)."""
        return stack.format_arn(service="sqs", resource=f"{self.queue_name_prefix}-*")

    def account_dead_letter_queues_arn_pattern(self, stack: cdk.Stack) -> str:
        """arn:${Partition}:sqs:${Region}:${Account}:wabacast-<env>-*-dlq.fifo (the accounts' DLQs only)."""
        return stack.format_arn(service="sqs", resource=f"{self.queue_name_prefix}-*{DEAD_LETTER_QUEUE_SUFFIX}")

    # How cdk-nag prints the patterns above in its finding ids.
    @property
    def queues_nag_resource(self) -> str:
        return nag_arn("sqs", f"{self.queue_name_prefix}-*")

    @property
    def dead_letter_queues_nag_resource(self) -> str:
        return nag_arn("sqs", f"{self.queue_name_prefix}-*{DEAD_LETTER_QUEUE_SUFFIX}")

    @property
    def secrets_nag_resource(self) -> str:
        return nag_arn("secretsmanager", f"secret:{self.secrets_prefix}/*")


def event_source_mappings_arn_pattern(stack: cdk.Stack) -> str:
    """arn:${Partition}:lambda:${Region}:${Account}:event-source-mapping:* (mappings are created at run time and
    named by a UUID Lambda assigns, so no prefix can narrow this; the statements using it are conditioned on the
    environment's own function ARNs instead)."""
    return stack.format_arn(
        service="lambda",
        resource="event-source-mapping",
        resource_name="*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


def nag_arn(service: str, resource: str) -> str:
    """How cdk-nag prints `stack.format_arn(service=..., resource=...)` in a finding id: pseudo parameters as
    <AWS::...>, e.g. nag_arn("sqs", "wabacast-dev-*") for `Names.account_queues_arn_pattern`."""
    return f"arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"


# EventBridge Scheduler's rules for a schedule group name, and Lambda's length limit for a function name.
SCHEDULE_GROUP_NAME_PATTERN = re.compile(r"^[0-9A-Za-z._-]{1,64}$")
FUNCTION_NAME_MAX_LENGTH = 64
SCHEDULER_FUNCTION_SUFFIX = "-scheduler"
ACCOUNT_SYNC_FUNCTION_SUFFIX = "-account-sync"


def schedule_group_name(stack: cdk.Stack) -> str:
    """The stack's EventBridge Scheduler group: the stack's name (one group per deployed stack, so two stacks in
    one account and region never share schedules or permissions)."""
    name = stack.stack_name
    if not SCHEDULE_GROUP_NAME_PATTERN.match(name):
        raise ValueError(
            f"The stack name {name!r} cannot name a schedule group: at most 64 of A-Z, a-z, 0-9, '.', '_', '-'"
        )
    return name


def schedules_arn_pattern(stack: cdk.Stack) -> str:
    """arn:${Partition}:scheduler:${Region}:${Account}:schedule/<group>/* (every schedule of the stack's group)."""
    return stack.format_arn(service="scheduler", resource="schedule", resource_name=f"{schedule_group_name(stack)}/*")


def schedule_group_arn(stack: cdk.Stack) -> str:
    """arn:${Partition}:scheduler:${Region}:${Account}:schedule-group/<group> (what Scheduler names as
    aws:SourceArn when it assumes the invoke role for a schedule of the group)."""
    return stack.format_arn(service="scheduler", resource="schedule-group", resource_name=schedule_group_name(stack))


def scheduler_function_name(stack: cdk.Stack) -> str:
    """The scheduler function's name, `<stack name>-scheduler`: fixed, so the function can be given its own ARN
    (the target of the schedules it moves) without a reference to itself."""
    return _function_name(stack, SCHEDULER_FUNCTION_SUFFIX)


def account_sync_function_name(stack: cdk.Stack) -> str:
    """The account sync's name, `<stack name>-account-sync` (Wabacast-prod-account-sync): the environment's, and
    easy to find when invoking a pass by hand (docs/operations.md)."""
    return _function_name(stack, ACCOUNT_SYNC_FUNCTION_SUFFIX)


def _function_name(stack: cdk.Stack, suffix: str) -> str:
    name = f"{stack.stack_name}{suffix}"
    if len(name) > FUNCTION_NAME_MAX_LENGTH:
        raise ValueError(f"The function name {name!r} is longer than Lambda's {FUNCTION_NAME_MAX_LENGTH} characters")
    return name


def function_arn(stack: cdk.Stack, function_name: str) -> str:
    """arn:${Partition}:lambda:${Region}:${Account}:function:<name> (the unqualified function)."""
    return stack.format_arn(
        service="lambda", resource="function", resource_name=function_name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )
