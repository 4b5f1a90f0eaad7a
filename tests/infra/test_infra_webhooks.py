"""Webhooks: public signed routes into the API function, the stack's webhook secret, the senders' public URL."""

from __future__ import annotations

import json
from typing import Any

from infra_helpers import of_type, only

Resources = dict[str, dict[str, Any]]
WEBHOOK_ROUTE_KEYS = {"GET /api/webhooks/meta", "POST /api/webhooks/meta", "POST /api/webhooks/twilio/{accountId}"}


def _environment(resources: Resources, function_id: str) -> dict[str, Any]:
    variables: dict[str, Any] = resources[function_id]["Properties"]["Environment"]["Variables"]
    return variables


def test_webhook_routes_have_no_authorizer_and_reach_the_api_function(resources: Resources) -> None:
    # GIVEN the synthesized routes
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"] for r in of_type(resources, "AWS::ApiGatewayV2::Route").values()
    }
    protected = routes["ANY /api/{proxy+}"]
    # THEN each webhook route has no authorizer (providers send no key) and the API function's integration
    for key in WEBHOOK_ROUTE_KEYS:
        assert routes[key].get("AuthorizationType", "NONE") == "NONE", key
        assert "AuthorizerId" not in routes[key], key
        assert routes[key]["Target"] == protected["Target"], key


def test_the_webhook_secret_generates_a_verify_token_and_only_the_api_reads_it(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN the one secret of the stack
    secret_id, secret = only(resources, "AWS::SecretsManager::Secret")
    generator = secret["Properties"]["GenerateSecretString"]
    assert generator["GenerateStringKey"] == "metaVerifyToken"
    assert generator["SecretStringTemplate"] == "{}"
    # THEN the API function is told its name, and only the API role may read it, read-only
    # (the secret's name, which CloudFormation derives from its ARN)
    assert secret_id in json.dumps(_environment(resources, function_ids["api"])["WEBHOOK_SECRET_NAME"])
    readers = []
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Resource") == {"Ref": secret_id}:
                readers.append(policy["Properties"]["Roles"])
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert set(actions) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    assert len(readers) == 1


def test_the_sender_knows_the_public_url_for_twilio_status_callbacks(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    assert "PUBLIC_BASE_URL" in _environment(resources, function_ids["sender"])
