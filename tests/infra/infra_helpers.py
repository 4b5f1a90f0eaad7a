"""Helpers over a synthesized template's Resources, shared by the tests/infra modules (plain functions, no fixtures).

Named infra_helpers (not helpers) because test folders are not packages here: module names must be unique.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from constructs import IConstruct

if TYPE_CHECKING:
    from infra.stack import WabacastStack


@dataclass(frozen=True)
class Synthesized:
    stack: WabacastStack
    assembly_dir: Path
    error: Exception | None  # what app.synth() raised (cdk-nag findings raise ValidationFailed), if anything

    @property
    def template_file(self) -> Path:
        return self.assembly_dir / self.stack.template_file

    @property
    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.assembly_dir / "validation-report.json").read_text())
        return report


def of_type(resources: dict[str, dict[str, Any]], resource_type: str) -> dict[str, dict[str, Any]]:
    return {logical_id: r for logical_id, r in resources.items() if r["Type"] == resource_type}


def only(resources: dict[str, dict[str, Any]], resource_type: str) -> tuple[str, dict[str, Any]]:
    found = of_type(resources, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def logical_id(stack: cdk.Stack, construct: IConstruct) -> str:
    """The logical id of an L2 construct's CloudFormation resource (its default child)."""
    resource = construct.node.default_child
    assert isinstance(resource, cdk.CfnElement), f"{construct.node.path} has no CloudFormation resource"
    return str(stack.resolve(resource.logical_id))


def statements_of_role(resources: dict[str, dict[str, Any]], role_id: str) -> list[dict[str, Any]]:
    """Every policy statement granted to a role: inline policies and attached AWS::IAM::Policy resources."""
    role = resources[role_id]["Properties"]
    statements: list[dict[str, Any]] = [
        statement for policy in role.get("Policies", []) for statement in policy["PolicyDocument"]["Statement"]
    ]
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_of(statement: dict[str, Any]) -> set[str]:
    return set(as_list(statement["Action"]))


def actions_on(statements: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    """The statements allowing at least one action of `service` (e.g. "sqs")."""
    return [s for s in statements if any(action.startswith(f"{service}:") for action in actions_of(s))]


def arn_pattern(service: str, resource: str) -> dict[str, Any]:
    """How the template spells `stack.format_arn(service=..., resource=...)`: arn:${Partition}:...:{resource}."""
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":{service}:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":{resource}",
            ],
        ]
    }


def get_att_arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}
