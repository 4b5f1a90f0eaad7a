"""The gateway behind a real listener on loopback, driven with httpx, with fake and Powertools handlers."""

from __future__ import annotations

import base64
import http.client
import json
import textwrap
import threading

import httpx
import pytest

from wabacast_local.http_api import HttpApi, HttpResponse, LambdaAuthorizer, Route
from wabacast_local.http_server import HttpApiServer, _GatewayRequestHandler
from wabacast_local.lambda_runtime import FunctionConfig, LocalLambdaFunction


def echo(event, context):
    """Answers with the event it got, and echoes the request body back as binary."""
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-echo": "yes"},
        "cookies": ["first=1", "second=2; Path=/"],
        "body": json.dumps(event),
    }


def allow(event, context):
    return {"isAuthorized": True, "context": {"businessId": "biz-1"}}


@pytest.fixture
def echo_server():
    api = LocalLambdaFunction(FunctionConfig(name="echo"), echo)
    authorizer = LambdaAuthorizer(LocalLambdaFunction(FunctionConfig(name="allow"), allow))
    server = HttpApiServer(
        HttpApi(routes=[Route("GET", "/api/openapi.json", api), Route("ANY", "/api/{proxy+}", api, authorizer)]),
        port=0,
    )
    server.start()
    yield server
    server.stop()


def test_listener_translates_a_real_request(echo_server):
    # GIVEN a client sending repeated headers, cookies and a query string
    with httpx.Client(base_url=echo_server.url) as client:
        # WHEN it calls an authorized route
        response = client.post(
            "/api/things?a=1&a=2",
            headers=[("Authorization", "Bearer k"), ("X-Repeat", "1"), ("X-Repeat", "2"), ("Cookie", "c=1; d=2")],
            json={"x": 1},
        )

    # THEN the handler got a faithful event and its response came back intact
    assert response.status_code == 200
    event = response.json()
    assert event["routeKey"] == "ANY /api/{proxy+}"
    assert event["headers"]["x-repeat"] == "1,2"
    assert event["cookies"] == ["c=1", "d=2"]
    assert event["queryStringParameters"] == {"a": "1,2"}
    assert json.loads(event["body"]) == {"x": 1}
    assert event["requestContext"]["authorizer"] == {"lambda": {"businessId": "biz-1"}}
    assert event["requestContext"]["domainName"].startswith("localhost:")
    assert response.headers["x-echo"] == "yes"
    assert response.headers.get_list("set-cookie") == ["first=1", "second=2; Path=/"]
    assert response.headers["apigw-requestid"] == event["requestContext"]["requestId"]


def test_listener_passes_binary_and_chunked_bodies(echo_server):
    # GIVEN a binary body sent with chunked transfer encoding
    payload = bytes(range(256)) * 10

    def chunks():
        yield payload[:1000]
        yield payload[1000:]

    with httpx.Client(base_url=echo_server.url) as client:
        # WHEN it is posted
        response = client.post(
            "/api/upload",
            headers={"Authorization": "Bearer k", "Content-Type": "application/octet-stream"},
            content=chunks(),
        )

    # THEN the handler got all of it, base64-encoded, with a content-length instead of the chunking
    event = response.json()
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload
    assert event["headers"]["content-length"] == str(len(payload))
    assert "transfer-encoding" not in event["headers"]


def test_expect_100_continue_is_answered_like_curl_expects(echo_server):
    # GIVEN a client that waits for "100 Continue" before sending its body, as curl does for larger bodies
    host, port = echo_server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    body = b'{"name": "' + b"x" * 2000 + b'"}'
    try:
        connection.putrequest("POST", "/api/things")
        for name, value in {
            "Authorization": "Bearer k",
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "Expect": "100-continue",
        }.items():
            connection.putheader(name, value)
        connection.endheaders()
        # WHEN the body follows
        connection.send(body)
        response = connection.getresponse()
        event = json.loads(response.read())
    finally:
        connection.close()

    # THEN the request reaches the function whole
    assert response.status == 200
    assert event["body"] == body.decode()


def test_gateway_errors_reach_the_client_as_json(echo_server):
    with httpx.Client(base_url=echo_server.url) as client:
        # GIVEN / WHEN requests without credentials and outside the API
        unauthorized = client.get("/api/things")
        not_found = client.get("/elsewhere")

    # THEN the gateway's own JSON errors come back
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {"message": "Unauthorized"}
    assert not_found.status_code == 404
    assert not_found.json() == {"message": "Not Found"}


def test_head_requests_get_headers_only(echo_server):
    with httpx.Client(base_url=echo_server.url) as client:
        # GIVEN / WHEN a HEAD request (a GET route does not take HEAD: it goes to the ANY route)
        response = client.head("/api/things", headers={"Authorization": "Bearer k"})

    # THEN the handler's status and length come back without a body
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


