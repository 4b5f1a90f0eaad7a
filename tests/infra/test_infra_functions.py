"""Every function: runtime, layer, environment, logs; the API and authorizer roles in detail (the delivery roles
are in test_infra_delivery.py).

Functions are found by their construct (`function_ids`), not by handler: three handlers are `handler.lambda_handler`.
"""

from __future__ import annotations

from typing import Any

import pytest
from infra_helpers import actions_of, actions_on, arn_pattern, as_list, get_att_arn, of_type, statements_of_role

from infra.stack import WabacastStack

Resources = dict[str, dict[str, Any]]

FUNCTIONS = ("api", "authorizer", "planner", "plan_worker", "sender", "dead_letter", "scheduler", "account_sync")
TABLE_ARN = get_att_arn("Table")
TABLE_INDEX_ARNS = [{"Fn::Join": ["", [TABLE_ARN, f"/index/{name}"]]} for name in ("GSI1", "GSI2")]
TABLE_READ_WRITE_ACTIONS = {
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",  # TransactWriteItems condition checks
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
}
SECRETS_ARN_PATTERN = arn_pattern("secretsmanager", "secret:wabacast-dev/*")
QUEUES_ARN_PATTERN = arn_pattern("sqs", "wabacast-dev-*")
MAPPINGS_ARN_PATTERN = arn_pattern("lambda", "event-source-mapping:*")
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
POWERTOOLS = {
    "POWERTOOLS_SERVICE_NAME": "wabacast-dev",
    "POWERTOOLS_METRICS_NAMESPACE": "wabacast",
    "LOG_LEVEL": "INFO",
}


def function(resources: Resources, function_ids: dict[str, str], name: str) -> dict[str, Any]:
    return resources[function_ids[name]]


def statements_for(resources: Resources, function_ids: dict[str, str], name: str) -> list[dict[str, Any]]:
    role_ref = function(resources, function_ids, name)["Properties"]["Role"]["Fn::GetAtt"]
    return statements_of_role(resources, role_ref[0])


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_runs_python_312_on_arm64_with_tracing_the_layer_and_powertools_settings(
    resources: Resources, function_ids: dict[str, str], name: str, stack: WabacastStack
) -> None:
    # GIVEN the runtime's layer (the other one is the AWS CLI layer of CDK's console deployment function)
    layer_id = stack.resolve(stack.runtime.layer.node.default_child.logical_id)
    layer = resources[layer_id]

    # WHEN looking at the function
    properties = function(resources, function_ids, name)["Properties"]

    # THEN it has the agreed runtime, architecture and tracing, uses the layer (built for the same runtime and
    # architecture), and has the Powertools service name, metrics namespace and log level
    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["Layers"] == [{"Ref": layer_id}]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert POWERTOOLS.items() <= properties["Environment"]["Variables"].items()


def test_the_stack_has_exactly_these_eight_functions_and_cdks_console_deployment(
    resources: Resources, function_ids: dict[str, str], stack: WabacastStack
) -> None:
    # GIVEN / WHEN every function of the synthesized stack
    functions = of_type(resources, "AWS::Lambda::Function")
    others = {logical_id: f for logical_id, f in functions.items() if logical_id not in function_ids.values()}

    # THEN they are the API, authorizer, planner tick, plan worker, sender, dead-letter, scheduler and account sync
    # functions,
    # each its own resource, and CDK's BucketDeployment function, which copies the console's files at deploy time
    assert set(function_ids.values()) <= set(functions)
    assert len(set(function_ids.values())) == len(FUNCTIONS)
    ((_, deployment_function),) = others.items()
    deployment_role = stack.resolve(stack.console.files.handler_role.role_arn)
    assert deployment_function["Properties"]["Role"] == deployment_role


