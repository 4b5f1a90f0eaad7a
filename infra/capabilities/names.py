"""Names the functions create at run time, and the ARN patterns their permissions are scoped to.

The functions read the prefixes from their environment (`wabacast.settings.Settings.from_env`); the stack sets them
from here, so the names the code creates and the names IAM allows cannot drift apart.
"""

from __future__ import annotations

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
