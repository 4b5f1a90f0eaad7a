"""The HTTP request -> API Gateway HTTP API payload 2.0 event translation, and the response mapping back."""

from __future__ import annotations

import base64
import json
import re

import pytest

from wabacast_local.http_api import (
    HttpRequest,
    event_headers,
    is_text_content_type,
    query_string_parameters,
    response_from_result,
)
from wabacast_local.lambda_runtime import FunctionError


def test_event_has_the_payload_2_0_shape(gateway):
    # GIVEN a request to an authorized route
    # WHEN it goes through the gateway
    response = gateway.request("GET", "/api/whatsapp/accounts?limit=10")

    # THEN the integration gets a version 2.0 event with the proxy route and its path parameter
    assert response.status == 200
    event = gateway.api.last_event
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /api/{proxy+}"
    assert event["rawPath"] == "/api/whatsapp/accounts"
    assert event["rawQueryString"] == "limit=10"
    assert event["queryStringParameters"] == {"limit": "10"}
    assert event["pathParameters"] == {"proxy": "whatsapp/accounts"}
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    assert "cookies" not in event


def test_request_context_describes_the_request(gateway):
    # GIVEN a request from a known client
    # WHEN it goes through the gateway
    response = gateway.request(
        "POST", "/api/whatsapp/queue", body=b"{}", headers=[("Content-Type", "application/json")]
    )

    # THEN requestContext carries what API Gateway puts there, and its requestId is the response's apigw-requestid
    context = gateway.api.last_event["requestContext"]
    assert context["accountId"] == "123456789012"
    assert re.fullmatch(r"[a-z0-9]{10}", context["apiId"])
    assert context["domainName"] == "localhost:3000"
    assert context["domainPrefix"] == "localhost"
    assert context["http"] == {
        "method": "POST",
        "path": "/api/whatsapp/queue",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "pytest",
    }
    assert context["routeKey"] == "ANY /api/{proxy+}"
    assert context["stage"] == "$default"
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000", context["time"])
    assert isinstance(context["timeEpoch"], int)
    assert context["timeEpoch"] > 1_600_000_000_000
    assert ("apigw-requestid", context["requestId"]) in response.headers


def test_headers_are_lowercased_and_repeated_ones_comma_joined():
    # GIVEN a request with mixed-case and repeated headers, a cookie and a connection header
    request = HttpRequest(
        method="GET",
        raw_path="/api/x",
        headers=[
            ("X-Custom", "one"),
            ("x-custom", "two"),
            ("Accept", "application/json"),
            ("Cookie", "a=1"),
            ("Connection", "keep-alive"),
            ("Expect", "100-continue"),
            ("Host", "localhost:3000"),
        ],
    )

    # WHEN translated
    headers = event_headers(request)

    # THEN names are lowercased, values joined, cookies and hop-by-hop headers gone, proxy headers added
    assert headers["x-custom"] == "one,two"
    assert headers["accept"] == "application/json"
    assert "cookie" not in headers
    assert "connection" not in headers
    assert "expect" not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == "3000"
    assert headers["x-amzn-trace-id"].startswith("Root=1-")
    assert all(name == name.lower() for name in headers)


def test_cookies_move_to_the_cookies_list(gateway):
    # GIVEN two cookie headers, one with two cookies
    # WHEN the request goes through the gateway
    gateway.request("GET", "/api/x", headers=[("Cookie", "a=1; b=2"), ("Cookie", "c=3")])

    # THEN each cookie is one entry of `cookies`
    assert gateway.api.last_event["cookies"] == ["a=1", "b=2", "c=3"]
    assert "cookie" not in gateway.api.last_event["headers"]


