"""Recurring queues: a standard 5-field cron expression read in the queue's time zone, run by EventBridge Scheduler.

Input: "minute hour day-of-month month day-of-week" (e.g. "0 9 * * MON", Monday 09:00), with numbers, ranges a-b,
lists a,b, steps */n, a-b/n and a/n (= a-max/n), month names JAN-DEC and day names MON-SUN (numeric Sunday is 0 or 7).

EventBridge Scheduler cannot express Unix cron's "day-of-month OR day-of-week" when both are restricted (one of them
must be "?"), so such an expression is refused rather than silently run on fewer days. A field is "restricted" when
it does not cover every value of its range ("1-31" counts as "*"); with only one restricted, the days are those it
allows, as on AWS. An expression that can never fire ("0 0 30 2 *") is refused too.

Occurrences follow EventBridge Scheduler's documented handling of a cron schedule with ScheduleExpressionTimezone:
the fields are matched against the zone's wall clock; an occurrence whose wall time does not exist because the clock
springs forward is skipped; a wall time repeated when the clock falls back fires once, not twice; we take the first
of the two instants (AWS does not say which, and the first is the one reached first). AWS invokes the target within
the 60 seconds starting at the occurrence; `next_after` answers the start of that minute.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1
    )
}
_AWS_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # AWS numbers them 1-7 from Sunday
_DAY_NAMES = {name: number for number, name in enumerate(_AWS_DAY_NAMES)}  # Unix numbers them 0-6 from Sunday
_TERM = re.compile(r"^(\*|[A-Z0-9]+(?:-[A-Z0-9]+)?)(?:/([0-9]+))?$")
# Feb 29 expressions fire once in four years, and not in 2100: eight years and a day always reach an occurrence.
_SEARCH_DAYS = 8 * 366 + 1


class InvalidRecurrence(ValueError):  # noqa: N818 (the name the scheduling code imports)
    """The expression breaks a rule; the message names the field and the rule."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_MINUTE = _Field("minute", 0, 59, {})
_HOUR = _Field("hour", 0, 23, {})
_DAY_OF_MONTH = _Field("day-of-month", 1, 31, {})
_MONTH = _Field("month", 1, 12, _MONTH_NAMES)
_DAY_OF_WEEK = _Field("day-of-week", 0, 7, _DAY_NAMES)  # 0 and 7 are both Sunday
_FIELDS = (_MINUTE, _HOUR, _DAY_OF_MONTH, _MONTH, _DAY_OF_WEEK)


@dataclass(frozen=True)
class Recurrence:
    expression: str
    minutes: frozenset[int] = field(init=False, repr=False, compare=False)
    hours: frozenset[int] = field(init=False, repr=False, compare=False)
    days_of_month: frozenset[int] = field(init=False, repr=False, compare=False)
    months: frozenset[int] = field(init=False, repr=False, compare=False)
    days_of_week: frozenset[int] = field(init=False, repr=False, compare=False)  # 0 = Sunday ... 6 = Saturday
    _day_names_given: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = self.expression.split()
        if len(parts) != len(_FIELDS):
            raise InvalidRecurrence(
                "a recurrence has 5 fields (minute hour day-of-month month day-of-week) separated by spaces; "
                f"got {len(parts)}"
            )
        minutes, hours, days_of_month, months, days_of_week = (
            _parse_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)
        )
        days_of_week = frozenset(day % 7 for day in days_of_week)
        if _restricted(days_of_month, _DAY_OF_MONTH) and _restricted(days_of_week, _DAY_OF_WEEK):
            raise InvalidRecurrence(
                "restrict either day-of-month or day-of-week, not both "
                "(EventBridge Scheduler cannot run on 'this day of the month or this weekday')"
            )
        if not any(min(days_of_month) <= _longest_month(month) for month in months):
            raise InvalidRecurrence("day-of-month and month never meet: no such date exists, so it would never run")
        for name, values in (
            ("minutes", minutes),
            ("hours", hours),
            ("days_of_month", days_of_month),
            ("months", months),
            ("days_of_week", days_of_week),
        ):
            object.__setattr__(self, name, values)
        object.__setattr__(self, "_day_names_given", any(char.isalpha() for char in parts[4]))

    @classmethod
    def parse(cls, expression: str) -> Recurrence:
        """The recurrence, with runs of whitespace collapsed; raises InvalidRecurrence naming the broken rule."""
        return cls(" ".join(expression.split()))

    def aws_expression(self) -> str:
        """EventBridge Scheduler's form, cron(minute hour day-of-month month day-of-week year), to run with
        ScheduleExpressionTimezone set to the queue's zone."""
        minute = _aws_values(self.minutes, _MINUTE, step_allowed=True)
        hour = _aws_values(self.hours, _HOUR, step_allowed=True)
        month = _aws_values(self.months, _MONTH, step_allowed=True)
        if _restricted(self.days_of_week, _DAY_OF_WEEK):
            day_of_month, day_of_week = "?", self._aws_days_of_week()
        else:
            day_of_month, day_of_week = _aws_values(self.days_of_month, _DAY_OF_MONTH, step_allowed=True), "?"
        return f"cron({minute} {hour} {day_of_month} {month} {day_of_week} *)"

    def matches(self, wall: datetime) -> bool:
        """Whether a wall-clock minute (naive, seconds ignored) is one of the expression's."""
        return (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and wall.month in self.months
            and self._matches_day(wall.date())
        )

    def next_after(self, after: datetime, zone: ZoneInfo) -> datetime:
        """The first occurrence strictly after `after`, as EventBridge Scheduler fires it, in `zone`."""
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError("an instant must be a timezone-aware datetime")
        instant = after.astimezone(UTC)
        # Wall-clock minutes map to instants in increasing order (a repeated wall time fires at its first instant),
        # so the answer's wall time is never before the minute `after` falls in.
        first_wall = instant.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0, fold=0)
        for ahead in range(_SEARCH_DAYS):
            day = first_wall.date() + timedelta(days=ahead)
            if day.month not in self.months or not self._matches_day(day):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    wall = datetime(day.year, day.month, day.day, hour, minute)
                    if wall < first_wall:
                        continue
                    occurrence = _first_instant(wall, zone)
                    if occurrence is not None and occurrence > instant:
                        return occurrence.astimezone(zone)
        raise AssertionError(f"{self.expression!r} has no occurrence within eight years")  # refused when parsed

    def occurrences(self, after: datetime, zone: ZoneInfo, count: int) -> list[datetime]:
        if count < 0:
            raise ValueError("count must not be negative")
        found: list[datetime] = []
        for _ in range(count):
            after = self.next_after(after, zone)
            found.append(after)
        return found

    def _matches_day(self, day: date) -> bool:
        return day.day in self.days_of_month and (day.weekday() + 1) % 7 in self.days_of_week

    def _aws_days_of_week(self) -> str:
        aws_numbers = frozenset(day + 1 for day in self.days_of_week)
        if self._day_names_given:
            return _compress(aws_numbers, lambda number: _AWS_DAY_NAMES[number - 1])
        return _compress(aws_numbers, str)