def test_listener_serves_clients_in_parallel_while_invocations_stay_serialized():
    # GIVEN a handler that blocks until released, and one that answers at once, on separate functions
    release = threading.Event()

    def slow(event, context):
        release.wait(5)
        return {"statusCode": 200, "body": "slow"}

    slow_function = LocalLambdaFunction(FunctionConfig(name="slow"), slow)
    fast_function = LocalLambdaFunction(
        FunctionConfig(name="fast"), lambda event, context: {"statusCode": 200, "body": "fast"}
    )
    server = HttpApiServer(
        HttpApi(routes=[Route("GET", "/api/slow", slow_function), Route("GET", "/api/fast", fast_function)]), port=0
    )
    server.start()
    try:
        results: dict[str, str] = {}
        slow_client = threading.Thread(
            target=lambda: results.update(slow=httpx.get(f"{server.url}/api/slow", timeout=10).text)
        )
        slow_client.start()

        # WHEN another client calls while the first is in flight
        fast = httpx.get(f"{server.url}/api/fast", timeout=10)

        # THEN it is answered without waiting for the first
        assert fast.text == "fast"
        assert "slow" not in results
        release.set()
        slow_client.join(10)
        assert results["slow"] == "slow"
    finally:
        release.set()
        server.stop()


def test_powertools_http_resolver_runs_unchanged(tmp_path):
    # GIVEN a handler file written like functions/api/handler.py: Powertools resolver, logger, cookies, validation
    code_root = tmp_path / "api"
    code_root.mkdir()
    (code_root / "handler.py").write_text(
        textwrap.dedent(
            """
            from aws_lambda_powertools import Logger
            from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
            from aws_lambda_powertools.event_handler.openapi.params import Query
            from aws_lambda_powertools.shared.cookies import Cookie
            from pydantic import BaseModel
            from typing_extensions import Annotated

            logger = Logger(service="test")
            app = APIGatewayHttpResolver(enable_validation=True)

            class NewThing(BaseModel):
                name: str

            @app.get("/api/things/<thing_id>")
            def get_thing(thing_id: str, verbose: Annotated[bool, Query()] = False):
                event = app.current_event
                return {
                    "id": thing_id,
                    "verbose": verbose,
                    "business": event.request_context.authorizer.get_lambda["businessId"],
                    "cookies": event.cookies,
                }

            @app.post("/api/things")
            def create_thing(thing: NewThing):
                return Response(
                    status_code=201,
                    content_type="application/json",
                    body={"name": thing.name},
                    cookies=[Cookie(name="seen", value="1")],
                )

            @logger.inject_lambda_context
            def lambda_handler(event, context):
                return app.resolve(event, context)
            """
        )
    )
    api = LocalLambdaFunction.from_file(FunctionConfig(name="things"), code_root / "handler.py")
    authorizer = LambdaAuthorizer(LocalLambdaFunction(FunctionConfig(name="allow"), allow))
    server = HttpApiServer(HttpApi(routes=[Route("ANY", "/api/{proxy+}", api, authorizer)]), port=0)
    server.start()
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer k"}) as client:
            # WHEN it is called through the gateway
            fetched = client.get("/api/things/t-1?verbose=true", headers={"Cookie": "a=b"})
            created = client.post("/api/things", json={"name": "thing"})
            invalid = client.post("/api/things", json={})
    finally:
        server.stop()

    # THEN routing, path and query parameters, authorizer context, cookies and validation all work
    assert fetched.status_code == 200
    assert fetched.json() == {"id": "t-1", "verbose": True, "business": "biz-1", "cookies": ["a=b"]}
    assert created.status_code == 201
    assert created.json() == {"name": "thing"}
    assert created.headers["set-cookie"].startswith("seen=1")
    assert invalid.status_code == 422


class _HungUpClient:
    """A connection's write side after the client closed it."""

    def write(self, data: bytes) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        return None


def test_a_client_that_hung_up_before_its_answer_is_not_a_server_error(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a request handler whose client closed the connection while the function ran
    handler = object.__new__(_GatewayRequestHandler)
    handler.request_version, handler.command, handler.path = "HTTP/1.1", "POST", "/api/webhooks/meta"
    handler.requestline, handler.client_address = "POST /api/webhooks/meta HTTP/1.1", ("127.0.0.1", 50000)
    handler.close_connection = False
    handler.wfile = _HungUpClient()  # type: ignore[assignment]

    # WHEN it writes the answer
    with caplog.at_level("DEBUG", logger="wabacast_local"):
        handler._write(HttpResponse(200, [("content-type", "application/json")], b"{}"))

    # THEN nothing is raised (no traceback on the stack's stderr): the connection is closed and the hang-up noted
    assert handler.close_connection is True
    assert "closed the connection before the answer" in caplog.text
