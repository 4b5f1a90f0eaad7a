"""Fakes for the local stack's unit tests: functions that record their events and answer what a test tells them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from wabacast_local.http_api import HttpApi, HttpRequest, LambdaAuthorizer, Route
from wabacast_local.lambda_runtime import FunctionConfig, LocalLambdaFunction

Responder = Callable[[dict[str, Any]], Any]


class RecordingFunction:
    """A Lambda function (run through the real LocalLambdaFunction) that keeps every event it receives."""

    def __init__(self, name: str, responder: Responder) -> None:
        self.events: list[dict[str, Any]] = []
        self.responder = responder
        self.function = LocalLambdaFunction(FunctionConfig(name=name), self._handle)

    def _handle(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        return self.responder(event)

    @property
    def last_event(self) -> dict[str, Any]:
        assert self.events, "the function was not invoked"
        return self.events[-1]


def ok_json(event: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": '{"ok":true}'}


def allow_with_context(event: dict[str, Any]) -> dict[str, Any]:
    return {"isAuthorized": True, "context": {"businessId": "biz-1", "role": "business"}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class GatewayUnderTest:
    """An HttpApi wired like the cloud one (public API description, everything else behind the authorizer)."""

    def __init__(self, authorizer_ttl_seconds: float = 0.0) -> None:
        self.api = RecordingFunction("api", ok_json)
        self.authorizer_function = RecordingFunction("authorizer", allow_with_context)
        self.clock = FakeClock()
        self.authorizer = LambdaAuthorizer(
            self.authorizer_function.function, result_ttl_seconds=authorizer_ttl_seconds, clock=self.clock
        )
        self.http_api = HttpApi(
            routes=[
                Route("GET", "/api/openapi.json", self.api.function),
                Route("GET", "/api/docs", self.api.function),
                Route("ANY", "/api/{proxy+}", self.api.function, self.authorizer),
            ]
        )

    def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        authorization: str | None = "Bearer good-key",
    ) -> Any:
        raw_path, _, raw_query_string = target.partition("?")
        all_headers = [("Host", "localhost:3000"), ("User-Agent", "pytest"), *(headers or [])]
        if authorization is not None:
            all_headers.append(("Authorization", authorization))
        return self.http_api.handle(
            HttpRequest(
                method=method, raw_path=raw_path, raw_query_string=raw_query_string, headers=all_headers, body=body
            )
        )


@pytest.fixture
def gateway() -> GatewayUnderTest:
    return GatewayUnderTest()


@pytest.fixture
def caching_gateway() -> GatewayUnderTest:
    return GatewayUnderTest(authorizer_ttl_seconds=60)
