"""Recurring queues: 5-field cron parsing, the EventBridge Scheduler expression, and occurrences across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wabacast.domain.recurrence import InvalidRecurrence, Recurrence

NEW_YORK = ZoneInfo("America/New_York")
MADRID = ZoneInfo("Europe/Madrid")


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def in_utc(instants: list[datetime]) -> list[datetime]:
    # Python orders and subtracts same-zone datetimes by wall clock; compare instants in UTC.
    return [instant.astimezone(UTC) for instant in instants]


# EventBridge Scheduler's form --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("unix", "aws"),
    [
        ("0 9 * * MON", "cron(0 9 ? * MON *)"),
        ("30 8 1 * *", "cron(30 8 1 * ? *)"),
        ("*/15 * * * *", "cron(0/15 * * * ? *)"),
        ("0 9 * * *", "cron(0 9 * * ? *)"),
        ("0 9 * * 1", "cron(0 9 ? * 2 *)"),  # Unix 1 = Monday, AWS 2 = Monday
        ("0 9 * * 1-5", "cron(0 9 ? * 2-6 *)"),
        ("0 9 * * 0", "cron(0 9 ? * 1 *)"),  # Sunday as 0 ...
        ("0 9 * * 7", "cron(0 9 ? * 1 *)"),  # ... and as 7
        ("0 9 * * 0,6", "cron(0 9 ? * 1,7 *)"),
        ("0 9 * * 5-7", "cron(0 9 ? * 1,6-7 *)"),
        ("0 9 * * mon-fri", "cron(0 9 ? * MON-FRI *)"),
        ("0 9 * * FRI-SUN", "cron(0 9 ? * SUN,FRI-SAT *)"),
        ("0 9 * * */2", "cron(0 9 ? * 1,3,5,7 *)"),  # AWS has no step in day-of-week
        ("5/15 0-6/2 * JAN-MAR *", "cron(5/15 0,2,4,6 * 1-3 ? *)"),
        ("0 12 */2 * *", "cron(0 12 1/2 * ? *)"),
        ("0 0 29 2 *", "cron(0 0 29 2 ? *)"),
        ("0 9 1-31 * MON", "cron(0 9 ? * MON *)"),  # a day-of-month covering every day is unrestricted
        ("0,1,2,30 *  * * *", "cron(0-2,30 * * * ? *)"),
    ],
)
def test_a_unix_expression_becomes_the_aws_form(unix: str, aws: str) -> None:
    # GIVEN a 5-field expression
    # WHEN it is parsed and turned into EventBridge Scheduler's form
    # THEN it uses AWS day numbering, one '?' and every year
    assert Recurrence.parse(unix).aws_expression() == aws


def test_parsing_collapses_whitespace() -> None:
    # GIVEN an expression with extra spaces
    # WHEN parsed
    # THEN the stored expression is the canonical one
    assert Recurrence.parse("  0   9 * *\tMON ").expression == "0 9 * * MON"


# Parse errors --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "minute field '61' is out of range 0-59"),
        ("0 24 * * *", "hour field '24' is out of range 0-23"),
        ("0 0 0 * *", "day-of-month field '0' is out of range 1-31"),
        ("0 0 * 13 *", "month field '13' is out of range 1-12"),
        ("0 0 * * 8", "day-of-week field '8' is out of range 0-7"),
        ("* * * *", "a recurrence has 5 fields"),
        ("0 0 * * * 2027", "a recurrence has 5 fields"),
        ("", "got 0"),
        ("0 9 1 * MON", "restrict either day-of-month or day-of-week, not both"),
        ("0 0 30 2 *", "day-of-month and month never meet"),
        ("0 0 31 4,6,9,11 *", "day-of-month and month never meet"),
        ("*/0 * * * *", "minute field '\\*/0' has a step of 0; a step must be at least 1"),
        ("30-10 * * * *", "minute field '30-10' has a backwards range"),
        ("0 9 * * FOO", "day-of-week field 'FOO': 'FOO' is neither a number nor a name \\(MON-SUN\\)"),
        ("0 9 * XYZ *", "month field 'XYZ': 'XYZ' is neither a number nor a name \\(JAN-DEC\\)"),
        ("0 MON * * *", "hour field 'MON': 'MON' is not a number"),
        ("1,,2 * * * *", "minute field '1,,2' has an empty item in its list"),
        ("1-2-3 * * * *", "minute field '1-2-3' is not a value, a range"),
        ("? * * * *", "minute field '\\?' is not a value"),
    ],
)
def test_a_broken_expression_names_the_field_and_the_rule(expression: str, message: str) -> None:
    # GIVEN an expression that breaks a rule
    # WHEN it is parsed
    # THEN the error says which field and which rule
    with pytest.raises(InvalidRecurrence, match=message):
        Recurrence.parse(expression)


def test_the_constructor_checks_as_parse_does() -> None:
    # GIVEN an expression built directly rather than parsed
    # WHEN it restricts both day fields
    # THEN it is refused all the same, so no Recurrence can hold an expression AWS cannot run
    with pytest.raises(InvalidRecurrence, match="not both"):
        Recurrence("0 9 1 * MON")


def test_invalid_recurrence_is_a_value_error() -> None:
    # GIVEN callers that catch ValueError for bad input
    # WHEN a recurrence is refused
    # THEN they catch it too
    assert issubclass(InvalidRecurrence, ValueError)


# Occurrences ---------------------------------------------------------------------------------------------------
def test_weekly_monday_nine_in_madrid() -> None:
    # GIVEN "every Monday at 09:00" and Sunday 2026-11-29 in Madrid
    recurrence = Recurrence.parse("0 9 * * MON")
    # WHEN the next occurrences are listed
    found = recurrence.occurrences(datetime(2026, 11, 29, 12, tzinfo=MADRID), MADRID, 2)
    # THEN they are the next two Mondays at 09:00 Madrid time
    assert [instant.isoformat() for instant in found] == ["2026-11-30T09:00:00+01:00", "2026-12-07T09:00:00+01:00"]


def test_next_after_is_strictly_after() -> None:
    # GIVEN "every Monday at 09:00" and exactly Monday 09:00
    recurrence = Recurrence.parse("0 9 * * MON")
    at = datetime(2026, 11, 30, 9, tzinfo=MADRID)
    # WHEN the next occurrence is asked for
    # THEN it is a week later, not the same instant
    assert recurrence.next_after(at, MADRID) == datetime(2026, 12, 7, 9, tzinfo=MADRID)
    assert recurrence.next_after(at - timedelta(microseconds=1), MADRID) == at


def test_daily_nine_keeps_local_time_over_both_madrid_switches() -> None:
    # GIVEN "daily at 09:00" in Madrid around the 2026 switches (29 March, 25 October)
    recurrence = Recurrence.parse("0 9 * * *")
    # WHEN occurrences are listed across each switch
    spring = recurrence.occurrences(utc(2026, 3, 28), MADRID, 2)
    autumn = recurrence.occurrences(utc(2026, 10, 24), MADRID, 2)
    # THEN the wall time stays 09:00 and the UTC time moves by an hour
    assert in_utc(spring) == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7)]
    assert in_utc(autumn) == [utc(2026, 10, 24, 7), utc(2026, 10, 25, 8)]


def test_an_occurrence_in_the_spring_forward_gap_is_skipped() -> None:
    # GIVEN "daily at 02:30" in New York: 02:30 does not exist on 2026-03-08
    recurrence = Recurrence.parse("30 2 * * *")
    # WHEN occurrences around the switch are listed
    found = recurrence.occurrences(utc(2026, 3, 7), NEW_YORK, 3)
    # THEN the 8th is skipped, as EventBridge Scheduler documents
    assert [instant.isoformat() for instant in found] == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]


def test_a_repeated_wall_time_fires_once_at_its_first_occurrence() -> None:
    # GIVEN "daily at 01:30" in New York: 01:30 happens twice on 2026-11-01
    recurrence = Recurrence.parse("30 1 * * *")
    # WHEN occurrences around the switch are listed
    found = recurrence.occurrences(utc(2026, 10, 31), NEW_YORK, 3)
    # THEN the 1st fires once, at 01:30 EDT, as EventBridge Scheduler documents
    assert in_utc(found) == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_hourly_across_fall_back_does_not_repeat_the_repeated_hour() -> None:
    # GIVEN "every hour on the hour" in New York on the fall-back night
    recurrence = Recurrence.parse("0 * * * *")
    # WHEN occurrences from 00:30 EDT are listed, and from inside the repeated hour
    found = recurrence.occurrences(utc(2026, 11, 1, 4, 30), NEW_YORK, 3)
    from_second_one = recurrence.next_after(utc(2026, 11, 1, 6, 30), NEW_YORK)  # 01:30 EST
    # THEN 01:00 fires only as EDT, and the next hour is 02:00 EST
    assert in_utc(found) == [utc(2026, 11, 1, 5), utc(2026, 11, 1, 7), utc(2026, 11, 1, 8)]
    assert from_second_one.isoformat() == "2026-11-01T02:00:00-05:00"


def test_leap_day_only_expression_finds_the_next_leap_year() -> None:
    # GIVEN "29 February at midnight"
    recurrence = Recurrence.parse("0 0 29 2 *")
    # WHEN the next occurrence after late 2026 is asked for
    # THEN it is in 2028
    assert recurrence.next_after(utc(2026, 11, 29), MADRID).isoformat() == "2028-02-29T00:00:00+01:00"


def test_occurrences_of_zero_is_empty_and_negative_is_refused() -> None:
    recurrence = Recurrence.parse("0 9 * * *")
    assert recurrence.occurrences(utc(2026, 11, 29), MADRID, 0) == []
    with pytest.raises(ValueError, match="must not be negative"):
        recurrence.occurrences(utc(2026, 11, 29), MADRID, -1)


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Recurrence.parse("0 9 * * *").next_after(datetime(2026, 11, 29), MADRID)


# Properties ----------------------------------------------------------------------------------------------------
ZONES = ["America/New_York", "Europe/Madrid", "America/Guayaquil", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
# Short-period expressions, so a minute-by-minute scan up to the next occurrence stays small.
EXPRESSIONS = [
    "*/15 * * * *",
    "0 * * * *",
    "30 1,2 * * *",
    "0,30 2 * * *",
    "*/7 0-3 * * *",
    "45 23 * * *",
    "0 9 * * MON-FRI",
    "15 2 * * SUN",
]
# Near the 2026 DST switches of New York, Madrid and Lord Howe, or anywhere in 2026-2027.
ANCHORS = [
    utc(2026, 3, 8, 7),
    utc(2026, 11, 1, 6),
    utc(2026, 3, 29, 1),
    utc(2026, 10, 25, 1),
    utc(2026, 4, 4, 15),
    utc(2026, 10, 3, 15, 30),
]


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    if draw(st.booleans()):
        anchor = draw(st.sampled_from(ANCHORS))
        return anchor + timedelta(seconds=draw(st.integers(-2 * 86400, 2 * 86400)))
    return utc(2026, 1, 1) + timedelta(seconds=draw(st.integers(0, 2 * 365 * 86400)))


def wall_minute_matches(recurrence: Recurrence, instant: datetime, zone: ZoneInfo) -> bool:
    return recurrence.matches(instant.astimezone(zone).replace(tzinfo=None))


def fires_at(recurrence: Recurrence, minute: datetime, zone: ZoneInfo) -> bool:
    """Reference: a whole UTC minute fires when its wall clock matches and no earlier instant had that wall time."""
    wall = minute.astimezone(zone)
    if not recurrence.matches(wall.replace(tzinfo=None)):
        return False
    first = wall.replace(fold=0).astimezone(UTC)
    return first == minute


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(EXPRESSIONS), st.sampled_from(ZONES), instants())
def test_next_after_is_the_first_matching_minute_after_the_instant(
    expression: str, zone_name: str, at: datetime
) -> None:
    # GIVEN a short-period expression, a zone and an instant
    recurrence, zone = Recurrence.parse(expression), ZoneInfo(zone_name)
    # WHEN the next occurrence is computed
    found = recurrence.next_after(at, zone)
    occurrence = found.astimezone(UTC)
    # THEN it is later, on a whole minute, in the zone, and its wall clock matches the fields
    assert found.tzinfo is zone
    assert occurrence > at
    assert occurrence.second == 0
    assert occurrence.microsecond == 0
    assert wall_minute_matches(recurrence, occurrence, zone)
    assert fires_at(recurrence, occurrence, zone)
    # AND no whole minute between the instant and it fires
    minute = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute < occurrence:
        assert not fires_at(recurrence, minute, zone), minute
        minute += timedelta(minutes=1)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([*EXPRESSIONS, "0 0 1 * *", "0 0 29 2 *", "30 2 8 3 *"]), st.sampled_from(ZONES), instants())
def test_occurrences_are_strictly_increasing_and_chain(expression: str, zone_name: str, at: datetime) -> None:
    # GIVEN an expression, a zone and an instant
    recurrence, zone = Recurrence.parse(expression), ZoneInfo(zone_name)
    # WHEN five occurrences are listed
    found = in_utc(recurrence.occurrences(at, zone, 5))
    # THEN they increase strictly and each is the next after the one before
    assert found == sorted(set(found))
    assert found[0] == recurrence.next_after(at, zone).astimezone(UTC)
    for earlier, later in pairwise(found):
        assert recurrence.next_after(earlier, zone).astimezone(UTC) == later
