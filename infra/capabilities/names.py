"""Names the functions create at run time, and the ARN patterns their permissions are scoped to.

The functions read the prefixes from their environment (`wabacast.settings.Settings.from_env`); the stack sets them
from here, so the names the code creates and the names IAM allows cannot drift apart.
"""

from __future__ import annotations

import re

import aws_cdk as cdk

# Secrets are named {SECRETS_PREFIX}/{businessId}/accounts/{accountId}.
SECRETS_PREFIX = "wabacast"
# Each WhatsApp account gets "{QUEUE_NAME_PREFIX}-{accountId}.fifo" and "{QUEUE_NAME_PREFIX}-{accountId}-dlq.fifo".
QUEUE_NAME_PREFIX = "wabacast"
DEAD_LETTER_QUEUE_SUFFIX = "-dlq.fifo"
# Powertools Metrics namespace (POWERTOOLS_METRICS_NAMESPACE) of every function.
METRICS_NAMESPACE = "wabacast"


def secrets_arn_pattern(stack: cdk.Stack) -> str:
    """arn:${Partition}:secretsmanager:${Region}:${Account}:secret:wabacast/* (every account secret)."""
    return stack.format_arn(
        service="secretsmanager",
        resource="secret",
        resource_name=f"{SECRETS_PREFIX}/*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


def account_queues_arn_pattern(stack: cdk.Stack) -> str:
    """arn:${Partition}:sqs:${Region}:${Account}:wabacast-* (every account queue and its dead-letter queue)."""
    return stack.format_arn(service="sqs", resource=f"{QUEUE_NAME_PREFIX}-*")


def account_dead_letter_queues_arn_pattern(stack: cdk.Stack) -> str:
    """arn:${Partition}:sqs:${Region}:${Account}:wabacast-*-dlq.fifo (the accounts' dead-letter queues only)."""
    return stack.format_arn(service="sqs", resource=f"{QUEUE_NAME_PREFIX}-*{DEAD_LETTER_QUEUE_SUFFIX}")


def event_source_mappings_arn_pattern(stack: cdk.Stack) -> str:
    """arn:${Partition}:lambda:${Region}:${Account}:event-source-mapping:* (mappings are created at run time)."""
    return stack.format_arn(
        service="lambda",
        resource="event-source-mapping",
        resource_name="*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


def nag_arn(service: str, resource: str) -> str:
    """How cdk-nag prints `stack.format_arn(service=..., resource=...)` in a finding id: pseudo parameters as
    <AWS::...>, e.g. nag_arn("sqs", "wabacast-*") for `account_queues_arn_pattern`."""
    return f"arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"


# EventBridge Scheduler's rules for a schedule group name, and Lambda's length limit for a function name.
SCHEDULE_GROUP_NAME_PATTERN = re.compile(r"^[0-9A-Za-z._-]{1,64}$")
FUNCTION_NAME_MAX_LENGTH = 64
SCHEDULER_FUNCTION_SUFFIX = "-scheduler"


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
    name = f"{stack.stack_name}{SCHEDULER_FUNCTION_SUFFIX}"
    if len(name) > FUNCTION_NAME_MAX_LENGTH:
        raise ValueError(f"The function name {name!r} is longer than Lambda's {FUNCTION_NAME_MAX_LENGTH} characters")
    return name


def function_arn(stack: cdk.Stack, function_name: str) -> str:
    """arn:${Partition}:lambda:${Region}:${Account}:function:<name> (the unqualified function)."""
    return stack.format_arn(
        service="lambda", resource="function", resource_name=function_name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )
