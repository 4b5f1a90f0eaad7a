"""Helpers over a synthesized template's Resources, shared by the tests/infra modules (plain functions, no fixtures).

Named infra_helpers (not helpers) because test folders are not packages here: module names must be unique.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def function_by_handler(resources: dict[str, dict[str, Any]], handler: str) -> tuple[str, dict[str, Any]]:
    found = {
        logical_id: r
        for logical_id, r in of_type(resources, "AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == handler
    }
    assert len(found) == 1, f"expected one function with handler {handler}, found {sorted(found)}"
    return next(iter(found.items()))


def role_of(function: dict[str, Any]) -> str:
    """Logical id of a function's role (`Role: {"Fn::GetAtt": [<role>, "Arn"]}`)."""
    role_ref = function["Properties"]["Role"]["Fn::GetAtt"]
    assert role_ref[1] == "Arn"
    return str(role_ref[0])


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