@pytest.mark.parametrize(
    ("raw_query_string", "expected"),
    [
        ("", None),
        ("a=1", {"a": "1"}),
        ("a=1&a=2&b=3", {"a": "1,2", "b": "3"}),
        ("phone=%2B14155552671&name=Demo+Business", {"phone": "+14155552671", "name": "Demo Business"}),
        ("flag&empty=", {"flag": "", "empty": ""}),
    ],
)
def test_query_string_parameters_are_decoded_and_joined(raw_query_string, expected):
    # GIVEN / WHEN a raw query string is translated
    parameters = query_string_parameters(raw_query_string)

    # THEN repeated values are comma-joined, and no parameters means no field at all
    assert parameters == expected


def test_event_omits_query_parameters_when_there_are_none(gateway):
    # GIVEN a request without a query string
    # WHEN it goes through the gateway
    gateway.request("GET", "/api/x")

    # THEN the field is absent (not null, not empty), as in the cloud
    assert "queryStringParameters" not in gateway.api.last_event
    assert gateway.api.last_event["rawQueryString"] == ""


def test_json_body_is_passed_as_text(gateway):
    # GIVEN a JSON body with non-ASCII text
    body = json.dumps({"name": "Café"}, ensure_ascii=False).encode()

    # WHEN it goes through the gateway
    gateway.request("POST", "/api/x", body=body, headers=[("Content-Type", "application/json; charset=utf-8")])

    # THEN the event body is the text itself
    event = gateway.api.last_event
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == {"name": "Café"}
    assert event["headers"]["content-length"] == str(len(body))


@pytest.mark.parametrize(
    "content_type",
    [None, "application/octet-stream", "image/png", "application/x-www-form-urlencoded", "multipart/form-data; b=x"],
)
def test_non_text_bodies_are_base64_encoded(gateway, content_type):
    # GIVEN a body whose content type API Gateway does not treat as text
    body = bytes(range(256))
    headers = [] if content_type is None else [("Content-Type", content_type)]

    # WHEN it goes through the gateway
    gateway.request("POST", "/api/upload", body=body, headers=headers)

    # THEN the event carries it base64-encoded
    event = gateway.api.last_event
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


@pytest.mark.parametrize(
    ("content_type", "is_text"),
    [
        ("application/json", True),
        ("application/problem+json", True),
        ("text/plain; charset=utf-8", True),
        ("application/xml", True),
        ("APPLICATION/JSON", True),
        ("application/x-www-form-urlencoded", False),
        ("application/octet-stream", False),
        ("", False),
        (None, False),
    ],
)
def test_text_content_types(content_type, is_text):
    assert is_text_content_type(content_type) is is_text


def test_public_routes_skip_the_authorizer(gateway):
    # GIVEN no Authorization header
    # WHEN the API description is requested
    response = gateway.request("GET", "/api/openapi.json", authorization=None)

    # THEN the API handler answers with its own route key, no authorizer was involved
    assert response.status == 200
    event = gateway.api.last_event
    assert event["routeKey"] == "GET /api/openapi.json"
    assert event["requestContext"]["routeKey"] == "GET /api/openapi.json"
    assert "authorizer" not in event["requestContext"]
    assert "pathParameters" not in event
    assert gateway.authorizer_function.events == []


def test_docs_route_is_public(gateway):
    # GIVEN / WHEN the docs page is requested without credentials, with a query string
    response = gateway.request("GET", "/api/docs?format=json", authorization=None)

    # THEN the query string does not change the route
    assert response.status == 200
    assert gateway.api.last_event["routeKey"] == "GET /api/docs"


def test_other_methods_on_a_public_path_take_the_proxy_route(gateway):
    # GIVEN the public route is GET only
    # WHEN the same path is POSTed without credentials
    response = gateway.request("POST", "/api/openapi.json", authorization=None)

    # THEN the greedy authorized route is selected, and the missing identity source answers 401
    assert response.status == 401


@pytest.mark.parametrize("path", ["/", "/health", "/apix/y", "/api", "/api/"])
def test_paths_outside_the_routes_are_not_found(gateway, path):
    # GIVEN / WHEN a path no route matches is requested
    response = gateway.request("GET", path)

    # THEN API Gateway answers 404 itself
    assert response.status == 404
    assert json.loads(response.body) == {"message": "Not Found"}
    assert ("content-type", "application/json") in response.headers
    assert gateway.api.events == []
    assert gateway.authorizer_function.events == []