def test_functions_share_one_code_asset_per_functions_folder(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the code of each function
    code = {name: function(resources, function_ids, name)["Properties"]["Code"] for name in FUNCTIONS}

    # THEN functions/api serves the API and the authorizer, functions/sender the sender and the dead-letter
    # consumer, functions/planner the planner tick and the plan worker, functions/scheduler the scheduler: four
    # assets
    assert code["api"] == code["authorizer"]
    assert code["sender"] == code["dead_letter"]
    assert code["planner"] == code["plan_worker"]
    assert len({repr(c) for c in code.values()}) == 4


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_logs_only_to_its_own_log_group_with_a_retention(
    resources: Resources, function_ids: dict[str, str], name: str
) -> None:
    # GIVEN the function and its role
    properties = function(resources, function_ids, name)["Properties"]
    log_group_id = properties["LoggingConfig"]["LogGroup"]["Ref"]
    role_id = properties["Role"]["Fn::GetAtt"][0]

    # WHEN looking at the role's permissions
    log_statements = actions_on(statements_of_role(resources, role_id), "logs")

    # THEN the role may write to that one log group only, with no managed policy (no AWSLambdaBasicExecutionRole)
    assert resources[log_group_id]["Properties"]["RetentionInDays"] > 0
    assert [s["Resource"] for s in log_statements] == [get_att_arn(log_group_id)]
    assert "ManagedPolicyArns" not in resources[role_id]["Properties"]


def test_every_function_has_its_own_role(resources: Resources, function_ids: dict[str, str]) -> None:
    # GIVEN / WHEN the role of each function
    roles = [function(resources, function_ids, name)["Properties"]["Role"]["Fn::GetAtt"][0] for name in FUNCTIONS]

    # THEN no two functions share one, so each role holds exactly what its function needs
    assert len(set(roles)) == len(FUNCTIONS)


@pytest.mark.parametrize("name", ["api", "planner", "plan_worker", "sender", "dead_letter", "scheduler"])
def test_function_reads_and_writes_only_the_table_and_its_indexes(
    resources: Resources, function_ids: dict[str, str], name: str
) -> None:
    # GIVEN / WHEN the function's DynamoDB permissions
    dynamodb = actions_on(statements_for(resources, function_ids, name), "dynamodb")

    # THEN one statement grants item reads/writes, batches, queries and what transactions are authorized against
    assert len(dynamodb) == 1
    assert actions_of(dynamodb[0]) == TABLE_READ_WRITE_ACTIONS
    # AND only on this table and its two indexes, never "*" (no Scan, no table-level actions)
    assert dynamodb[0]["Resource"] == [TABLE_ARN, *TABLE_INDEX_ARNS]


def test_api_function_environment(resources: Resources, function_ids: dict[str, str]) -> None:
    # GIVEN / WHEN the API function's environment
    variables = function(resources, function_ids, "api")["Properties"]["Environment"]["Variables"]

    # THEN it finds the table and secrets, names account queues like the plan worker and sender do, maps them to the
    # sender and dead-letter functions (the sender's maximum concurrency from the provider round trip), starts
    # the planner and creates queue schedules (tests/infra/test_infra_scheduling.py checks those variables); no
    # sandbox URL unless the context sets one
    schedule_variables = {"SCHEDULE_GROUP_NAME", "SCHEDULER_TARGET_ARN", "SCHEDULER_ROLE_ARN", "SCHEDULE_DLQ_ARN"}
    assert schedule_variables <= variables.keys()
    # The stack's webhook secret (tests/infra/test_infra_webhooks.py checks it).
    schedule_variables.add("WEBHOOK_SECRET_NAME")
    assert "WEBHOOK_SECRET_NAME" in variables
    assert {name: value for name, value in variables.items() if name not in schedule_variables} == {
        **POWERTOOLS,
        "TABLE_NAME": {"Ref": "Table"},
        "SECRETS_PREFIX": "wabacast-dev",
        "QUEUE_NAME_PREFIX": "wabacast-dev",
        "SENDER_FUNCTION_ARN": get_att_arn(function_ids["sender"]),
        "DEAD_LETTER_FUNCTION_ARN": get_att_arn(function_ids["dead_letter"]),
        "PLANNER_FUNCTION_NAME": {"Ref": function_ids["planner"]},
        "SENDER_BATCH_S": "0.8",
    }


def test_authorizer_environment(resources: Resources, function_ids: dict[str, str]) -> None:
    # GIVEN / WHEN the authorizer's environment
    variables = function(resources, function_ids, "authorizer")["Properties"]["Environment"]["Variables"]

    # THEN it only needs the table
    assert variables == {**POWERTOOLS, "TABLE_NAME": {"Ref": "Table"}}


def test_api_function_manages_only_secrets_under_the_wabacast_prefix(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the API function's Secrets Manager permissions
    secrets = actions_on(statements_for(resources, function_ids, "api"), "secretsmanager")

    # THEN it can create, update, read, describe, tag and delete secrets: arn:...:secret:wabacast-dev/* only; besides,
    # it reads the stack's webhook secret (tests/infra/test_infra_webhooks.py)
    secrets = [statement for statement in secrets if statement["Resource"] == SECRETS_ARN_PATTERN]
    assert len(secrets) == 1
    assert actions_of(secrets[0]) == {
        "secretsmanager:CreateSecret",
        "secretsmanager:DeleteSecret",
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:TagResource",
    }
    assert secrets[0]["Resource"] == SECRETS_ARN_PATTERN


def test_api_function_creates_and_deletes_only_wabacast_queues(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the API function's SQS permissions
    sqs = actions_on(statements_for(resources, function_ids, "api"), "sqs")

    # THEN it provisions the per-account queues (create with tags and redrive policy, converge, delete) on
    # arn:...:sqs:<region>:<account>:wabacast-dev-* only, and cannot send or receive messages
    assert len(sqs) == 1
    assert actions_of(sqs[0]) == {
        "sqs:CreateQueue",
        "sqs:DeleteQueue",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:SetQueueAttributes",
        "sqs:TagQueue",
    }
    assert sqs[0]["Resource"] == QUEUES_ARN_PATTERN


def test_api_function_manages_event_source_mappings_only_for_the_sender_and_dead_letter_functions(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN the API function's event source mapping permissions
    statements = statements_for(resources, function_ids, "api")
    mappings = {s["Sid"]: s for s in statements if any("EventSourceMapping" in a for a in actions_of(s))}
    only_mapped_functions = {
        "ArnEquals": {
            "lambda:FunctionArn": [get_att_arn(function_ids["sender"]), get_att_arn(function_ids["dead_letter"])]
        }
    }

    # WHEN / THEN creating one (no resource type: Resource "*") requires the mapping's function to be one of the two
    create = mappings["CreateAccountQueueMappings"]
    assert actions_of(create) == {"lambda:CreateEventSourceMapping"}
    assert create["Resource"] == "*"
    assert create["Condition"] == only_mapped_functions
    # AND updating/deleting one acts on event source mappings of this account and region, of those functions only
    change = mappings["ChangeAccountQueueMappings"]
    assert actions_of(change) == {"lambda:UpdateEventSourceMapping", "lambda:DeleteEventSourceMapping"}
    assert change["Resource"] == MAPPINGS_ARN_PATTERN
    assert change["Condition"] == only_mapped_functions
    # AND reading them (no condition key exists for these) is limited to the stack's region
    read = mappings["ReadAccountQueueMappings"]
    assert actions_of(read) == {"lambda:GetEventSourceMapping", "lambda:ListEventSourceMappings"}
    assert read["Resource"] == "*"
    assert read["Condition"] == {"StringEquals": {"aws:RequestedRegion": {"Ref": "AWS::Region"}}}
    assert sorted(mappings) == ["ChangeAccountQueueMappings", "CreateAccountQueueMappings", "ReadAccountQueueMappings"]


def test_authorizer_can_only_look_up_items_in_the_table(resources: Resources, function_ids: dict[str, str]) -> None:
    # GIVEN / WHEN the authorizer's permissions
    statements = statements_for(resources, function_ids, "authorizer")

    # THEN GetItem/Query on the table, and nothing on secrets, queues or other functions
    dynamodb = actions_on(statements, "dynamodb")
    assert [(sorted(as_list(s["Action"])), s["Resource"]) for s in dynamodb] == [
        (["dynamodb:GetItem", "dynamodb:Query"], TABLE_ARN)
    ]
    for service in ("secretsmanager", "sqs", "lambda"):
        assert actions_on(statements, service) == []


@pytest.mark.parametrize(
    "name", ["authorizer", "planner", "plan_worker", "sender", "dead_letter", "scheduler", "account_sync"]
)
def test_only_xray_uses_a_wildcard_resource(resources: Resources, function_ids: dict[str, str], name: str) -> None:
    # GIVEN every statement of the function's role
    statements = statements_for(resources, function_ids, name)

    # WHEN picking those with Resource "*" (what the cdk-nag IAM5[Resource::*] acknowledgment covers)
    wildcard = [s for s in statements if "*" in as_list(s["Resource"])]

    # THEN they are only the X-Ray ones, which have no resource-level permissions, and all statements allow
    assert [actions_of(s) for s in wildcard] == [XRAY_ACTIONS]
    assert {s["Effect"] for s in statements} == {"Allow"}


def test_api_uses_a_wildcard_resource_only_for_xray_and_event_source_mappings_under_conditions(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN every statement of the API function's role
    statements = statements_for(resources, function_ids, "api")

    # WHEN picking those with Resource "*" (the API role's IAM5[Resource::*] acknowledgment names each)
    wildcard = [s for s in statements if "*" in as_list(s["Resource"])]

    # THEN besides X-Ray they are the event source mapping actions IAM cannot scope to a resource, each conditioned
    unconditioned = [actions_of(s) for s in wildcard if "Condition" not in s]
    assert unconditioned == [XRAY_ACTIONS]
    assert sorted(action for s in wildcard if "Condition" in s for action in actions_of(s)) == [
        "lambda:CreateEventSourceMapping",
        "lambda:GetEventSourceMapping",
        "lambda:ListEventSourceMappings",
    ]
    assert {s["Effect"] for s in statements} == {"Allow"}
