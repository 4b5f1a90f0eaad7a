"""cdk-nag acknowledgments: every one is scoped to the construct that causes it and says why it is acceptable."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge an AwsSolutions finding for `scope` and its children only, e.g. rule="AwsSolutions-L1"."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{PACK}::{rule}", reason=reason))


def wildcard_resource_rule(resource: str) -> str:
    """The AwsSolutions-IAM5 rule id cdk-nag prints for one wildcard resource (tokens shown as <Logical::Attr>)."""
    return f"AwsSolutions-IAM5[Resource::{resource}]"
