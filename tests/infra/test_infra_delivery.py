"""Delivery: the planner and its one-minute schedule, the sender, the dead-letter consumer, and what their roles
(and the API's, for the per-account queues it provisions at run time) may do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from infra_helpers import (
    actions_of,
    actions_on,
    arn_pattern,
    as_list,
    get_att_arn,
    logical_id,
    of_type,
    only,
    statements_of_role,
)

from infra.app import build_app
from infra.capabilities.delivery import DeliverySettings
from infra.stack import WabacastStack

Resources = dict[str, dict[str, Any]]

POWERTOOLS = {"POWERTOOLS_SERVICE_NAME": "wabacast", "POWERTOOLS_METRICS_NAMESPACE": "wabacast", "LOG_LEVEL": "INFO"}
QUEUES_ARN_PATTERN = arn_pattern("sqs", "wabacast-*")
DEAD_LETTER_QUEUES_ARN_PATTERN = arn_pattern("sqs", "wabacast-*-dlq.fifo")
SECRETS_ARN_PATTERN = arn_pattern("secretsmanager", "secret:wabacast/*")
SANDBOX_URL = "https://sandbox.example.com"
META_URL = "https://graph.example.com"


def role_statements(resources: Resources, function_id: str) -> list[dict[str, Any]]:
    return statements_of_role(resources, resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0])


def every_role_statement(resources: Resources) -> Iterator[tuple[str, dict[str, Any]]]:
    for role_id in of_type(resources, "AWS::IAM::Role"):
        for statement in statements_of_role(resources, role_id):
            yield role_id, statement


# --- the three functions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "handler", "timeout", "memory", "environment"),
    [
        (
            "planner",
            "handler.lambda_handler",
            300,
            512,
            {"QUEUE_NAME_PREFIX": "wabacast", "FEED_WINDOW_S": "60", "REQUEUE_AFTER_S": "900"},
        ),
        (
            "sender",
            "handler.lambda_handler",
            60,
            512,
            {"SECRETS_PREFIX": "wabacast", "QUEUE_NAME_PREFIX": "wabacast", "MAX_RATE_WAIT_S": "20"},
        ),
        ("dead_letter", "dead_letter.lambda_handler", 60, 256, {}),
    ],
)
def test_delivery_function_handler_timeout_memory_and_environment(
    resources: Resources,
    function_ids: dict[str, str],
    name: str,
    handler: str,
    timeout: int,
    memory: int,
    environment: dict[str, str],
) -> None:
    # GIVEN / WHEN the function in the synthesized stack
    properties = resources[function_ids[name]]["Properties"]

    # THEN it runs the agreed handler on Python 3.12 with its timeout and memory
    assert properties["Handler"] == handler
    assert properties["Runtime"] == "python3.12"
    assert properties["Timeout"] == timeout
    assert properties["MemorySize"] == memory
    # AND its environment is exactly what wabacast.settings reads for it: no provider URLs without context values
    assert properties["Environment"]["Variables"] == {**POWERTOOLS, "TABLE_NAME": {"Ref": "Table"}, **environment}


def test_planner_async_invocations_are_not_retried_as_the_next_tick_comes_within_a_minute(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the asynchronous invocation settings (ticks and the API's starts are asynchronous)
    _, config = only(resources, "AWS::Lambda::EventInvokeConfig")
    properties = config["Properties"]

    # THEN they are the planner's: a failed or stale event is dropped instead of piling up next to newer ticks
    assert properties["FunctionName"] == {"Ref": function_ids["planner"]}
    assert properties["MaximumRetryAttempts"] == 0
    assert properties["MaximumEventAgeInSeconds"] <= 300


def test_no_event_source_mapping_or_queue_per_account_is_in_the_stack(resources: Resources) -> None:
    # GIVEN / WHEN the synthesized resources
    # THEN the account queues and their mappings are left to the API at run time: the only queue is the
    # schedule's dead-letter queue
    assert of_type(resources, "AWS::Lambda::EventSourceMapping") == {}
    assert len(of_type(resources, "AWS::SQS::Queue")) == 1


# --- the schedule ------------------------------------------------------------------------------------------------


def test_schedule_ticks_the_planner_every_minute_without_a_flexible_window(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the stack's only schedule
    _, schedule = only(resources, "AWS::Scheduler::Schedule")
    properties = schedule["Properties"]
    target = properties["Target"]

    # THEN it fires every minute on the minute, enabled, in the default group
    assert properties["ScheduleExpression"] == "rate(1 minute)"
    assert properties["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert properties["State"] == "ENABLED"
    assert "GroupName" not in properties
    # AND invokes the (unqualified) planner with the tick event
    assert target["Arn"] == get_att_arn(function_ids["planner"])
    assert json.loads(target["Input"]) == {"source": "wabacast.tick"}


def test_schedule_retries_briefly_then_dead_letters_to_an_encrypted_tls_only_queue(resources: Resources) -> None:
    # GIVEN the schedule and the queue it names as dead-letter queue
    _, schedule = only(resources, "AWS::Scheduler::Schedule")
    target = schedule["Properties"]["Target"]
    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]

    # WHEN looking at the retry policy and the queue
    retry = target["RetryPolicy"]
    queue = resources[queue_id]

    # THEN an undelivered tick is retried for at most a minute (the next tick is due then), then kept 14 days
    assert retry["MaximumRetryAttempts"] >= 1
    assert retry["MaximumEventAgeInSeconds"] == 60
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    # AND the queue refuses any request not made over TLS
    (policy,) = [
        p
        for p in of_type(resources, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == get_att_arn(queue_id)


def test_schedule_role_may_only_invoke_the_planner_and_dead_letter_to_its_queue(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN the role the schedule invokes the planner with
    _, schedule = only(resources, "AWS::Scheduler::Schedule")
    target = schedule["Properties"]["Target"]
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]

    # WHEN reading its trust policy and permissions
    role = resources[role_id]["Properties"]
    statements = statements_of_role(resources, role_id)

    # THEN only EventBridge Scheduler, for schedules of this account's default group, can assume it
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert trust["Condition"]["StringEquals"]["aws:SourceArn"] == arn_pattern("scheduler", "schedule-group/default")
    # AND it may invoke the planner itself (not "<planner>:*", not another function) and send to its DLQ, no more
    assert "ManagedPolicyArns" not in role
    assert sorted((sorted(actions_of(s)), s["Resource"]) for s in statements) == sorted(
        [
            (["lambda:InvokeFunction"], get_att_arn(function_ids["planner"])),
            (["sqs:SendMessage"], get_att_arn(queue_id)),
        ]
    )
    # AND the schedule waits for that policy, so the first tick is not denied
    (policy_id,) = [
        pid for pid, p in of_type(resources, "AWS::IAM::Policy").items() if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    assert policy_id in schedule["DependsOn"]


def test_only_the_api_and_the_schedule_may_invoke_a_function_and_only_the_planner(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN every IAM statement of every role in the stack
    # WHEN picking those that allow lambda:InvokeFunction
    invoking = [
        (role_id, s) for role_id, s in every_role_statement(resources) if "lambda:InvokeFunction" in actions_of(s)
    ]

    # THEN there are two, the API's (to start the planner after "process") and the schedule's, each on the planner
    # only; API Gateway invokes the API and authorizer through resource policies, nothing invokes sender or DLQ
    # consumer (their event source mappings use the function's own role)
    assert len(invoking) == 2
    assert [s["Resource"] for _, s in invoking] == [get_att_arn(function_ids["planner"])] * 2
    assert all(actions_of(s) == {"lambda:InvokeFunction"} for _, s in invoking)
    api_role = resources[function_ids["api"]]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert api_role in {role_id for role_id, _ in invoking}
    invoked_by_resource_policy = {
        p["Properties"]["FunctionName"]["Fn::GetAtt"][0] for p in of_type(resources, "AWS::Lambda::Permission").values()
    }
    assert invoked_by_resource_policy == {function_ids["api"], function_ids["authorizer"]}


# --- IAM scoping of the delivery roles ----------------------------------------------------------------------------


def test_planner_may_only_feed_wabacast_queues(resources: Resources, function_ids: dict[str, str]) -> None:
    # GIVEN / WHEN the planner's SQS permissions
    statements = role_statements(resources, function_ids["planner"])
    sqs = actions_on(statements, "sqs")

    # THEN it can find, measure and send to the account queues (arn:...:wabacast-*), not receive or delete
    assert [(actions_of(s), s["Resource"]) for s in sqs] == [
        ({"sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"}, QUEUES_ARN_PATTERN)
    ]
    # AND it reads no secrets and calls no function
    assert actions_on(statements, "secretsmanager") == []
    assert actions_on(statements, "lambda") == []


def test_sender_consumes_wabacast_queues_and_only_reads_account_secrets(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN the sender's permissions (its role is also what the event source mappings poll the queues with)
    statements = role_statements(resources, function_ids["sender"])

    # WHEN / THEN it can receive, delete, delay and look up messages of the account queues, not send new ones
    sqs = actions_on(statements, "sqs")
    assert [(actions_of(s), s["Resource"]) for s in sqs] == [
        (
            {
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
            },
            QUEUES_ARN_PATTERN,
        )
    ]
    # AND it can read (only read) the account credentials under wabacast/
    secrets = actions_on(statements, "secretsmanager")
    assert [(actions_of(s), s["Resource"]) for s in secrets] == [
        ({"secretsmanager:GetSecretValue"}, SECRETS_ARN_PATTERN)
    ]
    assert actions_on(statements, "lambda") == []


def test_dead_letter_consumer_only_consumes_the_dead_letter_queues(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the dead-letter consumer's permissions
    statements = role_statements(resources, function_ids["dead_letter"])
    sqs = actions_on(statements, "sqs")

    # THEN what its event source mappings need, on wabacast-*-dlq.fifo only (never an account's main queue)
    assert [(actions_of(s), s["Resource"]) for s in sqs] == [
        ({"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}, DEAD_LETTER_QUEUES_ARN_PATTERN)
    ]
    assert actions_on(statements, "secretsmanager") == []
    assert actions_on(statements, "lambda") == []


def test_no_role_has_sqs_permissions_outside_the_wabacast_queues_and_the_schedule_dlq(resources: Resources) -> None:
    # GIVEN the schedule's dead-letter queue
    queue_id, _ = only(resources, "AWS::SQS::Queue")
    allowed = [QUEUES_ARN_PATTERN, DEAD_LETTER_QUEUES_ARN_PATTERN, get_att_arn(queue_id)]

    # WHEN collecting the resources of every SQS statement of every role
    resources_used = [
        r for _, s in every_role_statement(resources) for r in as_list(s["Resource"]) if actions_on([s], "sqs")
    ]

    # THEN each is one of the patterns or that queue, never "*"
    assert resources_used
    assert all(r in allowed for r in resources_used), resources_used


# --- outputs and context --------------------------------------------------------------------------------------


def test_stack_outputs_the_delivery_function_names_and_the_schedule_dead_letter_queue(
    template: Template, function_ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the synthesized outputs
    outputs = template.find_outputs("*")
    queue_id, _ = only(template.to_json()["Resources"], "AWS::SQS::Queue")

    # THEN operators can find each delivery function (e.g. for its logs) and the undelivered ticks
    assert outputs["PlannerFunctionName"]["Value"] == {"Ref": function_ids["planner"]}
    assert outputs["SenderFunctionName"]["Value"] == {"Ref": function_ids["sender"]}
    assert outputs["DeadLetterFunctionName"]["Value"] == {"Ref": function_ids["dead_letter"]}
    assert outputs["PlannerScheduleDeadLetterQueueUrl"]["Value"] == {"Ref": queue_id}


@pytest.fixture(scope="module")
def with_provider_urls(stub_inputs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> WabacastStack:
    """The app built with the context values `cdk deploy -c sandboxBaseUrl=... -c metaBaseUrl=...` would pass."""
    layer_dir, functions_dir = stub_inputs
    _, stack = build_app(
        layer_dir=layer_dir,
        functions_dir=functions_dir,
        outdir=tmp_path_factory.mktemp("cdk.out-context"),
        context={"sandboxBaseUrl": f"{SANDBOX_URL}/", "metaBaseUrl": META_URL},
    )
    return stack


def test_provider_urls_from_the_context_reach_the_functions_that_use_them(with_provider_urls: WabacastStack) -> None:
    # GIVEN the stack built with sandboxBaseUrl and metaBaseUrl context values
    stack = with_provider_urls
    resources = Template.from_stack(stack).to_json()["Resources"]

    # WHEN reading the environments
    def variables(function: Any) -> dict[str, Any]:
        found: dict[str, Any] = resources[logical_id(stack, function)]["Properties"]["Environment"]["Variables"]
        return found

    # THEN the sender gets both (trailing slash dropped), the API the sandbox URL (it refuses sandbox accounts
    # without one), and the functions that call no provider get neither
    assert variables(stack.delivery.sender)["SANDBOX_BASE_URL"] == SANDBOX_URL
    assert variables(stack.delivery.sender)["META_BASE_URL"] == META_URL
    assert variables(stack.api.function)["SANDBOX_BASE_URL"] == SANDBOX_URL
    assert "META_BASE_URL" not in variables(stack.api.function)
    for function in (stack.delivery.planner, stack.delivery.dead_letter_function, stack.api.authorizer_function):
        assert not {"SANDBOX_BASE_URL", "META_BASE_URL"} & set(variables(function))


@pytest.mark.parametrize("value", ["sandbox.example.com", 42, ["https://x"]])
def test_a_provider_url_context_value_that_is_not_a_url_is_refused(value: Any) -> None:
    # GIVEN a context value that is not an http(s) URL
    app = cdk.App(context={"sandboxBaseUrl": value})

    # WHEN / THEN reading the settings fails at synth time, naming the key
    with pytest.raises(ValueError, match="sandboxBaseUrl"):
        DeliverySettings.from_context(app.node)


def test_without_context_values_no_provider_url_is_set() -> None:
    # GIVEN / WHEN the settings of an app without the context values
    settings = DeliverySettings.from_context(cdk.App().node)

    # THEN the code's own defaults apply (Meta's Graph API; sandbox accounts refused)
    assert settings.sandbox_environment == {}
    assert settings.meta_environment == {}
