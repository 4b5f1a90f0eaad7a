"""When a queue may send: its active hours, in its schedule's time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from wabacast.domain.models import Schedule

_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def within_active_hours(schedule: Schedule, now: datetime) -> bool:
    window = schedule.active_hours
    if window is None:
        return True
    local = now.astimezone(ZoneInfo(schedule.timezone))
    start, end, clock = window.start_time(), window.end_time(), local.time()
    if start < end:
        inside, day = start <= clock < end, local.weekday()
    else:
        # Overnight window (22:00-06:00): the part after midnight belongs to the previous day's window.
        inside = clock >= start or clock < end
        day = local.weekday() if clock >= start else (local.weekday() - 1) % 7
    if not inside:
        return False
    return window.days is None or _WEEKDAYS[day] in {d.value for d in window.days}
