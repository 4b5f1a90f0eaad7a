"""Starts the planner at once after a queue is started (asynchronous invoke), instead of at its next tick."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


class LambdaPlannerTrigger:
    def __init__(self, client: LambdaClient, function_name: str) -> None:
        self._client = client
        self._function_name = function_name

    def start(self, business_id: str, queue_id: str) -> None:
        self._client.invoke(
            FunctionName=self._function_name,
            InvocationType="Event",
            Payload=json.dumps({"source": "wabacast.process", "businessId": business_id, "queueId": queue_id}),
        )
