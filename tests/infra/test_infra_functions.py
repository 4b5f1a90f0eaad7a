"""The API and authorizer functions: runtime, layer, environment, and least-privilege roles."""

from __future__ import annotations

from typing import Any

import pytest
from infra_helpers import as_list, function_by_handler, of_type, only, role_of, statements_of_role

Resources = dict[str, dict[str, Any]]

API_HANDLER = "handler.lambda_handler"
AUTHORIZER_HANDLER = "authorizer.lambda_handler"
TABLE_ARN = {"Fn::GetAtt": ["Table", "Arn"]}
TABLE_INDEX_ARNS = [{"Fn::Join": ["", [TABLE_ARN, f"/index/{name}"]]} for name in ("GSI1", "GSI2")]
SECRETS_ARN_PATTERN = {
    "Fn::Join": [
        "",
        [
            "arn:",
            {"Ref": "AWS::Partition"},
            ":secretsmanager:",
            {"Ref": "AWS::Region"},
            ":",
            {"Ref": "AWS::AccountId"},
            ":secret:wabacast/*",
        ],
    ]
}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME": "wabacast", "LOG_LEVEL": "INFO"}


def statements_for(resources: Resources, handler: str) -> list[dict[str, Any]]:
    _, function = function_by_handler(resources, handler)
    return statements_of_role(resources, role_of(function))


def actions_on(statements: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    return [s for s in statements if any(action.startswith(f"{service}:") for action in as_list(s["Action"]))]


@pytest.mark.parametrize(
    ("handler", "expected_environment"),
    [
        (API_HANDLER, {**POWERTOOLS, "TABLE_NAME": {"Ref": "Table"}, "SECRETS_PREFIX": "wabacast"}),
        (AUTHORIZER_HANDLER, {**POWERTOOLS, "TABLE_NAME": {"Ref": "Table"}}),
    ],
)
def test_function_runs_python_312_on_arm64_with_tracing_and_its_environment(
    resources: Resources, handler: str, expected_environment: dict[str, Any]
) -> None:
    # GIVEN / WHEN the function with this handler in the synthesized stack
    _, function = function_by_handler(resources, handler)
    properties = function["Properties"]

    # THEN it has the agreed runtime, architecture, tracing and environment
    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["Environment"]["Variables"] == expected_environment


def test_both_functions_share_one_code_asset_and_the_one_layer(resources: Resources) -> None:
    # GIVEN the synthesized stack
    layer_id, layer = only(resources, "AWS::Lambda::LayerVersion")

    # WHEN looking at the two functions
    functions = [function_by_handler(resources, handler)[1] for handler in (API_HANDLER, AUTHORIZER_HANDLER)]

    # THEN both use the single layer (built for the same runtime and architecture) and the same functions/api asset
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert [f["Properties"]["Layers"] for f in functions] == [[{"Ref": layer_id}]] * 2
    assert functions[0]["Properties"]["Code"] == functions[1]["Properties"]["Code"]
    assert len(of_type(resources, "AWS::Lambda::Function")) == 2


@pytest.mark.parametrize("handler", [API_HANDLER, AUTHORIZER_HANDLER])
def test_function_logs_only_to_its_own_log_group_with_a_retention(resources: Resources, handler: str) -> None:
    # GIVEN the function and its role
    _, function = function_by_handler(resources, handler)
    log_group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    role_id = role_of(function)

    # WHEN looking at the role's permissions
    log_statements = actions_on(statements_of_role(resources, role_id), "logs")

    # THEN the role may write to that one log group only, with no managed policy (no AWSLambdaBasicExecutionRole)
    assert resources[log_group_id]["Properties"]["RetentionInDays"] > 0
    assert [s["Resource"] for s in log_statements] == [{"Fn::GetAtt": [log_group_id, "Arn"]}]
    assert "ManagedPolicyArns" not in resources[role_id]["Properties"]


def test_api_function_reads_and_writes_only_the_table_and_its_indexes(resources: Resources) -> None:
    # GIVEN / WHEN the API function's permissions
    dynamodb = actions_on(statements_for(resources, API_HANDLER), "dynamodb")

    # THEN one statement grants item reads/writes, batches, queries and what transactions are authorized against
    assert len(dynamodb) == 1
    assert set(dynamodb[0]["Action"]) == {
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",  # TransactWriteItems condition checks
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    }
    # AND only on this table and its two indexes, never "*"
    assert dynamodb[0]["Resource"] == [TABLE_ARN, *TABLE_INDEX_ARNS]


def test_api_function_manages_only_secrets_under_the_wabacast_prefix(resources: Resources) -> None:
    # GIVEN / WHEN the API function's Secrets Manager permissions
    secrets = actions_on(statements_for(resources, API_HANDLER), "secretsmanager")

    # THEN it can create, update, read, describe, tag and delete secrets: arn:...:secret:wabacast/* only
    assert len(secrets) == 1
    assert set(secrets[0]["Action"]) == {
        "secretsmanager:CreateSecret",
        "secretsmanager:DeleteSecret",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:TagResource",
    }
    assert secrets[0]["Resource"] == SECRETS_ARN_PATTERN


def test_authorizer_can_only_look_up_items_in_the_table(resources: Resources) -> None:
    # GIVEN / WHEN the authorizer's permissions
    statements = statements_for(resources, AUTHORIZER_HANDLER)

    # THEN GetItem/Query on the table, and no secrets at all
    dynamodb = actions_on(statements, "dynamodb")
    assert [(sorted(as_list(s["Action"])), s["Resource"]) for s in dynamodb] == [
        (["dynamodb:GetItem", "dynamodb:Query"], TABLE_ARN)
    ]
    assert actions_on(statements, "secretsmanager") == []


@pytest.mark.parametrize("handler", [API_HANDLER, AUTHORIZER_HANDLER])
def test_only_xray_uses_a_wildcard_resource(resources: Resources, handler: str) -> None:
    # GIVEN every statement of the function's role
    statements = statements_for(resources, handler)

    # WHEN picking those with Resource "*" (what the cdk-nag IAM5[Resource::*] acknowledgment covers)
    wildcard = [s for s in statements if "*" in as_list(s["Resource"])]

    # THEN they are only the X-Ray ones, which have no resource-level permissions, and all statements allow
    assert [set(as_list(s["Action"])) for s in wildcard] == [XRAY_ACTIONS]
    assert {s["Effect"] for s in statements} == {"Allow"}
