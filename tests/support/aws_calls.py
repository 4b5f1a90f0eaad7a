"""Which AWS calls each function makes, as IAM actions: for checking the roles against the code (test_infra_iam_calls).

`AwsCallRecorder` patches botocore's `BaseClient._make_api_call`, the one method every client call goes through
(whatever session made the client: Powertools' parameters make their own), and charges each call to the function
whose handler is running (`wrap`). Handlers run one at a time in the flows that use it, so a call made from a
handler's own worker threads is still charged to that handler; calls outside any handler (the test playing API
Gateway or an event source mapping) are charged to nobody.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from botocore.client import BaseClient

# botocore service name -> IAM service prefix. A service missing here fails the check: decide its prefix.
IAM_PREFIX = {
    "dynamodb": "dynamodb",
    "sqs": "sqs",
    "lambda": "lambda",
    "secretsmanager": "secretsmanager",
    "scheduler": "scheduler",
    "cloudwatch": "cloudwatch",
    "events": "events",
    "iam": "iam",
}
# Operations IAM authorizes under another action's name.
RENAMED = {
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("lambda", "Invoke"): "lambda:InvokeFunction",
    ("lambda", "InvokeAsync"): "lambda:InvokeFunction",
}
# DynamoDB authorizes a transaction item by item, each as the single-item action it performs.
TRANSACT_WRITE_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def iam_actions(service: str, operation: str, params: dict[str, Any]) -> set[str]:
    """The IAM actions one call needs."""
    if service not in IAM_PREFIX:
        raise KeyError(f"no IAM prefix known for the {service!r} service: add it to IAM_PREFIX")
    if (service, operation) == ("dynamodb", "TransactWriteItems"):
        return {TRANSACT_WRITE_ITEM_ACTIONS[kind] for item in params["TransactItems"] for kind in item}
    if (service, operation) == ("dynamodb", "TransactGetItems"):
        return {"dynamodb:GetItem"}
    actions = {RENAMED.get((service, operation), f"{IAM_PREFIX[service]}:{operation}")}
    # Tags given at creation are authorized as the tagging action as well.
    if (service, operation) == ("sqs", "CreateQueue") and params.get("tags"):
        actions.add("sqs:TagQueue")
    if (service, operation) == ("secretsmanager", "CreateSecret") and params.get("Tags"):
        actions.add("secretsmanager:TagResource")
    # A schedule names the role Scheduler assumes to invoke its target: the caller must be allowed to pass it.
    if (service, operation) in (("scheduler", "CreateSchedule"), ("scheduler", "UpdateSchedule")) and params.get(
        "Target", {}
    ).get("RoleArn"):
        actions.add("iam:PassRole")
    return actions


class AwsCallRecorder:
    def __init__(self) -> None:
        self.current: str | None = None
        self.calls: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.actions: dict[str, set[str]] = defaultdict(set)
        self._lock = threading.Lock()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = BaseClient._make_api_call
        recorder = self

        def make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            function = recorder.current
            if function is not None:
                service = client.meta.service_model.service_name
                with recorder._lock:
                    recorder.calls[function].add((service, operation_name))
                    recorder.actions[function] |= iam_actions(service, operation_name, api_params)
            return original(client, operation_name, api_params)

        monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)

    def wrap(self, monkeypatch: pytest.MonkeyPatch, function: str, module: ModuleType) -> None:
        """Charge the AWS calls made while `module.lambda_handler` runs to `function`."""
        handler: Callable[..., Any] = module.lambda_handler
        recorder = self

        def charged(event: Any, context: Any) -> Any:
            previous, recorder.current = recorder.current, function
            try:
                return handler(event, context)
            finally:
                recorder.current = previous

        monkeypatch.setattr(module, "lambda_handler", charged)
