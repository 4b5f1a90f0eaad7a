"""What EventBridge Scheduler holds for a queue: its schedules' names and the event each one delivers.

A queue has up to four schedules, all in the stack's schedule group and all targeting the scheduler function:
  <queueId>-start   at(startAt), one-time: a scheduled queue starts (deleted by Scheduler after it fires);
  <queueId>-recur   cron(...) in the queue's time zone: each occurrence starts a fresh run of a recurring queue;
  <queueId>-end     at(endAt), one-time: a queue waiting for its start or its next run expires;
  <queueId>-resume  at(when a provider's limit resets), one-time: a queue the limit paused (Twilio 63038) resumes.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ScheduleAction(StrEnum):
    START = "start"
    OCCURRENCE = "occurrence"
    EXPIRE = "expire"
    RESUME = "resume"


SCHEDULE_SUFFIXES: dict[ScheduleAction, str] = {
    ScheduleAction.START: "start",
    ScheduleAction.OCCURRENCE: "recur",
    ScheduleAction.EXPIRE: "end",
    ScheduleAction.RESUME: "resume",
}
# EventBridge Scheduler fills this in with the occurrence's time (ISO 8601, UTC) when it invokes the target.
SCHEDULED_TIME_PLACEHOLDER = "<aws.scheduler.scheduled-time>"


def schedule_name(queue_id: str, action: ScheduleAction) -> str:
    return f"{queue_id}-{SCHEDULE_SUFFIXES[action]}"


class ScheduledEvent(BaseModel):
    """The scheduler function's input, as a schedule delivers it (`scheduledTime` filled in by Scheduler)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    source: str = Field(default="wabacast.schedule", pattern=r"^wabacast\.schedule$")
    action: ScheduleAction
    business_id: str = Field(alias="businessId", min_length=1, max_length=64)
    queue_id: str = Field(alias="queueId", min_length=1, max_length=64)
    scheduled_time: datetime = Field(alias="scheduledTime")


def event_template(action: ScheduleAction, business_id: str, queue_id: str) -> str:
    """The schedule's Input: the event with Scheduler's placeholder where the occurrence's time goes."""
    return json.dumps(
        {
            "source": "wabacast.schedule",
            "action": action.value,
            "businessId": business_id,
            "queueId": queue_id,
            "scheduledTime": SCHEDULED_TIME_PLACEHOLDER,
        },
        separators=(",", ":"),
    )
