"""EventBridge Scheduler's schedule expressions: `at(...)`, `rate(...)` and AWS's 6-field `cron(...)`.

Written independently of the API's own cron module, on purpose: the local stack fires what the API stored, so
two implementations that disagree show up as a schedule that fires at another time than the API promised.

AWS semantics followed (EventBridge Scheduler user guide, "Schedule types" and "Daylight saving time"):
  - cron and at() are evaluated in `ScheduleExpressionTimezone` (default UTC); rate() is elapsed time, and
    `rate(1 day)` is 24 hours whatever the clock does;
  - spring forward: an occurrence whose local time does not exist that day is skipped;
  - fall back: an occurrence whose local time happens twice fires once, at the first of the two;
  - cron fields: minutes hours day-of-month month day-of-week year, with `, - * /` everywhere, `?` in one of the
    day fields (exactly one of them), `L` and `nW` in day-of-month, `L`, `nL` and `n#k` in day-of-week (days
    1-7 with SUN=1, or SUN-SAT), months 1-12 or JAN-DEC, years 1970-2199.

Anything else (`LW`, `L-3`, seconds, 5-field cron) raises `UnsupportedExpressionError` with the reason.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class UnsupportedExpressionError(ValueError):
    """An expression this evaluator cannot read (invalid for AWS, or AWS syntax it does not implement)."""


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
# AWS numbers the days of the week 1-7 from Sunday.
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_YEARS = (1970, 2199)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise UnsupportedExpressionError(f"unknown time zone {name!r}") from None


def aws_day_of_week(day: date) -> int:
    """1 = Sunday ... 7 = Saturday."""
    return day.isoweekday() % 7 + 1


def _number(token: str, names: dict[str, int], field: str) -> int:
    upper = token.upper()
    if upper in names:
        return names[upper]
    if not token.isdigit():
        raise UnsupportedExpressionError(f"{field}: {token!r} is not a number or a name")
    return int(token)


def _parse_values(text: str, low: int, high: int, field: str, names: dict[str, int] | None = None) -> frozenset[int]:
    """`,`-separated items, each `*`, `n`, `a-b` (wrapping around for cyclic fields), optionally `/step`."""
    names = names or {}
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise UnsupportedExpressionError(f"{field}: empty item in {text!r}")
        base, slash, step_text = item.partition("/")
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise UnsupportedExpressionError(f"{field}: increment {step_text!r} must be a positive number")
            step = int(step_text)
        else:
            step = 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, names, field), _number(last, names, field)
        else:
            start = _number(base, names, field)
            # "5/15" runs from 5 to the end of the range; a bare "5" is just 5.
            end = high if slash else start
        for value in (start, end):
            if not low <= value <= high:
                raise UnsupportedExpressionError(f"{field}: {value} is outside {low}-{high}")
        if start <= end:
            span = list(range(start, end + 1))
        elif field == "year":
            raise UnsupportedExpressionError(f"year: reversed range {base!r}")
        else:  # a range that wraps around, e.g. FRI-MON or 22-2
            span = [*range(start, high + 1), *range(low, end + 1)]
        values.update(span[::step])
    return frozenset(values)


@dataclass(frozen=True)
class DayOfMonth:
    any: bool = False  # "?"
    values: frozenset[int] = frozenset()
    last: bool = False  # "L"
    nearest_weekday: int | None = None  # "nW"

    def matches(self, day: date) -> bool:
        if self.any:
            return True
        days_in_month = calendar.monthrange(day.year, day.month)[1]
        if self.last:
            return day.day == days_in_month
        if self.nearest_weekday is not None:
            return day.day == _nearest_weekday(day.year, day.month, self.nearest_weekday)
        return day.day in self.values


def _nearest_weekday(year: int, month: int, target: int) -> int:
    """The weekday (Mon-Fri) nearest to day `target`, without leaving the month (Quartz's W)."""
    days_in_month = calendar.monthrange(year, month)[1]
    target = min(target, days_in_month)
    weekday = date(year, month, target).weekday()  # 0 = Monday
    if weekday == 5:  # Saturday: the Friday before, or the Monday after when the 1st is a Saturday
        return target - 1 if target > 1 else target + 2
    if weekday == 6:  # Sunday: the Monday after, or the Friday before when it is the month's last day
        return target + 1 if target < days_in_month else target - 2
    return target


@dataclass(frozen=True)
class DayOfWeek:
    any: bool = False  # "?"
    values: frozenset[int] = frozenset()
    last_of_month: int | None = None  # "nL": the last day n of the month
    nth: tuple[int, int] | None = None  # "n#k": the k-th day n of the month

    def matches(self, day: date) -> bool:
        if self.any:
            return True
        weekday = aws_day_of_week(day)
        if self.last_of_month is not None:
            return weekday == self.last_of_month and day + timedelta(days=7) > _last_day(day)
        if self.nth is not None:
            wanted, occurrence = self.nth
            return weekday == wanted and (day.day - 1) // 7 + 1 == occurrence
        return weekday in self.values


def _last_day(day: date) -> date:
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def _parse_day_of_month(text: str) -> DayOfMonth:
    if text == "?":
        return DayOfMonth(any=True)
    if text.upper() == "L":
        return DayOfMonth(last=True)
    if match := re.fullmatch(r"(\d{1,2})W", text, flags=re.IGNORECASE):
        target = int(match.group(1))
        if not 1 <= target <= 31:
            raise UnsupportedExpressionError(f"day-of-month: {target} is outside 1-31")
        return DayOfMonth(nearest_weekday=target)
    if re.search(r"[LW]", text, flags=re.IGNORECASE):
        raise UnsupportedExpressionError(f"day-of-month: {text!r} is not supported here (only L, nW, lists, ranges)")
    return DayOfMonth(values=_parse_values(text, 1, 31, "day-of-month"))


def _parse_day_of_week(text: str) -> DayOfWeek:
    if text == "?":
        return DayOfWeek(any=True)
    if text.upper() == "L":  # the last day of the week
        return DayOfWeek(values=frozenset({7}))
    if match := re.fullmatch(r"(\w{1,3})L", text, flags=re.IGNORECASE):
        day = _number(match.group(1), _DAYS, "day-of-week")
        if not 1 <= day <= 7:
            raise UnsupportedExpressionError(f"day-of-week: {day} is outside 1-7")
        return DayOfWeek(last_of_month=day)
    if "#" in text:
        match = re.fullmatch(r"(\w{1,3})#(\d)", text)
        if match is None:
            # AWS: with '#', the field holds that one expression only ("3#1,6#3" is invalid).
            raise UnsupportedExpressionError(f"day-of-week: {text!r} must be a single n#k")
        day, occurrence = _number(match.group(1), _DAYS, "day-of-week"), int(match.group(2))
        if not 1 <= day <= 7 or not 1 <= occurrence <= 5:
            raise UnsupportedExpressionError(f"day-of-week: {text!r} needs a day 1-7 and an occurrence 1-5")
        return DayOfWeek(nth=(day, occurrence))
    return DayOfWeek(values=_parse_values(text, 1, 7, "day-of-week", _DAYS))


@dataclass(frozen=True)
class CronExpression:
    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: DayOfMonth
    months: frozenset[int]
    day_of_week: DayOfWeek
    years: frozenset[int]

    @classmethod
    def parse(cls, fields_text: str) -> CronExpression:
        fields = fields_text.split()
        if len(fields) != 6:
            raise UnsupportedExpressionError(
                f"cron needs 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}"
            )
        minutes, hours, day_of_month, month, day_of_week, year = fields
        if (day_of_month == "?") == (day_of_week == "?"):
            raise UnsupportedExpressionError("exactly one of day-of-month and day-of-week must be '?'")
        return cls(
            minutes=_parse_values(minutes, 0, 59, "minutes"),
            hours=_parse_values(hours, 0, 23, "hours"),
            day_of_month=_parse_day_of_month(day_of_month),
            months=_parse_values(month, 1, 12, "month", _MONTHS),
            day_of_week=_parse_day_of_week(day_of_week),
            years=_parse_values(year, *_YEARS, "year"),
        )

    def _local_times_from(self, start: datetime) -> Iterator[datetime]:
        """Matching wall-clock times (naive, minute precision) from `start` on, in order."""
        for year in sorted(value for value in self.years if value >= start.year):
            for month in sorted(self.months):
                if (year, month) < (start.year, start.month):
                    continue
                for day_number in range(1, calendar.monthrange(year, month)[1] + 1):
                    day = date(year, month, day_number)
                    if day < start.date() or not (self.day_of_month.matches(day) and self.day_of_week.matches(day)):
                        continue
                    for hour in sorted(self.hours):
                        for minute in sorted(self.minutes):
                            candidate = datetime(year, month, day_number, hour, minute)
                            if candidate >= start:
                                yield candidate

    def next_after(self, after: datetime, timezone: ZoneInfo) -> datetime | None:
        """The first occurrence strictly after `after` (aware), as an aware UTC datetime; None when none is left."""
        local_after = after.astimezone(timezone).replace(tzinfo=None, fold=0)
        # An hour before, so that the second pass of a repeated (fall-back) hour is searched from its start.
        start = (local_after - timedelta(hours=1)).replace(second=0, microsecond=0)
        for wall_time in self._local_times_from(start):
            instant = local_to_utc(wall_time, timezone)
            if instant is not None and instant > after:
                return instant
        return None


def local_to_utc(wall_time: datetime, timezone: ZoneInfo) -> datetime | None:
    """The first instant the clocks of `timezone` show `wall_time`, or None when they skip it (spring forward)."""
    aware = wall_time.replace(tzinfo=timezone, fold=0)
    instant = aware.astimezone(UTC)
    if instant.astimezone(timezone).replace(tzinfo=None) != wall_time:
        return None
    return instant


@dataclass(frozen=True)
class AtExpression:
    wall_time: datetime  # naive, in the schedule's time zone

    def instant(self, timezone: ZoneInfo) -> datetime:
        # A one-time schedule at a skipped local time: AWS does not say; it fires at the same offset as before
        # the gap (zoneinfo's fold=0 reading), i.e. one hour later on the wall clock.
        return self.wall_time.replace(tzinfo=timezone, fold=0).astimezone(UTC)


@dataclass(frozen=True)
class RateExpression:
    period: timedelta


ScheduleExpression = AtExpression | RateExpression | CronExpression

_RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def parse_expression(text: str) -> ScheduleExpression:
    """Parse `at(...)`, `rate(...)` or `cron(...)`; raise UnsupportedExpressionError saying why not."""
    match = re.fullmatch(r"\s*(at|rate|cron)\((.*)\)\s*", text)
    if match is None:
        raise UnsupportedExpressionError(f"{text!r} is not at(...), rate(...) or cron(...)")
    kind, body = match.group(1), match.group(2).strip()
    if kind == "at":
        try:
            wall_time = datetime.strptime(body, "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            raise UnsupportedExpressionError(f"at({body}) is not at(yyyy-mm-ddThh:mm:ss)") from None
        return AtExpression(wall_time)
    if kind == "rate":
        rate = re.fullmatch(r"(\d+)\s+(\w+)", body)
        if rate is None or rate.group(2) not in _RATE_UNITS or int(rate.group(1)) < 1:
            raise UnsupportedExpressionError(f"rate({body}) is not rate(<positive number> minute(s)|hour(s)|day(s))")
        return RateExpression(timedelta(seconds=int(rate.group(1)) * _RATE_UNITS[rate.group(2)]))
    return CronExpression.parse(body)
