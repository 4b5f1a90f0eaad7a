"""The HTTP API Lambda authorizer as API Gateway runs it: identity source, simple responses, result cache."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("authorization", [None, ""])
def test_missing_identity_source_answers_401_without_calling_the_authorizer(gateway, authorization):
    # GIVEN a request without a usable Authorization header
    # WHEN it reaches an authorized route
    response = gateway.request("GET", "/api/whatsapp/accounts", authorization=authorization)

    # THEN API Gateway answers 401 itself
    assert response.status == 401
    assert json.loads(response.body) == {"message": "Unauthorized"}
    assert gateway.authorizer_function.events == []
    assert gateway.api.events == []


def test_denied_request_answers_403(gateway):
    # GIVEN an authorizer that says no
    gateway.authorizer_function.responder = lambda event: {"isAuthorized": False}

    # WHEN a request reaches an authorized route
    response = gateway.request("GET", "/api/whatsapp/accounts")

    # THEN API Gateway answers 403 and the API is not invoked
    assert response.status == 403
    assert json.loads(response.body) == {"message": "Forbidden"}
    assert gateway.api.events == []


@pytest.mark.parametrize(
    "result",
    [{"context": {}}, {"isAuthorized": "true"}, {"isAuthorized": True, "context": "x"}, None, "allow"],
)
def test_invalid_authorizer_response_answers_500(gateway, result):
    # GIVEN an authorizer answering something that is not a simple response
    gateway.authorizer_function.responder = lambda event: result

    # WHEN a request reaches an authorized route
    response = gateway.request("GET", "/api/whatsapp/accounts")

    # THEN API Gateway answers 500
    assert response.status == 500
    assert json.loads(response.body) == {"message": "Internal Server Error"}
    assert gateway.api.events == []


def test_failing_authorizer_answers_500(gateway):
    # GIVEN an authorizer that raises
    def explode(event):
        raise RuntimeError("table missing")

    gateway.authorizer_function.responder = explode

    # WHEN a request reaches an authorized route
    response = gateway.request("GET", "/api/whatsapp/accounts")

    # THEN API Gateway answers 500
    assert response.status == 500
    assert json.loads(response.body) == {"message": "Internal Server Error"}


def test_authorizer_event_is_a_payload_2_0_request_event(gateway):
    # GIVEN a request with a query string and a cookie
    # WHEN it reaches an authorized route
    gateway.request("DELETE", "/api/whatsapp/accounts/acc-1?force=true", headers=[("Cookie", "a=1")])

    # THEN the authorizer gets a REQUEST event with the identity source and the route
    event = gateway.authorizer_function.last_event
    assert event["version"] == "2.0"
    assert event["type"] == "REQUEST"
    assert event["routeArn"] == (
        "arn:aws:execute-api:us-east-1:123456789012:wabalocal1/$default/DELETE/api/whatsapp/accounts/acc-1"
    )
    assert event["identitySource"] == ["Bearer good-key"]
    assert event["routeKey"] == "ANY /api/{proxy+}"
    assert event["rawPath"] == "/api/whatsapp/accounts/acc-1"
    assert event["rawQueryString"] == "force=true"
    assert event["cookies"] == ["a=1"]
    assert event["headers"]["authorization"] == "Bearer good-key"
    assert event["queryStringParameters"] == {"force": "true"}
    assert event["pathParameters"] == {"proxy": "whatsapp/accounts/acc-1"}
    assert event["requestContext"]["http"]["method"] == "DELETE"
    assert "authorizer" not in event["requestContext"]
    assert "body" not in event


def test_authorizer_context_reaches_the_integration(gateway):
    # GIVEN an authorizer allowing with a context
    # WHEN a request reaches an authorized route
    response = gateway.request("GET", "/api/whatsapp/accounts")

    # THEN the API handler sees the context under requestContext.authorizer.lambda, with the same request id
    assert response.status == 200
    event = gateway.api.last_event
    assert event["requestContext"]["authorizer"] == {"lambda": {"businessId": "biz-1", "role": "business"}}
    assert event["requestContext"]["requestId"] == gateway.authorizer_function.last_event["requestContext"]["requestId"]


def test_authorizer_without_context_gives_a_null_lambda_context(gateway):
    # GIVEN an authorizer allowing without a context
    gateway.authorizer_function.responder = lambda event: {"isAuthorized": True}

    # WHEN a request reaches an authorized route
    gateway.request("GET", "/api/whatsapp/accounts")

    # THEN the authorizer entry is there, its lambda context empty
    assert gateway.api.last_event["requestContext"]["authorizer"] == {"lambda": None}


def test_without_ttl_the_authorizer_runs_on_every_request(gateway):
    # GIVEN the local default TTL of 0
    # WHEN the same key is used twice
    gateway.request("GET", "/api/a")
    gateway.request("GET", "/api/b")

    # THEN the authorizer ran twice (a revoked key stops working at once)
    assert len(gateway.authorizer_function.events) == 2


def test_cached_decision_is_reused_per_identity_until_the_ttl_expires(caching_gateway):
    gateway = caching_gateway
    # GIVEN a 60 s cache and a first request with key A
    gateway.request("GET", "/api/a", authorization="Bearer A")

    # WHEN key A is used again on another route within the TTL
    gateway.clock.now += 59
    second = gateway.request("POST", "/api/b", authorization="Bearer A")

    # THEN the cached decision (and context) is used: the cache key is the identity, not the route
    assert second.status == 200
    assert len(gateway.authorizer_function.events) == 1
    assert gateway.api.last_event["requestContext"]["authorizer"]["lambda"]["businessId"] == "biz-1"

    # WHEN another key is used
    gateway.request("GET", "/api/a", authorization="Bearer B")
    # THEN the authorizer runs for it
    assert len(gateway.authorizer_function.events) == 2

    # WHEN the TTL for key A has passed
    gateway.clock.now += 2
    gateway.request("GET", "/api/a", authorization="Bearer A")
    # THEN the authorizer runs again
    assert len(gateway.authorizer_function.events) == 3


def test_denials_are_cached_too(caching_gateway):
    gateway = caching_gateway
    # GIVEN a denied key
    gateway.authorizer_function.responder = lambda event: {"isAuthorized": False}
    assert gateway.request("GET", "/api/a").status == 403

    # WHEN the authorizer would now allow it, within the TTL
    gateway.authorizer_function.responder = lambda event: {"isAuthorized": True}

    # THEN the cached denial still answers
    assert gateway.request("GET", "/api/a").status == 403
    assert len(gateway.authorizer_function.events) == 1


def test_authorizer_failures_are_not_cached(caching_gateway):
    gateway = caching_gateway

    # GIVEN an authorizer that fails once
    def explode(event):
        raise RuntimeError("transient")

    gateway.authorizer_function.responder = explode
    assert gateway.request("GET", "/api/a").status == 500

    # WHEN it recovers
    gateway.authorizer_function.responder = lambda event: {"isAuthorized": True, "context": {}}

    # THEN the next request is authorized
    assert gateway.request("GET", "/api/a").status == 200
