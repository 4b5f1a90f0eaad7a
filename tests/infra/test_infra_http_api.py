"""The HTTP API: the authorizer guards /api/{proxy+}; the OpenAPI document and docs page are public."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template
from infra_helpers import of_type, only

from infra.app import build_app
from infra.capabilities.api import ApiSettings

Resources = dict[str, dict[str, Any]]

PROTECTED_ROUTE_KEY = "ANY /api/{proxy+}"
PUBLIC_ROUTE_KEYS = ("GET /api/openapi.json", "GET /api/docs")
WEBHOOK_ROUTE_KEYS = (
    "GET /api/webhooks/meta",
    "POST /api/webhooks/meta",
    "POST /api/webhooks/twilio/{accountId}",
)


def routes_by_key(resources: Resources) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["RouteKey"]: r["Properties"] for r in of_type(resources, "AWS::ApiGatewayV2::Route").values()
    }


def test_the_api_has_exactly_the_agreed_routes(resources: Resources) -> None:
    # GIVEN / WHEN the synthesized routes
    routes = routes_by_key(resources)

    # THEN there is no catch-all $default route or anything else that could skip the authorizer: the public
    # routes are the API description and the signed provider webhooks
    assert sorted(routes) == sorted([PROTECTED_ROUTE_KEY, *PUBLIC_ROUTE_KEYS, *WEBHOOK_ROUTE_KEYS])


def test_authorizer_is_a_simple_response_lambda_authorizer_cached_for_60_seconds(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN the authorizer function
    authorizer_function_id = function_ids["authorizer"]
    assert resources[authorizer_function_id]["Properties"]["Handler"] == "authorizer.lambda_handler"

    # WHEN looking at the API's authorizer
    _, authorizer = only(resources, "AWS::ApiGatewayV2::Authorizer")
    properties = authorizer["Properties"]

    # THEN it calls that function with the Authorization header and expects {"isAuthorized": ...} answers
    assert properties["AuthorizerType"] == "REQUEST"
    assert properties["EnableSimpleResponses"] is True
    assert properties["AuthorizerPayloadFormatVersion"] == "2.0"
    assert properties["IdentitySource"] == ["$request.header.Authorization"]
    assert properties["AuthorizerResultTtlInSeconds"] == 60
    assert {"Fn::GetAtt": [authorizer_function_id, "Arn"]} in properties["AuthorizerUri"]["Fn::Join"][1]


def test_authorizer_guards_the_proxy_route(resources: Resources) -> None:
    # GIVEN the authorizer
    authorizer_id, _ = only(resources, "AWS::ApiGatewayV2::Authorizer")

    # WHEN looking at ANY /api/{proxy+}
    route = routes_by_key(resources)[PROTECTED_ROUTE_KEY]

    # THEN every request on it goes through the authorizer first
    assert route["AuthorizationType"] == "CUSTOM"
    assert route["AuthorizerId"] == {"Ref": authorizer_id}


@pytest.mark.parametrize("route_key", PUBLIC_ROUTE_KEYS)
def test_openapi_and_docs_routes_have_no_authorizer(resources: Resources, route_key: str) -> None:
    # GIVEN / WHEN the public route
    route = routes_by_key(resources)[route_key]

    # THEN anyone can read the API description without an API key
    assert route["AuthorizationType"] == "NONE"
    assert "AuthorizerId" not in route


def test_every_route_integrates_the_api_function_with_payload_v2(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN the API function
    api_function_id = function_ids["api"]

    # WHEN following each route to its integration
    integrations = of_type(resources, "AWS::ApiGatewayV2::Integration")
    targets = {route["Target"]["Fn::Join"][1][1]["Ref"] for route in routes_by_key(resources).values()}

    # THEN they all proxy to the API function
    assert targets <= set(integrations)
    for target in targets:
        properties = integrations[target]["Properties"]
        assert properties["IntegrationType"] == "AWS_PROXY"
        assert properties["PayloadFormatVersion"] == "2.0"
        assert properties["IntegrationUri"] == {"Fn::GetAtt": [api_function_id, "Arn"]}


def test_stage_writes_json_access_logs_without_headers_and_is_throttled(resources: Resources) -> None:
    # GIVEN / WHEN the API's only stage
    _, stage = only(resources, "AWS::ApiGatewayV2::Stage")
    properties = stage["Properties"]

    # THEN it is the auto-deployed $default stage
    assert properties["StageName"] == "$default"
    assert properties["AutoDeploy"] is True
    # AND it logs one JSON line per request to a CloudWatch log group with a retention
    log_group_id = properties["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert resources[log_group_id]["Type"] == "AWS::Logs::LogGroup"
    assert resources[log_group_id]["Properties"]["RetentionInDays"] > 0
    log_format = json.loads(properties["AccessLogSettings"]["Format"])
    assert log_format["requestId"] == "$context.requestId"
    assert {"status", "routeKey", "authorizerError", "integrationError"} <= set(log_format)
    assert not any("header" in value.lower() for value in log_format.values())  # never the API key
    # AND default throttling applies to every route
    assert properties["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert properties["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0


def test_api_gateway_may_invoke_both_functions(template: Template, function_ids: dict[str, str]) -> None:
    # GIVEN the two functions
    for name in ("api", "authorizer"):
        function_id = function_ids[name]

        # WHEN / THEN a resource policy lets this API (and no other) invoke each
        template.has_resource_properties(
            "AWS::Lambda::Permission",
            {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": Match.object_like({"Fn::Join": Match.any_value()}),
            },
        )


def test_stack_outputs_api_url_and_table_name(template: Template) -> None:
    # GIVEN / WHEN the synthesized outputs
    outputs = template.find_outputs("*")

    # THEN deployers get the API's base URL and the table's name
    assert set(outputs) >= {"ApiUrl", "TableName"}
    assert outputs["TableName"]["Value"] == {"Ref": "Table"}
    api_url_parts = outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert api_url_parts[0] == "https://"
    assert api_url_parts[1]["Ref"] in of_type(template.to_json()["Resources"], "AWS::ApiGatewayV2::Api")


def test_the_authorizer_cache_ttl_comes_from_the_context(stub_inputs: tuple[Path, Path], tmp_path: Path) -> None:
    # GIVEN the app built with `-c authorizerCacheTtlSeconds=5` (the CLI passes context values as strings)
    layer_dir, functions_dir = stub_inputs
    _, stack = build_app(
        layer_dir=layer_dir,
        functions_dir=functions_dir,
        outdir=tmp_path / "cdk.out",
        context={"authorizerCacheTtlSeconds": "5"},
    )

    # WHEN looking at the authorizer
    _, authorizer = only(Template.from_stack(stack).to_json()["Resources"], "AWS::ApiGatewayV2::Authorizer")

    # THEN API Gateway caches its answers for 5 s: a revoked key is refused at most 5 s later
    assert authorizer["Properties"]["AuthorizerResultTtlInSeconds"] == 5


@pytest.mark.parametrize(("value", "expected"), [(None, 60), (0, 0), ("30", 30), (3600, 3600)])
def test_the_authorizer_cache_ttl_setting_reads_whole_seconds(value: Any, expected: int) -> None:
    # GIVEN a context with (or without) the value
    app = cdk.App(context={} if value is None else {"authorizerCacheTtlSeconds": value})

    # WHEN the settings are read
    settings = ApiSettings.from_context(app.node)

    # THEN the TTL is the value, or the 60 s default
    assert settings.authorizer_cache_ttl_seconds == expected


@pytest.mark.parametrize("value", [-1, 3601, "ten", 1.5, True, "5s"])
def test_an_authorizer_cache_ttl_that_is_not_whole_seconds_in_range_is_refused(value: Any) -> None:
    # GIVEN a context value out of API Gateway's 0..3600 s, or not whole seconds
    app = cdk.App(context={"authorizerCacheTtlSeconds": value})

    # WHEN / THEN reading the settings fails at synth time, naming the key
    with pytest.raises(ValueError, match="authorizerCacheTtlSeconds"):
        ApiSettings.from_context(app.node)
