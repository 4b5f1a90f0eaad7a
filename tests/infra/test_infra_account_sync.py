"""The account sync: its function, role, schedule and alarm."""

from __future__ import annotations

import json
from typing import Any

import pytest
from infra_helpers import actions_of, actions_on, arn_pattern, as_list, get_att_arn, logical_id, of_type
from infra_helpers import statements_of_role as statements_of

from infra.capabilities.account_sync import AccountSyncSettings
from infra.stack import WabacastStack

Resources = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def sync_id(function_ids: dict[str, str]) -> str:
    return function_ids["account_sync"]


@pytest.fixture(scope="module")
def schedule_id(stack: WabacastStack) -> str:
    return str(stack.resolve(stack.account_sync.schedule.logical_id))


def _role_id(resources: Resources, function_id: str) -> str:
    role_id: str = resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role_id


def test_the_function_runs_the_account_sync_handler_alone_for_up_to_5_minutes(
    resources: Resources, sync_id: str
) -> None:
    # GIVEN / WHEN the account sync function
    properties = resources[sync_id]["Properties"]

    # THEN it runs functions/scheduler/account_sync.py, named after the environment, one pass at a time
    assert properties["Handler"] == "account_sync.lambda_handler"
    assert properties["FunctionName"] == "Wabacast-dev-account-sync"
    assert properties["Timeout"] == 300
    assert properties["ReservedConcurrentExecutions"] == 1
    # AND it finds the table, the account secrets and the account queues' names as the other functions do
    variables = properties["Environment"]["Variables"]
    assert variables["TABLE_NAME"] == {"Ref": "Table"}
    assert (variables["SECRETS_PREFIX"], variables["QUEUE_NAME_PREFIX"]) == ("wabacast-dev", "wabacast-dev")
    assert variables["POWERTOOLS_SERVICE_NAME"] == "wabacast-dev"


def test_the_role_reads_and_writes_the_table_reads_account_secrets_and_nothing_else(
    resources: Resources, sync_id: str, function_ids: dict[str, str]
) -> None:
    # GIVEN every statement of the function's role
    statements = statements_of(resources, _role_id(resources, sync_id))

    # WHEN / THEN the table statement is the shared one, on the table and its indexes only
    (table,) = actions_on(statements, "dynamodb")
    assert get_att_arn("Table") in as_list(table["Resource"])
    # AND secrets are read (never written) under the environment's prefix, as the sender reads them
    secrets = actions_on(statements, "secretsmanager")
    assert [(actions_of(s), s["Resource"]) for s in secrets] == [
        ({"secretsmanager:GetSecretValue"}, arn_pattern("secretsmanager", "secret:wabacast-dev/*"))
    ]
    # AND no queue, function, schedule or metric API: metrics are EMF log lines, provider calls plain HTTPS
    for service in ("sqs", "lambda", "scheduler", "cloudwatch", "iam"):
        assert actions_on(statements, service) == [], service


def test_the_schedule_fires_every_15_minutes_in_the_group_through_the_invoke_role(
    resources: Resources, stack: WabacastStack, sync_id: str, schedule_id: str
) -> None:
    # GIVEN / WHEN the account sync's schedule
    schedule = resources[schedule_id]
    properties = schedule["Properties"]
    target = properties["Target"]

    # THEN it is in the stack's group, every 15 minutes, and invokes the (unqualified) function with its event
    assert properties["GroupName"] == {"Ref": str(stack.resolve(stack.scheduling.group.logical_id))}
    assert properties["ScheduleExpression"] == "rate(15 minutes)"
    assert properties["State"] == "ENABLED"
    assert target["Arn"] == get_att_arn(sync_id)
    assert json.loads(target["Input"]) == {"source": "wabacast.account-sync"}
    # AND like the tick: the invoke role, a short retry, then the schedules' dead-letter queue
    assert target["RoleArn"] == get_att_arn(logical_id(stack, stack.scheduling.invoke_role))
    assert target["DeadLetterConfig"] == {"Arn": get_att_arn(logical_id(stack, stack.scheduling.dead_letter_queue))}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 300}
    # AND it is created after the permission to invoke the function
    (policy_id,) = [
        pid for pid in of_type(resources, "AWS::IAM::Policy") if pid.startswith("AccountSyncAccountSyncInvokePolicy")
    ]
    assert policy_id in schedule["DependsOn"]


def test_a_failed_pass_is_not_retried_by_lambda(resources: Resources, sync_id: str) -> None:
    # GIVEN / WHEN the function's asynchronous invocation settings
    (properties,) = [
        config["Properties"]
        for config in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if config["Properties"]["FunctionName"] == {"Ref": sync_id}
    ]

    # THEN the next pass, 15 minutes later, is the retry
    assert properties["MaximumRetryAttempts"] == 0


def test_two_failing_passes_in_a_row_raise_the_account_sync_alarm(resources: Resources, sync_id: str) -> None:
    # GIVEN / WHEN the alarm
    (alarm,) = [
        a["Properties"]
        for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == "wabacast-dev-account-sync-failed"
    ]

    # THEN it adds the accounts not synced (service-wide series) and the function's errors, per 15 minutes
    metrics = {query["Id"]: query for query in alarm["Metrics"]}
    names = {q["MetricStat"]["Metric"]["MetricName"] for q in metrics.values() if "MetricStat" in q}
    assert names == {"AccountSyncFailed", "Errors"}
    assert {q["MetricStat"]["Period"] for q in metrics.values() if "MetricStat" in q} == {900}
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"], alarm["Threshold"]) == (2, 2, 1)


def test_settings_refuse_a_timeout_as_long_as_the_interval() -> None:
    # GIVEN / WHEN a pass that could still run when the next is due
    # THEN the settings refuse it
    with pytest.raises(ValueError, match="shorter than the interval"):
        AccountSyncSettings(interval_minutes=5, timeout_seconds=300)
    assert AccountSyncSettings(interval_minutes=30, timeout_seconds=600).schedule_expression == "rate(30 minutes)"
