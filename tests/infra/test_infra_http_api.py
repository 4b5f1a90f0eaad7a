"""The HTTP API: the authorizer guards /api/{proxy+}; the OpenAPI document and docs page are public."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from infra_helpers import of_type, only

Resources = dict[str, dict[str, Any]]

PROTECTED_ROUTE_KEY = "ANY /api/{proxy+}"
PUBLIC_ROUTE_KEYS = ("GET /api/openapi.json", "GET /api/docs")


def routes_by_key(resources: Resources) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["RouteKey"]: r["Properties"] for r in of_type(resources, "AWS::ApiGatewayV2::Route").values()
    }


def test_the_api_has_exactly_the_three_agreed_routes(resources: Resources) -> None:
    # GIVEN / WHEN the synthesized routes
    routes = routes_by_key(resources)

    # THEN there is no catch-all $default route or anything else that could skip the authorizer
    assert sorted(routes) == sorted([PROTECTED_ROUTE_KEY, *PUBLIC_ROUTE_KEYS])


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
