"""EventBridge Scheduler's expressions as the local emulator reads them: AWS's examples, L/W/#, time zones, DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wabacast_local.schedule_expressions import (
    AtExpression,
    CronExpression,
    RateExpression,
    UnsupportedExpressionError,
    parse_expression,
    zone,
)

UTC_ZONE = zone("UTC")
NEW_YORK = zone("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def next_after(expression: str, after: datetime, timezone: str = "UTC") -> datetime | None:
    cron = parse_expression(expression)
    assert isinstance(cron, CronExpression)
    return cron.next_after(after, zone(timezone))


def occurrences(expression: str, after: datetime, count: int, timezone: str = "UTC") -> list[datetime]:
    found: list[datetime] = []
    for _ in range(count):
        following = next_after(expression, after, timezone)
        assert following is not None
        found.append(following)
        after = following
    return found


# 2026-11-27 is a Friday; 2026-11-29 a Sunday; 2026-12-01 a Tuesday.
FRIDAY_NOON = utc(2026, 11, 27, 12, 7)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # The examples of AWS's cron reference, with what they mean there.
        ("cron(0 10 * * ? *)", FRIDAY_NOON, utc(2026, 11, 28, 10, 0)),  # 10:00 every day
        ("cron(15 12 * * ? *)", FRIDAY_NOON, utc(2026, 11, 27, 12, 15)),  # 12:15 every day
        ("cron(0 18 ? * MON-FRI *)", FRIDAY_NOON, utc(2026, 11, 27, 18, 0)),  # 18:00 Monday to Friday
        ("cron(0 18 ? * MON-FRI *)", utc(2026, 11, 27, 19, 0), utc(2026, 11, 30, 18, 0)),
        ("cron(0 8 1 * ? *)", FRIDAY_NOON, utc(2026, 12, 1, 8, 0)),  # 08:00 on the first day of the month
        ("cron(0/15 * * * ? *)", FRIDAY_NOON, utc(2026, 11, 27, 12, 15)),  # every 15 minutes
        ("cron(0/10 * ? * MON-FRI *)", utc(2026, 11, 28, 3, 0), utc(2026, 11, 30, 0, 0)),  # every 10 min, weekdays
        ("cron(0/5 8-17 ? * MON-FRI *)", utc(2026, 11, 27, 17, 56), utc(2026, 11, 30, 8, 0)),  # 08:00-17:55
        ("cron(0/5 8-17 ? * MON-FRI *)", FRIDAY_NOON, utc(2026, 11, 27, 12, 10)),
        ("cron(0 9 ? * 2#1 *)", FRIDAY_NOON, utc(2026, 12, 7, 9, 0)),  # first Monday of the month
        # Increments from an offset, lists, names, AWS's day numbers (SUN=1), ranges that wrap, years.
        ("cron(1/10 * * * ? *)", FRIDAY_NOON, utc(2026, 11, 27, 12, 11)),
        ("cron(0 12 1 JAN,JUL ? *)", FRIDAY_NOON, utc(2027, 1, 1, 12, 0)),
        ("cron(0 9 ? * 1 *)", FRIDAY_NOON, utc(2026, 11, 29, 9, 0)),
        ("cron(0 9 ? * sun *)", FRIDAY_NOON, utc(2026, 11, 29, 9, 0)),
        ("cron(0 9 ? * FRI-MON *)", utc(2026, 11, 28, 10, 0), utc(2026, 11, 29, 9, 0)),
        ("cron(0 22-2 * * ? *)", utc(2026, 11, 27, 23, 30), utc(2026, 11, 28, 0, 0)),
        ("cron(0 0 1 1 ? 2030)", FRIDAY_NOON, utc(2030, 1, 1, 0, 0)),
        ("cron(0 0 1 1 ? 2020-2025)", FRIDAY_NOON, None),
        ("cron(*/20 * * * ? *)", FRIDAY_NOON, utc(2026, 11, 27, 12, 20)),
        # L: the last day of the month; 6L: the month's last Friday (2026-12-25); L alone in day-of-week: Saturday.
        ("cron(0 18 L * ? *)", FRIDAY_NOON, utc(2026, 11, 30, 18, 0)),
        ("cron(0 18 L 2 ? *)", FRIDAY_NOON, utc(2027, 2, 28, 18, 0)),
        ("cron(0 9 ? * 6L *)", utc(2026, 11, 28, 0, 0), utc(2026, 12, 25, 9, 0)),
        ("cron(0 9 ? * L *)", FRIDAY_NOON, utc(2026, 11, 28, 9, 0)),
        # W: the weekday nearest the day, within the month. 2026-11-15 is a Sunday, 2026-02-01 a Sunday,
        # 2026-02-28 a Saturday.
        ("cron(0 9 15W * ? *)", utc(2026, 11, 1, 0, 0), utc(2026, 11, 16, 9, 0)),
        ("cron(0 9 1W * ? *)", utc(2026, 1, 31, 0, 0), utc(2026, 2, 2, 9, 0)),
        ("cron(0 9 28W * ? *)", utc(2026, 2, 3, 0, 0), utc(2026, 2, 27, 9, 0)),
        # #: the third Tuesday (3 = TUE) of December 2026.
        ("cron(0 9 ? * 3#3 *)", utc(2026, 12, 1, 10, 0), utc(2026, 12, 15, 9, 0)),
        ("cron(0 9 ? * TUE#3 *)", utc(2026, 12, 1, 10, 0), utc(2026, 12, 15, 9, 0)),
    ],
)
def test_cron_examples(expression: str, after: datetime, expected: datetime | None) -> None:
    assert next_after(expression, after) == expected


def test_the_next_occurrence_is_strictly_after() -> None:
    # GIVEN an occurrence at 12:15 WHEN asking from exactly 12:15 THEN the next one is 12:30
    assert next_after("cron(0/15 * * * ? *)", utc(2026, 11, 27, 12, 15)) == utc(2026, 11, 27, 12, 30)


def test_cron_is_read_in_the_schedules_time_zone() -> None:
    # GIVEN 09:00 every day in Guayaquil (UTC-5, no DST)
    # WHEN / THEN it fires at 14:00 UTC
    assert occurrences("cron(0 9 * * ? *)", FRIDAY_NOON, 2, "America/Guayaquil") == [
        utc(2026, 11, 27, 14, 0),
        utc(2026, 11, 28, 14, 0),
    ]


def test_new_york_spring_forward_keeps_wall_time_and_skips_the_missing_hour() -> None:
    # GIVEN 2026-03-08, when New York's clocks jump from 02:00 EST to 03:00 EDT
    after = utc(2026, 3, 7, 0, 0)

    # WHEN / THEN 09:00 stays 09:00 local (14:00Z, then 13:00Z), and 02:30, which does not exist that day, is skipped
    assert occurrences("cron(0 9 * * ? *)", after, 3, "America/New_York") == [
        utc(2026, 3, 7, 14, 0),
        utc(2026, 3, 8, 13, 0),
        utc(2026, 3, 9, 13, 0),
    ]
    assert occurrences("cron(30 2 * * ? *)", after, 2, "America/New_York") == [
        utc(2026, 3, 7, 7, 30),
        utc(2026, 3, 9, 6, 30),
    ]


def test_new_york_fall_back_fires_a_repeated_time_once() -> None:
    # GIVEN 2026-11-01, when New York's clocks go back from 02:00 EDT to 01:00 EST
    after = utc(2026, 10, 31, 12, 0)

    # WHEN / THEN 01:30 fires once (the first one, EDT) and 09:00 moves from 13:00Z to 14:00Z
    assert occurrences("cron(30 1 * * ? *)", after, 2, "America/New_York") == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 2, 6, 30),
    ]
    assert occurrences("cron(0 9 * * ? *)", after, 3, "America/New_York") == [
        utc(2026, 10, 31, 13, 0),
        utc(2026, 11, 1, 14, 0),
        utc(2026, 11, 2, 14, 0),
    ]
    # Every 30 minutes: 01:00 and 01:30 EDT, then 02:00 EST; the repeated 01:00 and 01:30 EST do not fire again.
    assert occurrences("cron(0/30 * * * ? *)", utc(2026, 11, 1, 4, 45), 3, "America/New_York") == [
        utc(2026, 11, 1, 5, 0),
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 7, 0),
    ]


def test_asking_from_inside_the_repeated_hour_does_not_fire_its_times_again() -> None:
    # GIVEN 01:10 EST, the second pass of the repeated hour (06:10Z), after 01:30 EDT already fired
    # WHEN / THEN the next 01:30 is the next day's
    assert next_after("cron(30 1 * * ? *)", utc(2026, 11, 1, 6, 10), "America/New_York") == utc(2026, 11, 2, 6, 30)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("cron(0 10 * * *)", "6 fields"),
        ("cron(0 0 10 * * ? *)", "6 fields"),
        ("cron(0 10 * * MON *)", "exactly one"),
        ("cron(0 10 ? * ? *)", "exactly one"),
        ("cron(60 * * * ? *)", "outside 0-59"),
        ("cron(0 24 * * ? *)", "outside 0-23"),
        ("cron(0 9 ? * 0 *)", "outside 1-7"),
        ("cron(0 9 ? * 3#1,6#3 *)", "single n#k"),
        ("cron(0 9 LW * ? *)", "not supported"),
        ("cron(0 9 L-3 * ? *)", "not supported"),
        ("cron(0 9 * FOO ? *)", "not a number or a name"),
        ("cron(0/0 * * * ? *)", "positive"),
        ("cron(0 0 1 1 ? 2200)", "outside 1970-2199"),
        ("rate(0 minutes)", "positive"),
        ("rate(5 weeks)", "rate("),
        ("at(2026-11-29 09:00)", "yyyy-mm-ddThh:mm:ss"),
        ("every(5 minutes)", "at(...), rate(...) or cron(...)"),
    ],
)
def test_unsupported_or_invalid_expressions_say_why(expression: str, reason: str) -> None:
    with pytest.raises(UnsupportedExpressionError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_expression(expression)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(UnsupportedExpressionError, match="Mars/Olympus"):
        zone("Mars/Olympus")


def test_rate_and_at_expressions() -> None:
    assert parse_expression("rate(1 minute)") == RateExpression(timedelta(minutes=1))
    assert parse_expression("rate(5 minutes)") == RateExpression(timedelta(minutes=5))
    assert parse_expression("rate(2 hours)") == RateExpression(timedelta(hours=2))
    assert parse_expression("rate(1 day)") == RateExpression(timedelta(days=1))
    at = parse_expression("at(2026-11-29T09:00:00)")
    assert at == AtExpression(datetime(2026, 11, 29, 9, 0))
    assert isinstance(at, AtExpression)
    # at() is read in the schedule's time zone: 09:00 in New York in November is 14:00 UTC.
    assert at.instant(NEW_YORK) == utc(2026, 11, 29, 14, 0)
    assert at.instant(UTC_ZONE) == utc(2026, 11, 29, 9, 0)
