"""cdk-nag (AWS Solutions) and cfn-lint on the synthesized app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from cfnlint.api import ManualArgs, lint_file
from infra_helpers import Synthesized

from infra.app import build_app

# Every acknowledged finding, where it is acknowledged (the tests synthesize the default environment, dev). A new
# finding fails the synth; a new acknowledgment must be added here on purpose (with its reason in the code next to
# the construct that causes it).
ARN = "arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{resource}"
SECRETS = ARN.format(service="secretsmanager", resource="secret:wabacast-dev/*")
QUEUES = ARN.format(service="sqs", resource="wabacast-dev-*")
DEAD_LETTER_QUEUES = ARN.format(service="sqs", resource="wabacast-dev-*-dlq.fifo")
MAPPINGS = ARN.format(service="lambda", resource="event-source-mapping:*")
SCHEDULES = ARN.format(service="scheduler", resource="schedule/Wabacast-dev/*")
FUNCTIONS = (
    "Wabacast-dev/Api/ApiFunction",
    "Wabacast-dev/Api/AuthorizerFunction",
    "Wabacast-dev/Delivery/PlannerFunction",
    "Wabacast-dev/Delivery/PlanWorkerFunction",
    "Wabacast-dev/Delivery/SenderFunction",
    "Wabacast-dev/Delivery/DeadLetterFunction",
    "Wabacast-dev/Scheduling/SchedulerFunction",
    "Wabacast-dev/AccountSync/AccountSyncFunction",
)
# CDK's BucketDeployment function is a singleton at stack level, named after a fixed UUID and its memory size.
CONSOLE_DEPLOYMENT_FUNCTION = "Wabacast-dev/Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C256MiB"
BASIC_EXECUTION_POLICY = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
EXPECTED_ACKNOWLEDGMENTS = {
    ("AwsSolutions-APIG4", "Wabacast-dev/Api/HttpApi/GET--api--docs"),
    ("AwsSolutions-APIG4", "Wabacast-dev/Api/HttpApi/GET--api--openapi.json"),
    # Provider webhooks: signed by the provider instead of keyed (infra/capabilities/webhooks.py).
    ("AwsSolutions-APIG4", "Wabacast-dev/Api/HttpApi/GET--api--webhooks--meta"),
    ("AwsSolutions-APIG4", "Wabacast-dev/Api/HttpApi/POST--api--webhooks--meta"),
    ("AwsSolutions-APIG4", "Wabacast-dev/Api/HttpApi/POST--api--webhooks--twilio--{accountId}"),
    ("AwsSolutions-SMG4", "Wabacast-dev/Webhooks/WebhookSecret"),
    # Runtime: the Python 3.12 runtime of each function, and the X-Ray statement of each function role.
    *(("AwsSolutions-L1", function) for function in FUNCTIONS),
    *(("AwsSolutions-IAM5[Resource::*]", f"{function}Role") for function in FUNCTIONS),
    # Names created at run time: account secrets, account queues, their event source mappings, queue schedules.
    (f"AwsSolutions-IAM5[Resource::{SECRETS}]", "Wabacast-dev/Api/ApiFunctionRole"),
    (f"AwsSolutions-IAM5[Resource::{QUEUES}]", "Wabacast-dev/Api/ApiFunctionRole"),
    (f"AwsSolutions-IAM5[Resource::{MAPPINGS}]", "Wabacast-dev/Api/ApiFunctionRole"),
    (f"AwsSolutions-IAM5[Resource::{QUEUES}]", "Wabacast-dev/Delivery/PlanWorkerFunctionRole"),
    (f"AwsSolutions-IAM5[Resource::{QUEUES}]", "Wabacast-dev/Delivery/SenderFunctionRole"),
    (f"AwsSolutions-IAM5[Resource::{SECRETS}]", "Wabacast-dev/Delivery/SenderFunctionRole"),
    (f"AwsSolutions-IAM5[Resource::{DEAD_LETTER_QUEUES}]", "Wabacast-dev/Delivery/DeadLetterFunctionRole"),
    (f"AwsSolutions-IAM5[Resource::{SCHEDULES}]", "Wabacast-dev/Api/ApiFunctionRole"),
    (f"AwsSolutions-IAM5[Resource::{SCHEDULES}]", "Wabacast-dev/Scheduling/SchedulerFunctionRole"),
    # The sender makes the resume of a queue a provider limit paused; the account sync reads account secrets.
    (f"AwsSolutions-IAM5[Resource::{SCHEDULES}]", "Wabacast-dev/Delivery/SenderFunctionRole"),
    (f"AwsSolutions-IAM5[Resource::{SECRETS}]", "Wabacast-dev/AccountSync/AccountSyncFunctionRole"),
    # The schedules' dead-letter queue is a dead-letter queue itself.
    ("AwsSolutions-SQS3", "Wabacast-dev/Scheduling/ScheduleDeadLetterQueue"),
    # The console: its distribution, and CDK's BucketDeployment function.
    *(("AwsSolutions-" + rule, "Wabacast-dev/Console/Distribution") for rule in ("CFR1", "CFR2", "CFR4")),
    ("AwsSolutions-L1", CONSOLE_DEPLOYMENT_FUNCTION),
    (f"AwsSolutions-IAM4[Policy::{BASIC_EXECUTION_POLICY}]", f"{CONSOLE_DEPLOYMENT_FUNCTION}/ServiceRole"),
    *(
        (f"AwsSolutions-IAM5[{finding}]", f"{CONSOLE_DEPLOYMENT_FUNCTION}/ServiceRole")
        for finding in (
            *(f"Action::s3:{action}*" for action in ("GetBucket", "GetObject", "List", "Abort", "DeleteObject")),
            "Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
            "Resource::<ConsoleSiteBucket0686DAE8.Arn>/*",
            "Resource::*",
        )
    ),
}
# Regions the template is checked against (resource types and properties available there).
LINT_REGIONS = ["us-east-1", "eu-west-1"]


def test_cdk_nag_reports_no_unacknowledged_finding(synthesized: Synthesized) -> None:
    # GIVEN the app with the AwsSolutions checks plugged in (as infra/app.py builds it)
    # WHEN it was synthesized
    # THEN nothing was raised (an unacknowledged finding raises ValidationFailed) and the report is clean
    assert synthesized.error is None, str(synthesized.error)
    (report,) = synthesized.validation_report["pluginReports"]
    assert report["pluginName"] == "AwsSolutions"
    assert report["conclusion"] == "success"
    assert report["violations"] == []


def test_cdk_nag_acknowledgments_are_the_expected_ones_and_explained(synthesized: Synthesized) -> None:
    # GIVEN the findings cdk-nag reported as acknowledged
    (report,) = synthesized.validation_report["pluginReports"]
    suppressed = report["suppressedViolations"]

    # WHEN listing them with the construct they are acknowledged at
    acknowledged = {(finding["ruleName"], finding["acknowledgedAt"]) for finding in suppressed}

    # THEN they are exactly the reviewed ones, each scoped to one construct and with a real reason
    assert acknowledged == EXPECTED_ACKNOWLEDGMENTS
    assert all(len(finding["reason"]) > 40 for finding in suppressed)


def test_the_api_role_wildcard_acknowledgment_names_each_statement_it_covers(synthesized: Synthesized) -> None:
    # GIVEN the reasons of the IAM5[Resource::*] acknowledgments (one per function role: it covers every "*")
    (report,) = synthesized.validation_report["pluginReports"]
    reasons = {
        finding["acknowledgedAt"]: finding["reason"]
        for finding in report["suppressedViolations"]
        if finding["ruleName"] == "AwsSolutions-IAM5[Resource::*]"
    }

    # WHEN / THEN the API role's names the event source mapping statements besides X-Ray and their conditions
    api_reason = reasons["Wabacast-dev/Api/ApiFunctionRole"]
    for words in ("X-Ray", "lambda:CreateEventSourceMapping", "lambda:FunctionArn", "ListEventSourceMappings"):
        assert words in api_reason
    # AND every other function role's says X-Ray is its only "*" statement (test_infra_functions checks that it is)
    for role, reason in reasons.items():
        if role != "Wabacast-dev/Api/ApiFunctionRole" and role != f"{CONSOLE_DEPLOYMENT_FUNCTION}/ServiceRole":
            assert "X-Ray" in reason
            assert "No other statement of this role uses '*'" in reason


def test_cfn_lint_passes_on_the_synthesized_template(synthesized: Synthesized) -> None:
    # GIVEN the template file CDK wrote
    template_file: Path = synthesized.template_file
    assert synthesized.error is None, str(synthesized.error)

    # WHEN cfn-lint checks it
    matches = lint_file(template_file, ManualArgs(regions=LINT_REGIONS))

    # THEN there is nothing to report except W3005 on the DependsOn CDK writes itself (a function waits for its
    # role's DefaultPolicy and, redundantly in cfn-lint's eyes, for the role it already references with GetAtt)
    problems = [
        f"{match.rule.id} {match.message} at {'/'.join(map(str, match.path))}"
        for match in matches
        if not (match.rule.id == "W3005" and "DependsOn" in match.path)
    ]
    assert problems == []


def test_cdk_nag_still_fails_a_route_without_authorizer_outside_the_public_ones(
    stub_inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    # GIVEN the app, plus one more route without an authorizer (the APIG4 acknowledgments are per route)
    layer_dir, functions_dir = stub_inputs
    app, stack = build_app(layer_dir=layer_dir, functions_dir=functions_dir, outdir=tmp_path / "cdk.out")
    stack.api.http_api.add_routes(
        path="/api/leak",
        methods=[apigwv2.HttpMethod.GET],
        integration=integrations.HttpLambdaIntegration("LeakIntegration", stack.api.function),
    )

    # WHEN synthesizing it
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()

    # THEN cdk-nag names that route, and only that one
    (report,) = json.loads((tmp_path / "cdk.out" / "validation-report.json").read_text())["pluginReports"]
    assert [
        (violation["ruleName"], construct["constructPath"])
        for violation in report["violations"]
        for construct in violation["violatingConstructs"]
    ] == [("AwsSolutions-APIG4", "Wabacast-dev/Api/HttpApi/GET--api--leak/Resource")]