def _parse_field(text: str, spec: _Field) -> frozenset[int]:
    values: set[int] = set()
    for term in text.upper().split(","):
        values |= _parse_term(term, text, spec)
    return frozenset(values)


def _parse_term(term: str, text: str, spec: _Field) -> set[int]:
    if not term:
        raise InvalidRecurrence(f"{spec.name} field '{text}' has an empty item in its list")
    matched = _TERM.fullmatch(term)
    if matched is None:
        raise InvalidRecurrence(
            f"{spec.name} field '{text}' is not a value, a range a-b, a list a,b or a step */n or a-b/n"
        )
    span, step_text = matched.groups()
    if span == "*":
        first, last = spec.low, spec.high
        if spec is _DAY_OF_WEEK:
            last = 6  # "*" is every day once, 7 being Sunday again
    elif "-" in span:
        first_text, last_text = span.split("-")
        first = _parse_value(first_text, text, spec)
        # "FRI-SUN": a range ending on Sunday by name ends on 7, not 0.
        last = 7 if spec is _DAY_OF_WEEK and last_text == "SUN" else _parse_value(last_text, text, spec)
        if first > last:
            raise InvalidRecurrence(f"{spec.name} field '{text}' has a backwards range {span} (smaller value first)")
    else:
        first = _parse_value(span, text, spec)
        last = spec.high if step_text is not None else first
    step = 1
    if step_text is not None:
        step = int(step_text)
        if step < 1:
            raise InvalidRecurrence(f"{spec.name} field '{text}' has a step of {step}; a step must be at least 1")
    return set(range(first, last + 1, step))


def _parse_value(token: str, text: str, spec: _Field) -> int:
    if token.isdigit():
        value = int(token)
    elif token in spec.names:
        value = spec.names[token]
    elif spec.names:
        examples = "JAN-DEC" if spec is _MONTH else "MON-SUN"
        raise InvalidRecurrence(f"{spec.name} field '{text}': '{token}' is neither a number nor a name ({examples})")
    else:
        raise InvalidRecurrence(f"{spec.name} field '{text}': '{token}' is not a number")
    if not spec.low <= value <= spec.high:
        raise InvalidRecurrence(f"{spec.name} field '{text}' is out of range {spec.low}-{spec.high}")
    return value


def _restricted(values: frozenset[int], spec: _Field) -> bool:
    every = range(spec.low, 7) if spec is _DAY_OF_WEEK else range(spec.low, spec.high + 1)
    return values != frozenset(every)


def _longest_month(month: int) -> int:
    return monthrange(2000, month)[1]  # 2000 is a leap year: February has its 29th


def _aws_values(values: frozenset[int], spec: _Field, *, step_allowed: bool) -> str:
    """A field in the syntax AWS documents: *, a value, ranges, lists, and start/step up to the field's maximum."""
    if not _restricted(values, spec):
        return "*"
    ordered = sorted(values)
    if step_allowed and len(ordered) >= 3:
        step = ordered[1] - ordered[0]
        if step > 1 and ordered == list(range(ordered[0], spec.high + 1, step)):
            return f"{ordered[0]}/{step}"
    return _compress(values, str)


def _compress(values: frozenset[int], show: Callable[[int], str]) -> str:
    """Comma-separated runs: 1,2,3,5 -> '1-3,5'."""
    ordered = sorted(values)
    runs: list[tuple[int, int]] = []
    for value in ordered:
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return ",".join(show(first) if first == last else f"{show(first)}-{show(last)}" for first, last in runs)


def _first_instant(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """The first instant at which the zone's clock reads `wall`, or None when the clock skips it."""
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return instant
