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

# Every acknowledged finding, where it is acknowledged. A new finding fails the synth; a new acknowledgment must be
# added here on purpose (with its reason in the code next to the construct that causes it).
EXPECTED_ACKNOWLEDGMENTS = {
    ("AwsSolutions-APIG4", "Wabacast/Api/HttpApi/GET--api--docs"),
    ("AwsSolutions-APIG4", "Wabacast/Api/HttpApi/GET--api--openapi.json"),
    ("AwsSolutions-IAM5[Resource::*]", "Wabacast/Api/ApiFunctionRole"),
    ("AwsSolutions-IAM5[Resource::*]", "Wabacast/Api/AuthorizerFunctionRole"),
    (
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:"
        "secret:wabacast/*]",
        "Wabacast/Api/ApiFunctionRole",
    ),
    ("AwsSolutions-L1", "Wabacast/Api/ApiFunction"),
    ("AwsSolutions-L1", "Wabacast/Api/AuthorizerFunction"),
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
    ] == [("AwsSolutions-APIG4", "Wabacast/Api/HttpApi/GET--api--leak/Resource")]
