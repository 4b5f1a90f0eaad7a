"""Scheduling: the stack's schedule group, the planner tick in it, the scheduler function, the role EventBridge
Scheduler invokes the targets with, the schedules' dead-letter queue, and what the API and the scheduler function may
do with the queue schedules they create at run time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from infra_helpers import actions_of, actions_on, arn_pattern, as_list, get_att_arn, logical_id, of_type, only
from infra_helpers import statements_of_role as statements_of

from infra.capabilities.names import Names, schedule_group_name, scheduler_function_name
from infra.capabilities.scheduling import SchedulingSettings
from infra.stack import WabacastStack

Resources = dict[str, dict[str, Any]]

POWERTOOLS = {
    "POWERTOOLS_SERVICE_NAME": "wabacast-dev",
    "POWERTOOLS_METRICS_NAMESPACE": "wabacast",
    "LOG_LEVEL": "INFO",
}
GROUP = "Wabacast-dev"  # the stack's name (the default environment's)
SCHEDULER_FUNCTION_NAME = "Wabacast-dev-scheduler"
SCHEDULES_ARN_PATTERN = arn_pattern("scheduler", f"schedule/{GROUP}/*")
SCHEDULE_ACTIONS = {
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
    "scheduler:DeleteSchedule",
    "scheduler:GetSchedule",
}
SCHEDULE_VARIABLES = ("SCHEDULE_GROUP_NAME", "SCHEDULER_TARGET_ARN", "SCHEDULER_ROLE_ARN", "SCHEDULE_DLQ_ARN")


@pytest.fixture(scope="module")
def group_id(stack: WabacastStack) -> str:
    return str(stack.resolve(stack.scheduling.group.logical_id))


@pytest.fixture(scope="module")
def tick_id(stack: WabacastStack) -> str:
    return str(stack.resolve(stack.scheduling.tick_schedule.logical_id))


@pytest.fixture(scope="module")
def invoke_role_id(stack: WabacastStack) -> str:
    return logical_id(stack, stack.scheduling.invoke_role)


@pytest.fixture(scope="module")
def dead_letter_queue_id(stack: WabacastStack) -> str:
    return logical_id(stack, stack.scheduling.dead_letter_queue)


def role_of(resources: Resources, function_id: str) -> str:
    role_id: str = resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role_id


def variables_of(resources: Resources, function_id: str) -> dict[str, Any]:
    variables: dict[str, Any] = resources[function_id]["Properties"]["Environment"]["Variables"]
    return variables


# --- the group ---------------------------------------------------------------------------------------------------


def test_the_stack_has_one_schedule_group_named_after_the_stack(resources: Resources, group_id: str) -> None:
    # GIVEN / WHEN the synthesized schedule groups
    found_id, group = only(resources, "AWS::Scheduler::ScheduleGroup")

    # THEN there is one, named after the stack (two stacks in one account never share one)
    assert found_id == group_id
    assert group["Properties"]["Name"] == GROUP


def test_the_group_name_comes_from_the_stack_name_and_refuses_what_scheduler_refuses() -> None:
    # GIVEN stacks with different names
    app = cdk.App()
    dev = cdk.Stack(app, "Wabacast-dev")
    too_long = cdk.Stack(app, "W" * 65)

    # WHEN / THEN each names its own group and scheduler function, and a name Scheduler would refuse stops the synth
    assert schedule_group_name(dev) == "Wabacast-dev"
    assert scheduler_function_name(dev) == "Wabacast-dev-scheduler"
    with pytest.raises(ValueError, match="schedule group"):
        schedule_group_name(too_long)
    with pytest.raises(ValueError, match="64"):
        scheduler_function_name(cdk.Stack(app, "W" * 60))


# --- the planner tick --------------------------------------------------------------------------------------------


def test_the_stack_s_schedules_are_the_tick_targeting_the_planner_and_the_account_sync(
    resources: Resources, function_ids: dict[str, str], group_id: str, tick_id: str
) -> None:
    # GIVEN / WHEN the stack's schedules (queue schedules are created at run time, not by the stack)
    schedules = of_type(resources, "AWS::Scheduler::Schedule")
    properties = schedules[tick_id]["Properties"]
    target = properties["Target"]

    # THEN they are the tick and the account sync (tests/infra/test_infra_account_sync.py), both in the group
    assert sorted(s["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0] for s in schedules.values()) == sorted(
        [function_ids["planner"], function_ids["account_sync"]]
    )
    assert {json.dumps(s["Properties"]["GroupName"]) for s in schedules.values()} == {json.dumps({"Ref": group_id})}
    # AND the tick runs every minute on the minute, enabled
    assert properties["GroupName"] == {"Ref": group_id}
    assert properties["ScheduleExpression"] == "rate(1 minute)"
    assert properties["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert properties["State"] == "ENABLED"
    # AND it invokes the (unqualified) planner with the tick event
    assert target["Arn"] == get_att_arn(function_ids["planner"])
    assert json.loads(target["Input"]) == {"source": "wabacast.tick"}


def test_the_tick_retries_briefly_then_dead_letters_to_the_schedules_queue_with_the_invoke_role(
    resources: Resources, tick_id: str, invoke_role_id: str, dead_letter_queue_id: str
) -> None:
    # GIVEN / WHEN the tick's target
    target = resources[tick_id]["Properties"]["Target"]

    # THEN an undelivered tick is retried for at most a minute (the next one is due then), then dead-lettered to
    # the schedules' queue; Scheduler invokes the planner with the invoke role
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60}
    assert target["DeadLetterConfig"] == {"Arn": get_att_arn(dead_letter_queue_id)}
    assert target["RoleArn"] == get_att_arn(invoke_role_id)


def test_the_tick_waits_for_the_invoke_role_policy(resources: Resources, tick_id: str, invoke_role_id: str) -> None:
    # GIVEN the policy of the invoke role (a separate resource: it names the functions, which reference the role)
    (policy_id,) = [
        pid
        for pid, p in of_type(resources, "AWS::IAM::Policy").items()
        if {"Ref": invoke_role_id} in p["Properties"]["Roles"] and pid.startswith("SchedulingScheduleInvokePolicy")
    ]

    # WHEN / THEN the tick is created after it, so the first tick is not denied
    assert policy_id in resources[tick_id]["DependsOn"]


# --- the dead-letter queue ---------------------------------------------------------------------------------------


def test_the_schedules_dead_letter_queue_is_encrypted_tls_only_and_kept_14_days(
    resources: Resources, dead_letter_queue_id: str
) -> None:
    # GIVEN the queue
    queue = resources[dead_letter_queue_id]["Properties"]

    # WHEN reading its queue policy
    (policy,) = [
        p
        for p in of_type(resources, "AWS::SQS::QueuePolicy").values()
        if {"Ref": dead_letter_queue_id} in p["Properties"]["Queues"]
    ]
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]

    # THEN it is encrypted with SQS-managed keys, keeps messages 14 days, and refuses requests without TLS
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "FifoQueue" not in queue
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == get_att_arn(dead_letter_queue_id)


# --- the invoke role ---------------------------------------------------------------------------------------------


def test_the_invoke_role_trusts_only_scheduler_for_schedules_of_the_stack_group_in_this_account(
    resources: Resources, invoke_role_id: str
) -> None:
    # GIVEN / WHEN the invoke role's trust policy
    role = resources[invoke_role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]

    # THEN only EventBridge Scheduler may assume it, for schedules of this account's stack group only
    assert trust["Effect"] == "Allow"
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"},
            "aws:SourceArn": arn_pattern("scheduler", f"schedule-group/{GROUP}"),
        }
    }
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role


def test_the_invoke_role_may_only_invoke_the_planner_and_the_scheduler_and_dead_letter_to_its_queue(
    resources: Resources, function_ids: dict[str, str], invoke_role_id: str, dead_letter_queue_id: str
) -> None:
    # GIVEN / WHEN every statement of the invoke role
    statements = statements_of(resources, invoke_role_id)

    # THEN it may invoke the three targets (unqualified: no "<function>:*", no other function) and send to the
    # dead-letter queue, nothing else
    assert sorted((sorted(actions_of(s)), json.dumps(s["Resource"])) for s in statements) == sorted(
        [
            (
                ["lambda:InvokeFunction"],
                json.dumps([get_att_arn(function_ids["planner"]), get_att_arn(function_ids["scheduler"])]),
            ),
            (["lambda:InvokeFunction"], json.dumps(get_att_arn(function_ids["account_sync"]))),
            (["sqs:SendMessage"], json.dumps(get_att_arn(dead_letter_queue_id))),
        ]
    )
    assert {s["Effect"] for s in statements} == {"Allow"}


# --- the scheduler function --------------------------------------------------------------------------------------


def test_the_scheduler_function_runs_its_handler_with_a_fixed_name(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the scheduler function
    properties = resources[function_ids["scheduler"]]["Properties"]

    # THEN it runs functions/scheduler's handler, named after the stack (its own ARN is known without a reference
    # to itself), with the time a start needs
    assert properties["Handler"] == "handler.lambda_handler"
    assert properties["FunctionName"] == SCHEDULER_FUNCTION_NAME
    assert properties["Runtime"] == "python3.12"
    assert properties["Timeout"] == 30
    assert properties["MemorySize"] == 256


def test_the_scheduler_function_environment(
    resources: Resources,
    function_ids: dict[str, str],
    group_id: str,
    invoke_role_id: str,
    dead_letter_queue_id: str,
) -> None:
    # GIVEN / WHEN the scheduler function's environment
    variables = variables_of(resources, function_ids["scheduler"])

    # THEN it finds the table like the API does, wakes the planner by name, and can create or move a schedule in
    # the group that targets itself, with the invoke role and the dead-letter queue
    assert variables == {
        **POWERTOOLS,
        "TABLE_NAME": {"Ref": "Table"},
        "SECRETS_PREFIX": "wabacast-dev",
        "QUEUE_NAME_PREFIX": "wabacast-dev",
        "PLANNER_FUNCTION_NAME": {"Ref": function_ids["planner"]},
        "SCHEDULE_GROUP_NAME": {"Ref": group_id},
        "SCHEDULER_TARGET_ARN": arn_pattern("lambda", f"function:{SCHEDULER_FUNCTION_NAME}"),
        "SCHEDULER_ROLE_ARN": get_att_arn(invoke_role_id),
        "SCHEDULE_DLQ_ARN": get_att_arn(dead_letter_queue_id),
    }


def test_the_sender_gets_the_schedule_settings_and_may_only_create_or_update_schedules_of_the_group(
    resources: Resources, function_ids: dict[str, str], group_id: str, invoke_role_id: str, dead_letter_queue_id: str
) -> None:
    # GIVEN / WHEN the sender's environment and EventBridge Scheduler permissions
    variables = variables_of(resources, function_ids["sender"])
    statements = statements_of(resources, role_of(resources, function_ids["sender"]))

    # THEN it makes a paused queue's resume (Twilio's daily limit) like the API makes its schedules
    assert {name: variables[name] for name in SCHEDULE_VARIABLES} == {
        "SCHEDULE_GROUP_NAME": {"Ref": group_id},
        "SCHEDULER_TARGET_ARN": get_att_arn(function_ids["scheduler"]),
        "SCHEDULER_ROLE_ARN": get_att_arn(invoke_role_id),
        "SCHEDULE_DLQ_ARN": get_att_arn(dead_letter_queue_id),
    }
    # AND it may create or update the group's schedules, never read or delete them, and pass only the invoke role
    scheduler = actions_on(statements, "scheduler")
    assert [(actions_of(s), s["Resource"]) for s in scheduler] == [
        ({"scheduler:CreateSchedule", "scheduler:UpdateSchedule"}, SCHEDULES_ARN_PATTERN)
    ]
    iam = actions_on(statements, "iam")
    assert [(actions_of(s), s["Resource"]) for s in iam] == [({"iam:PassRole"}, get_att_arn(invoke_role_id))]
    assert iam[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}


def test_the_api_gets_the_same_schedule_settings_with_the_scheduler_as_target(
    resources: Resources, function_ids: dict[str, str], group_id: str, invoke_role_id: str, dead_letter_queue_id: str
) -> None:
    # GIVEN / WHEN the API function's environment
    variables = variables_of(resources, function_ids["api"])

    # THEN it creates its queue schedules in the group, targeting the scheduler function, with the invoke role and
    # the dead-letter queue: the same values the scheduler function gets
    assert {name: variables[name] for name in SCHEDULE_VARIABLES} == {
        "SCHEDULE_GROUP_NAME": {"Ref": group_id},
        "SCHEDULER_TARGET_ARN": get_att_arn(function_ids["scheduler"]),
        "SCHEDULER_ROLE_ARN": get_att_arn(invoke_role_id),
        "SCHEDULE_DLQ_ARN": get_att_arn(dead_letter_queue_id),
    }
    scheduler_variables = variables_of(resources, function_ids["scheduler"])
    assert all(
        variables[name] == scheduler_variables[name] for name in SCHEDULE_VARIABLES if name != "SCHEDULER_TARGET_ARN"
    )


def test_a_scheduler_invocation_that_keeps_failing_goes_to_the_dead_letter_queue(
    resources: Resources, function_ids: dict[str, str], dead_letter_queue_id: str
) -> None:
    # GIVEN / WHEN the scheduler function's asynchronous invocation settings (Scheduler invokes it asynchronously)
    (properties,) = [
        config["Properties"]
        for config in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if config["Properties"]["FunctionName"] == {"Ref": function_ids["scheduler"]}
    ]

    # THEN a failed start is retried twice by Lambda (starting is idempotent), then recorded in the schedules'
    # dead-letter queue instead of being dropped
    assert properties["Qualifier"] == "$LATEST"
    assert properties["MaximumRetryAttempts"] == 2
    assert properties["MaximumEventAgeInSeconds"] == 6 * 3600
    assert properties["DestinationConfig"] == {"OnFailure": {"Destination": get_att_arn(dead_letter_queue_id)}}


def test_the_scheduler_function_may_start_the_planner_and_record_failed_starts_only(
    resources: Resources, function_ids: dict[str, str], dead_letter_queue_id: str
) -> None:
    # GIVEN / WHEN the scheduler function's Lambda, SQS and Secrets Manager permissions
    statements = statements_of(resources, role_of(resources, function_ids["scheduler"]))

    # THEN it may invoke the planner only, send (only send) to the schedules' dead-letter queue (its on-failure
    # destination), and reads no secret
    assert [(actions_of(s), s["Resource"]) for s in actions_on(statements, "lambda")] == [
        ({"lambda:InvokeFunction"}, get_att_arn(function_ids["planner"]))
    ]
    sqs = actions_on(statements, "sqs")
    assert [s["Resource"] for s in sqs] == [get_att_arn(dead_letter_queue_id)]
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"}.isdisjoint(actions_of(sqs[0]))
    assert "sqs:SendMessage" in actions_of(sqs[0])
    assert actions_on(statements, "secretsmanager") == []


# --- managing the queue schedules: the API and the scheduler function ------------------------------------------


@pytest.mark.parametrize("name", ["api", "scheduler"])
def test_schedule_permissions_are_scoped_to_the_stack_group(
    resources: Resources, function_ids: dict[str, str], name: str
) -> None:
    # GIVEN / WHEN the function's EventBridge Scheduler permissions
    scheduler = actions_on(statements_of(resources, role_of(resources, function_ids[name])), "scheduler")

    # THEN one statement allows creating, updating, reading and deleting schedules, on the group's schedules only
    # (no other group, no group management, no "*")
    assert [(actions_of(s), s["Resource"]) for s in scheduler] == [(SCHEDULE_ACTIONS, SCHEDULES_ARN_PATTERN)]
    assert "Condition" not in scheduler[0]


@pytest.mark.parametrize("name", ["api", "scheduler"])
def test_pass_role_only_for_the_invoke_role_and_only_to_scheduler(
    resources: Resources, function_ids: dict[str, str], invoke_role_id: str, name: str
) -> None:
    # GIVEN / WHEN the function's IAM permissions
    iam = actions_on(statements_of(resources, role_of(resources, function_ids[name])), "iam")

    # THEN it may pass the invoke role, and no other role, to EventBridge Scheduler, and to no other service
    assert [(actions_of(s), s["Resource"]) for s in iam] == [({"iam:PassRole"}, get_att_arn(invoke_role_id))]
    assert iam[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}


def test_no_other_role_manages_schedules_or_passes_a_role(resources: Resources, function_ids: dict[str, str]) -> None:
    # GIVEN every role of the stack
    managing = {role_of(resources, function_ids[name]) for name in ("api", "scheduler", "sender")}

    # WHEN collecting the roles with a scheduler or iam action
    found = {
        role_id
        for role_id in of_type(resources, "AWS::IAM::Role")
        for statement in statements_of(resources, role_id)
        if any(action.split(":")[0] in {"scheduler", "iam"} for action in as_list(statement["Action"]))
    }

    # THEN they are the API's, the scheduler function's and the sender's (a limit's resume), nothing else (the invoke
    # role only invokes)
    assert found == managing


# --- outputs and settings ----------------------------------------------------------------------------------------


def test_stack_outputs_the_group_the_scheduler_function_and_the_dead_letter_queue(
    template: Template, function_ids: dict[str, str], group_id: str, dead_letter_queue_id: str
) -> None:
    # GIVEN / WHEN the synthesized outputs
    outputs = template.find_outputs("*")

    # THEN operators can list the schedules (aws scheduler list-schedules --group-name ...), find the scheduler's
    # logs, and read the firings and starts that failed
    assert outputs["ScheduleGroupName"]["Value"] == {"Ref": group_id}
    assert outputs["SchedulerFunctionName"]["Value"] == {"Ref": function_ids["scheduler"]}
    assert outputs["ScheduleDeadLetterQueueUrl"]["Value"] == {"Ref": dead_letter_queue_id}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scheduler_async_retry_attempts": 3}, "scheduler_async_retry_attempts"),
        ({"scheduler_async_max_event_age_seconds": 30}, "scheduler_async_max_event_age_seconds"),
        ({"scheduler_async_max_event_age_seconds": 6 * 3600 + 1}, "scheduler_async_max_event_age_seconds"),
        ({"tick_retry_attempts": 186}, "tick_retry_attempts"),
        ({"tick_max_event_age_seconds": 59}, "tick_max_event_age_seconds"),
    ],
)
def test_scheduling_settings_that_aws_refuses_are_refused_at_synth_time(change: dict[str, Any], message: str) -> None:
    # GIVEN / WHEN settings outside Lambda's or EventBridge Scheduler's bounds
    # THEN they are refused before a deploy would fail, naming the setting
    with pytest.raises(ValueError, match=message):
        SchedulingSettings(**change)


def test_settings_reach_the_tick_and_the_scheduler_function(stub_inputs: tuple[Path, Path]) -> None:
    # GIVEN a stack with another name, built with other scheduling settings
    layer_dir, functions_dir = stub_inputs
    settings = SchedulingSettings(tick_retry_attempts=5, tick_max_event_age_seconds=120, scheduler_memory_mb=512)
    stack = WabacastStack(
        cdk.App(),
        "Other",
        layer_dir=layer_dir,
        functions_dir=functions_dir,
        names=Names("prod"),
        scheduling_settings=settings,
    )
    resources = Template.from_stack(stack).to_json()["Resources"]

    # WHEN reading the tick and the scheduler function
    tick = resources[str(stack.resolve(stack.scheduling.tick_schedule.logical_id))]
    function = resources[logical_id(stack, stack.scheduling.function)]["Properties"]

    # THEN they follow the settings, and the names follow the stack
    assert tick["Properties"]["Target"]["RetryPolicy"] == {"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 120}
    assert function["MemorySize"] == 512
    assert function["FunctionName"] == "Other-scheduler"
    assert only(resources, "AWS::Scheduler::ScheduleGroup")[1]["Properties"]["Name"] == "Other"
