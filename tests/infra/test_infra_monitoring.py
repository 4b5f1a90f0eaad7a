"""The monitoring capability: the alarm topic, every alarm with the metrics it reads, and the dashboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template
from infra_helpers import logical_id, of_type, only

from infra.app import build_app
from infra.capabilities.monitoring import ALARM_NAME_SUFFIXES, MonitoringSettings
from infra.stack import WabacastStack

SERVICE = [{"Name": "service", "Value": "wabacast-dev"}]


def _alarms(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Alarm properties by the suffix of their name (wabacast-dev-<suffix>)."""
    alarms = {}
    for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values():
        name = alarm["Properties"]["AlarmName"]
        assert name.startswith("wabacast-dev-"), name
        alarms[name.removeprefix("wabacast-dev-")] = alarm["Properties"]
    return alarms


def _queried(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The metrics of a metric-math alarm by id (MetricStat.Metric), and the expression under "expression"."""
    found = {}
    for query in alarm["Metrics"]:
        if "Expression" in query:
            found["expression"] = query
        else:
            found[query["Id"]] = query["MetricStat"]["Metric"]
    return found


@pytest.fixture(scope="module")
def alarms(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return _alarms(resources)


@pytest.fixture(scope="module")
def topic_id(resources: dict[str, dict[str, Any]]) -> str:
    topic_id, _ = only(resources, "AWS::SNS::Topic")
    return topic_id


def test_every_alarm_exists_and_notifies_the_topic_when_it_fires_and_when_it_clears(
    alarms: dict[str, dict[str, Any]], topic_id: str
) -> None:
    # GIVEN / WHEN the synthesized alarms
    # THEN each agreed alarm exists once, named for the environment, and notifies the topic both ways
    assert sorted(alarms) == sorted(ALARM_NAME_SUFFIXES.values())
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        assert alarm["OKActions"] == [{"Ref": topic_id}], name
        assert "docs/operations.md" in alarm["AlarmDescription"], name


def test_the_alarm_topic_is_encrypted_with_a_rotated_key_tls_only_and_open_to_the_alarms(
    resources: dict[str, dict[str, Any]], topic_id: str
) -> None:
    # GIVEN the topic, its key and its policy
    topic = resources[topic_id]["Properties"]
    key_id, key = only(resources, "AWS::KMS::Key")
    _, policy = only(resources, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]

    # WHEN / THEN it is named for the environment and encrypted with a customer managed key CloudWatch may use
    assert topic["TopicName"] == "wabacast-dev-alarms"
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    key_statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} for s in key_statements)
    # AND plain HTTP is denied, CloudWatch alarms of this environment may publish
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    (publish,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert (publish["Effect"], publish["Action"]) == ("Allow", "sns:Publish")
    source_arn = json.dumps(publish["Condition"]["ArnLike"]["aws:SourceArn"])
    assert ":alarm:wabacast-dev-*" in source_arn
    # AND without alarmEmail in the context there is no subscription
    assert of_type(resources, "AWS::SNS::Subscription") == {}


def test_account_dead_letters_alarm_counts_dead_lettered_messages_and_consumer_errors(
    alarms: dict[str, dict[str, Any]], function_ids: dict[str, str]
) -> None:
    # GIVEN the account dead-letter alarm
    alarm = alarms["account-dead-letters"]
    metrics = _queried(alarm)
    # WHEN / THEN any dead-lettered message (counted by the consumer) or any consumer error in 5 minutes fires it
    assert metrics["expression"]["Expression"] == "FILL(deadLettered, 0) + FILL(consumerErrors, 0)"
    assert metrics["deadLettered"] == {
        "MetricName": "MessagesDeadLettered",
        "Namespace": "wabacast",
        "Dimensions": SERVICE,
    }
    assert metrics["consumerErrors"]["MetricName"] == "Errors"
    assert metrics["consumerErrors"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": function_ids["dead_letter"]}}
    ]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(("suffix", "queue"), [("plan-dead-letters", "plan"), ("schedule-dead-letters", "schedule")])
def test_the_stack_dead_letter_queues_alarm_on_any_message(
    alarms: dict[str, dict[str, Any]], stack: WabacastStack, suffix: str, queue: str
) -> None:
    # GIVEN the queue's alarm
    alarm = alarms[suffix]
    dead_letter_queue = stack.delivery.plan_dead_letter_queue if queue == "plan" else stack.scheduling.dead_letter_queue
    # WHEN / THEN one visible message fires it
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [logical_id(stack, dead_letter_queue), "QueueName"]}}
    ]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Maximum",
        1,
        "GreaterThanOrEqualToThreshold",
    )


def test_sender_error_rate_alarm_fires_above_5_percent_for_5_minutes(alarms: dict[str, dict[str, Any]]) -> None:
    # GIVEN the error-rate alarm
    alarm = alarms["sender-error-rate"]
    metrics = _queried(alarm)
    # WHEN / THEN it divides failed by attempted sends, per minute, for 5 minutes in a row, above 5%
    assert metrics["expression"]["Expression"] == "100 * FILL(failed, 0) / (FILL(sent, 0) + FILL(failed, 0))"
    assert metrics["sent"] == {"MetricName": "MessagesSent", "Namespace": "wabacast", "Dimensions": SERVICE}
    assert metrics["failed"] == {"MetricName": "MessagesFailed", "Namespace": "wabacast", "Dimensions": SERVICE}
    assert all(q["MetricStat"]["Period"] == 60 for q in alarm["Metrics"] if "MetricStat" in q)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (5, "GreaterThanThreshold")
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (5, 5)


def test_lambda_throttles_alarm_covers_every_function(
    alarms: dict[str, dict[str, Any]], function_ids: dict[str, str]
) -> None:
    # GIVEN the throttles alarm
    metrics = _queried(alarms["lambda-throttles"])
    # WHEN listing the functions whose throttles it adds up
    throttled = {metric["Dimensions"][0]["Value"]["Ref"] for key, metric in metrics.items() if key != "expression"}
    # THEN they are the eight functions of the stack (the scheduler's and the account sync's included), each a
    # Throttles metric
    assert throttled == set(function_ids.values())
    assert {metric["MetricName"] for key, metric in metrics.items() if key != "expression"} == {"Throttles"}


def test_a_missing_planner_heartbeat_for_3_minutes_fires_even_without_data(alarms: dict[str, dict[str, Any]]) -> None:
    # GIVEN the heartbeat alarm
    alarm = alarms["planner-heartbeat"]
    # WHEN / THEN fewer than one tick a minute for 3 minutes, or no data at all, fires it
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == ("wabacast", "PlannerTick", SERVICE)
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 60, 1)
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 3)
    assert alarm["TreatMissingData"] == "breaching"


def test_api_5xx_alarm_reads_the_http_api_server_errors(
    alarms: dict[str, dict[str, Any]], stack: WabacastStack
) -> None:
    # GIVEN the API alarm
    alarm = alarms["api-5xx"]
    # WHEN / THEN any 5xx of this API fires it
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/ApiGateway", "5xx", "Sum")
    assert alarm["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": logical_id(stack, stack.api.http_api)}}]
    assert alarm["Threshold"] == 1


def test_an_account_turning_red_fires_the_quality_alarm(alarms: dict[str, dict[str, Any]]) -> None:
    # GIVEN / WHEN the quality alarm
    alarm = alarms["account-quality-red"]
    # THEN it reads the service-wide AccountQualityRed count
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"]) == (
        "wabacast",
        "AccountQualityRed",
        SERVICE,
    )
    assert (alarm["Statistic"], alarm["Threshold"], alarm["TreatMissingData"]) == ("Sum", 1, "notBreaching")


def _dashboard_body(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The dashboard's JSON with every CloudFormation token replaced by "<token>"."""
    _, dashboard = only(resources, "AWS::CloudWatch::Dashboard")
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body: dict[str, Any] = json.loads("".join(part if isinstance(part, str) else "<token>" for part in parts))
    return body


def _leaves(value: Any) -> list[str]:
    """Every string and number in a widget's properties, as text."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [str(value)]


def test_the_dashboard_shows_every_agreed_widget_with_its_metrics(resources: dict[str, dict[str, Any]]) -> None:
    # GIVEN the dashboard body
    body = _dashboard_body(resources)
    widgets = {widget["properties"].get("title"): " ".join(_leaves(widget["properties"])) for widget in body["widgets"]}

    # WHEN / THEN each agreed view is there, reading the metrics it names
    def shows(title: str, *needles: str) -> None:
        assert title in widgets, sorted(str(t) for t in widgets)
        for needle in needles:
            assert needle in widgets[title], (title, needle)

    shows("Sends, failures, retries per minute", "MessagesSent", "MessagesFailed", "MessagesRetried", "wabacast-dev")
    shows("Send latency (provider call), ms", "SendLatency", "p50", "p99")
    shows(
        "Backlog per account: age of the oldest pending job, s",
        """SEARCH('{wabacast,account,service} MetricName="QueueBacklog" service="wabacast-dev"', 'Maximum', 60)""",
    )
    shows(
        "Dead-letter queues: messages waiting",
        "SEARCH('{AWS/SQS,QueueName}",
        "wabacast-dev dlq",
        "MessagesDeadLettered",
    )
    shows("Planner heartbeat (ticks per minute) and jobs planned", "PlannerTick", "JobsPlanned")
    shows("Lambda errors per function", "Errors")
    shows("Lambda throttles per function", "Throttles")
    shows("Lambda concurrency per function (max)", "ConcurrentExecutions")
    shows("API 4xx / 5xx per minute", "4xx", "5xx")
    shows("API latency, ms", "Latency")
    shows("Message cost per day, USD (status webhooks priced by provider or price table)", "MessageCost", "86400")
    shows("Status webhooks: statuses per minute, request latency (ms)", "StatusesReceived", "WebhookLatency", "p99")
    shows("Alarms")


@pytest.mark.parametrize(
    "title",
    ["Lambda errors per function", "Lambda throttles per function", "Lambda concurrency per function (max)"],
)
def test_the_dashboard_s_lambda_widgets_cover_every_function(
    resources: dict[str, dict[str, Any]], function_ids: dict[str, str], title: str
) -> None:
    # GIVEN the dashboard, whose function names are references resolved at deploy time
    (widget,) = [w for w in _dashboard_body(resources)["widgets"] if w["properties"].get("title") == title]
    _, dashboard = only(resources, "AWS::CloudWatch::Dashboard")
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    referenced = {part["Ref"] for part in parts if isinstance(part, dict) and "Ref" in part}
    # WHEN / THEN the widget has one line per function, and every function (the scheduler's included) is named
    assert len(widget["properties"]["metrics"]) == len(function_ids)
    assert set(function_ids.values()) <= referenced


def test_the_dashboard_is_named_for_the_environment_and_region(resources: dict[str, dict[str, Any]]) -> None:
    # GIVEN / WHEN the dashboard (dashboards are global to an account: the region keeps two regions apart)
    _, dashboard = only(resources, "AWS::CloudWatch::Dashboard")
    # THEN its name is wabacast-<env>-<region>
    assert dashboard["Properties"]["DashboardName"] == {"Fn::Join": ["-", ["wabacast-dev", {"Ref": "AWS::Region"}]]}


@pytest.fixture(scope="module")
def with_alarm_email(stub_inputs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Template:
    layer_dir, functions_dir = stub_inputs
    _, stack = build_app(
        layer_dir=layer_dir,
        functions_dir=functions_dir,
        outdir=tmp_path_factory.mktemp("cdk.out-email"),
        context={"alarmEmail": "ops@example.com"},
    )
    return Template.from_stack(stack)


def test_alarm_email_from_the_context_subscribes_to_the_topic(with_alarm_email: Template) -> None:
    # GIVEN the app built with -c alarmEmail=ops@example.com
    # WHEN / THEN the address is subscribed by e-mail (AWS sends it a confirmation link)
    with_alarm_email.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


@pytest.mark.parametrize("value", ["ops", "ops@", "a b@example.com"])
def test_an_alarm_email_that_is_not_an_address_is_refused(value: str) -> None:
    # GIVEN / WHEN / THEN
    with pytest.raises(ValueError, match="alarmEmail"):
        MonitoringSettings(alarm_email=value)
