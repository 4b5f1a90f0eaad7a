"""Loading handlers by file path and invoking them like the Lambda service does."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from wabacast_local.lambda_runtime import (
    FunctionConfig,
    FunctionError,
    LocalLambdaFunction,
    ScalingLambdaFunction,
    load_handler,
)


def write_handler(directory, source, file_name="handler.py"):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    path.write_text(textwrap.dedent(source))
    return path


def test_handlers_with_the_same_file_name_do_not_collide(tmp_path):
    # GIVEN two functions whose code roots both have a handler.py
    first = write_handler(tmp_path / "one", "def lambda_handler(event, context):\n    return 'one'\n")
    second = write_handler(tmp_path / "two", "def lambda_handler(event, context):\n    return 'two'\n")
    path_before = list(sys.path)

    # WHEN both are loaded
    first_handler = load_handler(first, "fn-one")
    second_handler = load_handler(second, "fn-two")

    # THEN each keeps its own module, and no code root was put on sys.path
    assert first_handler({}, None) == "one"
    assert second_handler({}, None) == "two"
    assert first_handler.__module__ != second_handler.__module__
    assert sys.path == path_before


def test_handler_module_is_importable_by_name_for_pydantic_and_dataclasses(tmp_path):
    # GIVEN a handler defining a pydantic model with a forward reference (resolved through sys.modules)
    path = write_handler(
        tmp_path / "api",
        """
        from __future__ import annotations
        from pydantic import BaseModel

        class Item(BaseModel):
            child: Child | None = None

        class Child(BaseModel):
            name: str

        Item.model_rebuild()

        def lambda_handler(event, context):
            return Item.model_validate(event).model_dump()
        """,
    )

    # WHEN loaded and invoked
    handler = load_handler(path, "models")

    # THEN the model works
    assert handler({"child": {"name": "x"}}, None) == {"child": {"name": "x"}}


def test_missing_handler_function_is_an_import_error(tmp_path):
    path = write_handler(tmp_path / "api", "x = 1\n")
    with pytest.raises(ImportError, match="lambda_handler"):
        load_handler(path, "no-handler")


def test_context_has_what_powertools_reads():
    # GIVEN a function that returns its context's attributes
    def handler(event, context):
        return {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "remaining": context.get_remaining_time_in_millis(),
        }

    function = LocalLambdaFunction(FunctionConfig(name="wabacast-api", timeout_seconds=29, region="eu-west-1"), handler)

    # WHEN invoked twice
    first = function.invoke({})
    second = function.invoke({})

    # THEN the context looks like Lambda's, with a fresh request id per invocation
    assert first["function_name"] == "wabacast-api"
    assert first["function_version"] == "$LATEST"
    assert first["memory_limit_in_mb"] == 256
    assert first["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:wabacast-api"
    assert first["log_group_name"] == "/aws/lambda/wabacast-api"
    assert 0 < first["remaining"] <= 29_000
    assert first["aws_request_id"] != second["aws_request_id"]


def test_event_crosses_a_json_boundary():
    # GIVEN a handler that mutates its event
    def handler(event, context):
        event["mutated"] = True
        return event

    function = LocalLambdaFunction(FunctionConfig(name="fn"), handler)
    event = {"a": (1, 2)}

    # WHEN invoked
    result = function.invoke(event)

    # THEN it got a JSON copy (tuples become lists) and the caller's event is untouched
    assert result == {"a": [1, 2], "mutated": True}
    assert event == {"a": (1, 2)}


def test_unserializable_event_or_result_fails():
    function = LocalLambdaFunction(FunctionConfig(name="fn"), lambda event, context: {"when": object()})
    with pytest.raises(FunctionError):
        function.invoke({})


def test_handler_exception_is_a_function_error():
    def handler(event, context):
        raise ValueError("bad")

    function = LocalLambdaFunction(FunctionConfig(name="fn"), handler)
    with pytest.raises(FunctionError, match="ValueError"):
        function.invoke({})


def test_invocations_of_one_function_never_overlap():
    # GIVEN a slow handler that tracks how many invocations run at once
    running = 0
    most_at_once = 0
    counter_lock = threading.Lock()

    def handler(event, context):
        nonlocal running, most_at_once
        with counter_lock:
            running += 1
            most_at_once = max(most_at_once, running)
        time.sleep(0.02)
        with counter_lock:
            running -= 1
        return event

    function = LocalLambdaFunction(FunctionConfig(name="fn"), handler)

    # WHEN eight threads invoke it at the same time
    threads = [threading.Thread(target=function.invoke, args=({"n": n},)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN they ran one after the other, as in one execution environment
    assert most_at_once == 1


SLOW_HANDLER = """
import time
STATE = {"calls": 0}
def lambda_handler(event, context):
    STATE["calls"] += 1
    time.sleep(event["sleep"])
    return {"module": __name__, "calls": STATE["calls"]}
"""


def test_concurrent_requests_run_in_environments_of_their_own_up_to_the_limit(tmp_path):
    # GIVEN a function allowed two execution environments, whose handler takes 0.3 s
    path = write_handler(tmp_path / "api", SLOW_HANDLER)
    function = ScalingLambdaFunction(FunctionConfig(name="api", timeout_seconds=5), path, max_environments=2)

    # WHEN four requests arrive at once
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: function.invoke({"sleep": 0.3}), range(4)))

    # THEN two environments (two imports of the handler, each with its own module state) served them, two each
    assert function.environments == 2
    modules = Counter(result["module"] for result in results)
    assert len(modules) == 2
    assert sorted(modules.values()) == [2, 2]
    assert sorted(result["calls"] for result in results) == [1, 1, 2, 2]


def test_a_lone_caller_reuses_one_environment(tmp_path):
    # GIVEN a function allowed six environments
    path = write_handler(tmp_path / "api", SLOW_HANDLER)
    function = ScalingLambdaFunction(FunctionConfig(name="api", timeout_seconds=5), path, max_environments=6)
    # WHEN requests come one after another
    results = [function.invoke({"sleep": 0}) for _ in range(3)]
    # THEN one warm environment served them all
    assert function.environments == 1
    assert [result["calls"] for result in results] == [1, 2, 3]


RESOLVER_HANDLER = """
import time
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

app = APIGatewayHttpResolver()

@app.get("/items/<item>")
def get_item(item):
    time.sleep(0.2)  # another environment resolves its own event meanwhile
    return {"item": item, "path": app.current_event.path}

def lambda_handler(event, context):
    return app.resolve(event, context)
"""


def http_event(path):
    return {
        "version": "2.0",
        "routeKey": "GET /items/{item}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {},
        "requestContext": {"http": {"method": "GET", "path": path}, "stage": "$default", "requestId": path},
        "isBase64Encoded": False,
    }


def test_concurrent_environments_each_resolve_their_own_event(tmp_path):
    # GIVEN an API function of Powertools resolvers (which keep the current event on a class attribute)
    path = write_handler(tmp_path / "api", RESOLVER_HANDLER)
    function = ScalingLambdaFunction(FunctionConfig(name="api", timeout_seconds=5), path, max_environments=4)

    # WHEN four requests for different paths are resolved at the same time
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda item: function.invoke(http_event(f"/items/{item}")), "abcd"))

    # THEN each answered from its own event
    bodies = [json.loads(result["body"]) for result in results]
    assert [(body["item"], body["path"]) for body in bodies] == [(item, f"/items/{item}") for item in "abcd"]
