"""Sending windows: the local wall-clock hours (and weekdays) in which a queue may hand messages to the sender.

"Open" means the wall clock of the zone at an instant reads a time in [start, end) on an allowed day. A window whose
end is before its start crosses midnight (22:00-06:00); its part after midnight belongs to the previous day's window,
so Fri 22:00 - Sat 06:00 is Friday's window.

Daylight saving time follows from reading the wall clock:
- a start inside a spring-forward gap (02:30 in New York on 2026-03-08) opens at the first real instant after the
  gap (03:00 EDT), because that is when the wall clock first reads a time inside the window;
- a wall time repeated on a fall-back day is open during both of its occurrences;
- a fall-back that moves the wall clock back into the window opens it at the switch.

Openings and closings are computed exactly (to the microsecond) by walking stretches of constant UTC offset: inside
one stretch the wall clock is UTC plus a fixed offset, so wall-clock bounds convert to instants by subtraction.

Results are aware datetimes in the window's zone. Python orders and subtracts two datetimes of the same zone as wall
clocks (wrong across a switch), and never finds a repeated wall time equal to a datetime of another zone: convert
results to UTC before comparing or subtracting them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from wabacast.domain.models import ActiveHours

WEEKDAY_NUMBERS = {"MON": 0, "TUE": 1, "WED": 2, "THU": 3, "FRI": 4, "SAT": 5, "SUN": 6}

# Offset changes are found by sampling at this step and bisecting; no zone has changed its offset twice within it.
_OFFSET_SAMPLE_STEP = timedelta(hours=3)
# Each step of a search either returns or moves to the next offset change; a week holds a handful at most.
_MAX_SEARCH_STEPS = 64


@dataclass(frozen=True)
class SendingWindow:
    start: time  # local wall clock, inclusive
    end: time  # local wall clock, exclusive; end < start crosses midnight
    days: frozenset[int] | None = None  # date.weekday() numbers (Mon=0) of days whose window opens; None = every day

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window start and end are wall-clock times and must not carry a time zone")
        if self.start == self.end:
            raise ValueError("window start and end must differ (an empty window would never open)")
        if self.days is not None:
            if not self.days:
                raise ValueError("window days must not be empty (the window would never open)")
            if not self.days <= frozenset(range(7)):
                raise ValueError("window days must be weekday numbers 0 (Monday) to 6 (Sunday)")

    @classmethod
    def from_active_hours(cls, active_hours: ActiveHours) -> SendingWindow:
        days = None if active_hours.days is None else frozenset(WEEKDAY_NUMBERS[day.value] for day in active_hours.days)
        return cls(start=active_hours.start_time(), end=active_hours.end_time(), days=days)

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def is_open(self, at: datetime, zone: ZoneInfo) -> bool:
        return self._window_around(_wall_clock(_as_utc(at), zone)) is not None

    def next_opening(self, after: datetime, zone: ZoneInfo) -> datetime:
        """The smallest instant >= `after` at which the window is open (`after` itself when open now), in `zone`."""
        instant = _as_utc(after)
        for _ in range(_MAX_SEARCH_STEPS):
            offset = _offset(instant, zone)
            wall = _naive(instant + offset)
            if self._window_around(wall) is not None:
                return instant.astimezone(zone)
            candidate = _aware(self._next_start(wall) - offset)
            change = _next_offset_change(instant, candidate, zone)
            if change is None:
                return candidate.astimezone(zone)
            instant = change
        raise RuntimeError(f"no opening of {self} found after {after.isoformat()} in {zone.key}")

    def next_closing(self, after: datetime, zone: ZoneInfo) -> datetime:
        """The smallest instant > `after` at which the window is closed; `after` itself when it is closed now."""
        instant = _as_utc(after)
        for _ in range(_MAX_SEARCH_STEPS):
            offset = _offset(instant, zone)
            wall = _naive(instant + offset)
            around = self._window_around(wall)
            if around is None:
                return instant.astimezone(zone)
            candidate = _aware(around[1] - offset)
            change = _next_offset_change(instant, candidate, zone)
            instant = candidate if change is None else change
        raise RuntimeError(f"no closing of {self} found after {after.isoformat()} in {zone.key}")

    def _allows(self, day: date) -> bool:
        return self.days is None or day.weekday() in self.days

    def _bounds(self, day: date) -> tuple[datetime, datetime]:
        """Wall-clock [start, end) of `day`'s window, ignoring whether the day is allowed."""
        end_day = day + timedelta(days=1) if self.crosses_midnight else day
        return datetime.combine(day, self.start), datetime.combine(end_day, self.end)

    def _window_around(self, wall: datetime) -> tuple[datetime, datetime] | None:
        """The wall-clock bounds of the allowed window containing `wall`, if any."""
        days = (wall.date() - timedelta(days=1), wall.date()) if self.crosses_midnight else (wall.date(),)
        for day in days:
            if self._allows(day):
                start, end = self._bounds(day)
                if start <= wall < end:
                    return start, end
        return None

    def _next_start(self, wall: datetime) -> datetime:
        """The first wall-clock start of an allowed window at or after `wall`."""
        for ahead in range(8):
            day = wall.date() + timedelta(days=ahead)
            start = datetime.combine(day, self.start)
            if self._allows(day) and start >= wall:
                return start
        raise AssertionError("a window with at least one allowed day starts within eight days")


def window_is_open(window: SendingWindow | None, at: datetime, zone: ZoneInfo) -> bool:
    """No window means the queue may send at any time."""
    return True if window is None else window.is_open(at, zone)


def next_opening(window: SendingWindow | None, after: datetime, zone: ZoneInfo) -> datetime:
    return _as_utc(after).astimezone(zone) if window is None else window.next_opening(after, zone)


def _as_utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("an instant must be a timezone-aware datetime")
    return at.astimezone(UTC)


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset at an aware instant
    return offset


def _wall_clock(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _naive(instant: datetime) -> datetime:
    return instant.replace(tzinfo=None)


def _aware(utc_wall: datetime) -> datetime:
    return utc_wall.replace(tzinfo=UTC)


def _next_offset_change(after: datetime, until: datetime, zone: ZoneInfo) -> datetime | None:
    """The first instant in (after, until] whose UTC offset differs from the one at `after`, or None."""
    offset = _offset(after, zone)
    previous = after
    while previous < until:
        probe = min(previous + _OFFSET_SAMPLE_STEP, until)
        if _offset(probe, zone) != offset:
            return _bisect_offset_change(previous, probe, offset, zone)
        previous = probe
    return None


def _bisect_offset_change(before: datetime, changed: datetime, offset: timedelta, zone: ZoneInfo) -> datetime:
    """Narrows (before, changed] down to the instant the offset stops being `offset`; zones switch on whole seconds."""
    low = before.replace(microsecond=0)  # still on the old offset: offset changes happen on whole seconds
    high = changed
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            break
        if _offset(middle, zone) == offset:
            low = middle
        else:
            high = middle
    change = low + timedelta(seconds=1)
    return change if change <= high and _offset(change, zone) != offset else high