def test_path_parameters_are_decoded(gateway):
    # GIVEN a percent-encoded path
    # WHEN it goes through the gateway
    gateway.request("GET", "/api/whatsapp/accounts/a%20b")

    # THEN rawPath stays raw while the path parameter is decoded
    event = gateway.api.last_event
    assert event["rawPath"] == "/api/whatsapp/accounts/a%20b"
    assert event["pathParameters"] == {"proxy": "whatsapp/accounts/a b"}


def test_response_headers_cookies_and_status_are_written_back(gateway):
    # GIVEN a handler answering with headers, multi-value headers and cookies
    gateway.api.responder = lambda event: {
        "statusCode": 201,
        "headers": {"content-type": "application/json", "location": "/api/x/1", "x-flag": True},
        "multiValueHeaders": {"x-multi": ["a", "b"]},
        "cookies": ["session=1; HttpOnly", "theme=dark"],
        "body": '{"id":"1"}',
        "isBase64Encoded": False,
    }

    # WHEN a request goes through the gateway
    response = gateway.request("POST", "/api/x", body=b"{}", headers=[("Content-Type", "application/json")])

    # THEN all of it reaches the client
    assert response.status == 201
    assert response.body == b'{"id":"1"}'
    headers = list(response.headers)
    assert ("location", "/api/x/1") in headers
    assert ("x-flag", "true") in headers
    assert ("x-multi", "a") in headers
    assert ("x-multi", "b") in headers
    assert ("set-cookie", "session=1; HttpOnly") in headers
    assert ("set-cookie", "theme=dark") in headers


def test_base64_response_body_is_decoded():
    # GIVEN a binary response
    payload = bytes(range(10))

    # WHEN mapped
    response = response_from_result(
        {"statusCode": 200, "body": base64.b64encode(payload).decode(), "isBase64Encoded": True}
    )

    # THEN the client gets the bytes
    assert response.body == payload


@pytest.mark.parametrize(
    ("result", "expected_body"),
    [({"hello": "world"}, b'{"hello": "world"}'), ("plain", b"plain"), ([1, 2], b"[1, 2]")],
)
def test_result_without_status_code_is_a_200_json_body(result, expected_body):
    # GIVEN / WHEN a function returns data without statusCode
    response = response_from_result(result)

    # THEN API Gateway infers a 200 JSON response
    assert response.status == 200
    assert response.body == expected_body
    assert ("content-type", "application/json") in response.headers


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": "200", "body": ""},
        {"statusCode": 99, "body": ""},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "not base64!", "isBase64Encoded": True},
    ],
)
def test_invalid_responses_are_function_errors(result):
    with pytest.raises(FunctionError):
        response_from_result(result)


def test_handler_exception_answers_500_and_logs_the_traceback(gateway, caplog):
    # GIVEN a handler that raises
    def explode(event):
        raise RuntimeError("boom")

    gateway.api.responder = explode

    # WHEN a request reaches it
    response = gateway.request("GET", "/api/x")

    # THEN the client gets API Gateway's 500 and the traceback is in the logs
    assert response.status == 500
    assert json.loads(response.body) == {"message": "Internal Server Error"}
    assert any(record.exc_info and "boom" in str(record.exc_info[1]) for record in caplog.records)


def test_result_that_is_not_json_answers_500(gateway):
    # GIVEN a handler returning something Lambda cannot serialize
    gateway.api.responder = lambda event: {"statusCode": 200, "body": object()}

    # WHEN a request reaches it
    response = gateway.request("GET", "/api/x")

    # THEN the invocation fails like in the cloud
    assert response.status == 500
    assert json.loads(response.body) == {"message": "Internal Server Error"}
