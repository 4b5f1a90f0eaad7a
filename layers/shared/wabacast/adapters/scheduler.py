"""The queues' schedules in EventBridge Scheduler (see wabacast.domain.schedules for what each one is).

Every schedule goes to the stack's group, targets the scheduler function through the invoke role, retries for up to
an hour and then lands in the schedules' dead-letter queue. One-time schedules are deleted by Scheduler once they
fired (ActionAfterCompletion DELETE); so is a recurrence that has an end date, after it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wabacast.domain.schedules import ScheduleAction, event_template, schedule_name

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

RETRY_ATTEMPTS = 20
RETRY_MAX_EVENT_AGE_S = 3600


@dataclass(frozen=True)
class SchedulerTarget:
    group_name: str
    function_arn: str
    role_arn: str
    dead_letter_arn: str | None = None


def at_expression(instant: datetime) -> str:
    """at() to the second, in UTC: an instant, free of the wall clock's gaps and repeats."""
    return f"at({instant.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})"


class EventBridgeSchedules:
    def __init__(self, client: EventBridgeSchedulerClient, target: SchedulerTarget) -> None:
        self._client = client
        self._target = target

    def put_once(self, business_id: str, queue_id: str, action: ScheduleAction, at: datetime) -> None:
        self._put(
            business_id,
            queue_id,
            action,
            {"ScheduleExpression": at_expression(at), "ScheduleExpressionTimezone": "UTC"},
        )

    def put_recurring(
        self,
        business_id: str,
        queue_id: str,
        *,
        aws_expression: str,
        timezone: str,
        start: datetime | None,
        end: datetime | None,
    ) -> None:
        spec: dict[str, Any] = {"ScheduleExpression": aws_expression, "ScheduleExpressionTimezone": timezone}
        if start is not None:
            spec["StartDate"] = start
        if end is not None:
            spec["EndDate"] = end
        self._put(business_id, queue_id, ScheduleAction.OCCURRENCE, spec, delete_after=end is not None)

    def delete(self, queue_id: str, action: ScheduleAction) -> None:
        # Never made, fired and deleted by Scheduler, or deleted by an earlier call: all the same here.
        with contextlib.suppress(self._client.exceptions.ResourceNotFoundException):
            self._client.delete_schedule(Name=schedule_name(queue_id, action), GroupName=self._target.group_name)

    def exists(self, queue_id: str, action: ScheduleAction) -> bool:
        try:
            self._client.get_schedule(Name=schedule_name(queue_id, action), GroupName=self._target.group_name)
        except self._client.exceptions.ResourceNotFoundException:
            return False
        return True

    def _put(
        self,
        business_id: str,
        queue_id: str,
        action: ScheduleAction,
        spec: dict[str, Any],
        *,
        delete_after: bool = True,
    ) -> None:
        target: dict[str, Any] = {
            "Arn": self._target.function_arn,
            "RoleArn": self._target.role_arn,
            "Input": event_template(action, business_id, queue_id),
            "RetryPolicy": {"MaximumRetryAttempts": RETRY_ATTEMPTS, "MaximumEventAgeInSeconds": RETRY_MAX_EVENT_AGE_S},
        }
        if self._target.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self._target.dead_letter_arn}
        request: dict[str, Any] = {
            "Name": schedule_name(queue_id, action),
            "GroupName": self._target.group_name,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": target,
            "State": "ENABLED",
            "ActionAfterCompletion": "DELETE" if delete_after else "NONE",
            "Description": f"wabacast queue {queue_id}: {action.value}",
            **spec,
        }
        try:
            self._client.create_schedule(**request)
        except self._client.exceptions.ConflictException:
            # Already there (a moved startAt, a retried request): an update replaces the whole definition.
            self._client.update_schedule(**request)
