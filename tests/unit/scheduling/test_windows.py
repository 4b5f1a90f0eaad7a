"""Sending windows read in local wall-clock time: examples a person can check by hand, DST days included."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from wabacast.domain.models import ActiveHours, Weekday
from wabacast.domain.windows import SendingWindow, next_opening, window_is_open

NEW_YORK = ZoneInfo("America/New_York")
GUAYAQUIL = ZoneInfo("America/Guayaquil")
MADRID = ZoneInfo("Europe/Madrid")
MON_TO_FRI = frozenset(range(5))
FRIDAY = 4

OFFICE_HOURS = SendingWindow(start=time(9), end=time(18), days=MON_TO_FRI)
NIGHT_FRIDAY_ONLY = SendingWindow(start=time(22), end=time(6), days=frozenset({FRIDAY}))


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def local(zone: ZoneInfo, *fields: int, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=zone, fold=fold)


# Office hours -------------------------------------------------------------------------------------------------
def test_a_window_is_open_thirty_seconds_before_it_ends() -> None:
    # GIVEN a 09:00-18:00 Monday-to-Friday window and Friday 17:59:30 in Guayaquil (2026-11-27 is a Friday)
    at = local(GUAYAQUIL, 2026, 11, 27, 17, 59, 30)
    # WHEN the window is checked
    # THEN it is open, and closes at 18:00:00 sharp
    assert OFFICE_HOURS.is_open(at, GUAYAQUIL)
    assert OFFICE_HOURS.next_closing(at, GUAYAQUIL) == local(GUAYAQUIL, 2026, 11, 27, 18)


def test_a_window_is_closed_at_its_end_and_reopens_on_the_next_allowed_day() -> None:
    # GIVEN Friday 18:00:00 in Guayaquil and a Monday-to-Friday 09:00-18:00 window
    at = local(GUAYAQUIL, 2026, 11, 27, 18)
    # WHEN the window is checked
    opening = OFFICE_HOURS.next_opening(at, GUAYAQUIL)
    # THEN it is closed and next opens on Monday at 09:00 local, expressed in the queue's zone
    assert not OFFICE_HOURS.is_open(at, GUAYAQUIL)
    assert opening == local(GUAYAQUIL, 2026, 11, 30, 9)
    assert opening.tzinfo == GUAYAQUIL
    assert opening.isoformat() == "2026-11-30T09:00:00-05:00"


def test_an_open_window_answers_the_instant_itself_as_next_opening() -> None:
    # GIVEN Wednesday 12:34:56.789 in Madrid, inside office hours, given as a UTC instant
    at = local(MADRID, 2026, 11, 25, 12, 34, 56).replace(microsecond=789).astimezone(UTC)
    # WHEN the next opening is asked for
    opening = OFFICE_HOURS.next_opening(at, MADRID)
    # THEN it is that same instant, in Madrid's zone
    assert opening == at
    assert opening.tzinfo == MADRID


def test_the_window_is_read_in_the_given_zone_whatever_zone_the_instant_is_in() -> None:
    # GIVEN 14:30 UTC on a Wednesday: 09:30 in Guayaquil, 15:30 in Madrid, 08:30 in Los Angeles
    at = utc(2026, 11, 25, 14, 30)
    # WHEN office hours are checked in each zone
    # THEN only the zones whose wall clock is inside 09:00-18:00 are open
    assert OFFICE_HOURS.is_open(at, GUAYAQUIL)
    assert OFFICE_HOURS.is_open(at, MADRID)
    assert not OFFICE_HOURS.is_open(at, ZoneInfo("America/Los_Angeles"))


def test_a_weekend_instant_waits_for_monday() -> None:
    # GIVEN Saturday noon
    at = local(MADRID, 2026, 11, 28, 12)
    # WHEN office hours are checked
    # THEN they are closed until Monday 09:00 and next_closing answers the instant itself
    assert not OFFICE_HOURS.is_open(at, MADRID)
    assert OFFICE_HOURS.next_opening(at, MADRID) == local(MADRID, 2026, 11, 30, 9)
    assert OFFICE_HOURS.next_closing(at, MADRID) == at


# Across midnight ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("wall", "is_open"),
    [
        ((2026, 11, 27, 21, 59, 59), False),  # Friday just before the start
        ((2026, 11, 27, 22, 0, 0), True),  # Friday start
        ((2026, 11, 27, 23, 59, 59), True),
        ((2026, 11, 28, 0, 0, 0), True),  # Saturday after midnight: still Friday's window
        ((2026, 11, 28, 5, 59, 59), True),
        ((2026, 11, 28, 6, 0, 0), False),  # Saturday 06:00: Friday's window ends
        ((2026, 11, 28, 23, 0, 0), False),  # Saturday night: Saturday is not allowed
        ((2026, 11, 29, 3, 0, 0), False),  # Sunday early: Saturday's window, not allowed
        ((2026, 11, 27, 3, 0, 0), False),  # Friday early: Thursday's window, not allowed
    ],
)
def test_a_window_across_midnight_belongs_to_the_day_it_starts(wall: tuple[int, ...], is_open: bool) -> None:
    # GIVEN a 22:00-06:00 window allowed only on Fridays
    at = local(MADRID, *wall)
    # WHEN it is checked at a wall-clock instant
    # THEN the part after midnight counts as Friday's
    assert NIGHT_FRIDAY_ONLY.is_open(at, MADRID) is is_open


def test_a_window_across_midnight_closes_next_morning_and_reopens_the_next_friday_night() -> None:
    # GIVEN Friday 23:00 inside a Friday-only 22:00-06:00 window
    at = local(MADRID, 2026, 11, 27, 23)
    # WHEN it closes
    closing = NIGHT_FRIDAY_ONLY.next_closing(at, MADRID)
    # THEN that is Saturday 06:00, and it next opens on the next Friday at 22:00
    assert closing == local(MADRID, 2026, 11, 28, 6)
    assert NIGHT_FRIDAY_ONLY.next_opening(closing, MADRID) == local(MADRID, 2026, 12, 4, 22)


def test_an_every_day_window_across_midnight_opens_the_same_evening() -> None:
    # GIVEN a 22:00-06:00 window on every day, at 06:00
    window = SendingWindow(start=time(22), end=time(6))
    at = local(GUAYAQUIL, 2026, 11, 25, 6)
    # WHEN checked
    # THEN it is closed and opens at 22:00 the same day
    assert not window.is_open(at, GUAYAQUIL)
    assert window.next_opening(at, GUAYAQUIL) == local(GUAYAQUIL, 2026, 11, 25, 22)
    assert window.next_closing(local(GUAYAQUIL, 2026, 11, 25, 23), GUAYAQUIL) == local(GUAYAQUIL, 2026, 11, 26, 6)


def test_a_sunday_only_window_checked_right_after_it_closes_opens_a_week_later() -> None:
    # GIVEN a Sunday-only 09:00-10:00 window and Sunday 10:00
    window = SendingWindow(start=time(9), end=time(10), days=frozenset({6}))
    at = local(MADRID, 2026, 11, 29, 10)
    # WHEN the next opening is searched
    # THEN it is a full week later
    assert window.next_opening(at, MADRID) == local(MADRID, 2026, 12, 6, 9)


# New York, spring forward: 2026-03-08 02:00 EST becomes 03:00 EDT (07:00 UTC) ---------------------------------
def test_spring_forward_window_from_0130_to_0330_lasts_one_real_hour() -> None:
    # GIVEN a 01:30-03:30 window on the spring-forward day
    window = SendingWindow(start=time(1, 30), end=time(3, 30))
    # WHEN its opening and closing are computed from midnight
    opening = window.next_opening(local(NEW_YORK, 2026, 3, 8), NEW_YORK)
    closing = window.next_closing(opening, NEW_YORK)
    # THEN it opens at 01:30 EST, stays open over the switch, and closes at 03:30 EDT: one real hour
    assert opening == utc(2026, 3, 8, 6, 30)
    assert window.is_open(utc(2026, 3, 8, 6, 59, 59), NEW_YORK)  # 01:59:59 EST
    assert window.is_open(utc(2026, 3, 8, 7), NEW_YORK)  # 03:00 EDT
    assert closing == utc(2026, 3, 8, 7, 30)
    assert closing.isoformat() == "2026-03-08T03:30:00-04:00"
    # (same-zone datetimes subtract as wall clocks in Python: measure elapsed time in UTC)
    assert closing.astimezone(UTC) - opening.astimezone(UTC) == timedelta(hours=1)


def test_spring_forward_start_inside_the_gap_opens_when_the_gap_ends() -> None:
    # GIVEN a 02:30-04:00 window: 02:30 never happens on 2026-03-08 in New York
    window = SendingWindow(start=time(2, 30), end=time(4))
    # WHEN the opening is computed from 01:00 EST
    opening = window.next_opening(local(NEW_YORK, 2026, 3, 8, 1), NEW_YORK)
    # THEN it opens at the first real instant after the gap, 03:00 EDT, and is closed one second earlier
    assert opening.isoformat() == "2026-03-08T03:00:00-04:00"
    assert not window.is_open(utc(2026, 3, 8, 6, 59, 59), NEW_YORK)


def test_spring_forward_office_hours_follow_the_new_offset() -> None:
    # GIVEN office hours (every day) on the spring-forward Sunday
    window = SendingWindow(start=time(9), end=time(18))
    # WHEN opening and closing are computed
    opening = window.next_opening(local(NEW_YORK, 2026, 3, 8), NEW_YORK)
    closing = window.next_closing(opening, NEW_YORK)
    # THEN they are 09:00 and 18:00 EDT (13:00 and 22:00 UTC), one UTC hour earlier than the day before
    assert (opening, closing) == (utc(2026, 3, 8, 13), utc(2026, 3, 8, 22))
    assert window.next_opening(local(NEW_YORK, 2026, 3, 7), NEW_YORK) == utc(2026, 3, 7, 14)


# New York, fall back: 2026-11-01 02:00 EDT becomes 01:00 EST (06:00 UTC) ---------------------------------------
def test_fall_back_window_from_0130_to_0330_is_open_during_both_0130s() -> None:
    # GIVEN a 01:30-03:30 window on the fall-back day
    window = SendingWindow(start=time(1, 30), end=time(3, 30))
    # WHEN it is followed from midnight
    first_opening = window.next_opening(local(NEW_YORK, 2026, 11, 1), NEW_YORK)
    first_closing = window.next_closing(first_opening, NEW_YORK)
    second_opening = window.next_opening(first_closing, NEW_YORK)
    second_closing = window.next_closing(second_opening, NEW_YORK)
    # THEN it opens at 01:30 EDT, closes when the clock falls back to 01:00 EST,
    # reopens at 01:30 EST and closes at 03:30 EST
    # (a repeated wall time never compares equal to a datetime of another zone: compare in UTC)
    assert first_opening.astimezone(UTC) == utc(2026, 11, 1, 5, 30)
    assert (first_opening.hour, first_opening.minute, first_opening.fold) == (1, 30, 0)
    assert first_closing.astimezone(UTC) == utc(2026, 11, 1, 6)
    assert second_opening.astimezone(UTC) == utc(2026, 11, 1, 6, 30)
    assert (second_opening.hour, second_opening.minute, second_opening.fold) == (1, 30, 1)
    assert second_closing.astimezone(UTC) == utc(2026, 11, 1, 8, 30)
    assert second_closing.isoformat() == "2026-11-01T03:30:00-05:00"


def test_fall_back_moving_the_clock_back_into_a_window_reopens_it_at_the_switch() -> None:
    # GIVEN a 00:30-01:15 window on the fall-back day
    window = SendingWindow(start=time(0, 30), end=time(1, 15))
    # WHEN it closes at 01:15 EDT
    closing = window.next_closing(local(NEW_YORK, 2026, 11, 1, 0, 45), NEW_YORK)
    reopening = window.next_opening(closing, NEW_YORK)
    # THEN it reopens at the switch (wall clock back to 01:00, now EST) and closes again at 01:15 EST
    assert closing.astimezone(UTC) == utc(2026, 11, 1, 5, 15)
    assert reopening.astimezone(UTC) == utc(2026, 11, 1, 6)
    assert reopening.isoformat() == "2026-11-01T01:00:00-05:00"
    assert window.next_closing(reopening, NEW_YORK).astimezone(UTC) == utc(2026, 11, 1, 6, 15)


def test_fall_back_office_hours_follow_the_new_offset() -> None:
    # GIVEN office hours (every day) on the fall-back Sunday
    window = SendingWindow(start=time(9), end=time(18))
    # WHEN opening and closing are computed
    opening = window.next_opening(local(NEW_YORK, 2026, 11, 1), NEW_YORK)
    closing = window.next_closing(opening, NEW_YORK)
    # THEN they are 09:00 and 18:00 EST (14:00 and 23:00 UTC)
    assert (opening, closing) == (utc(2026, 11, 1, 14), utc(2026, 11, 1, 23))


def test_thirty_minute_dst_in_lord_howe_opens_at_the_end_of_its_gap() -> None:
    # GIVEN Lord Howe Island, whose clock jumps 02:00 -> 02:30 on 2026-10-04, and a window starting at 02:10
    zone = ZoneInfo("Australia/Lord_Howe")
    window = SendingWindow(start=time(2, 10), end=time(3))
    # WHEN the opening is computed from 01:00
    opening = window.next_opening(local(zone, 2026, 10, 4, 1), zone)
    # THEN it opens at 02:30 (+11:00), the first real instant after the gap
    assert opening.isoformat() == "2026-10-04T02:30:00+11:00"


# Edges of the interface ---------------------------------------------------------------------------------------
def test_no_window_is_always_open() -> None:
    # GIVEN no window and any instant
    at = utc(2026, 11, 29, 3)
    # WHEN the helpers are asked
    # THEN it is open and the next opening is the instant itself
    assert window_is_open(None, at, MADRID)
    assert next_opening(None, at, MADRID) == at


def test_helpers_delegate_to_the_window() -> None:
    # GIVEN office hours and Saturday noon
    at = local(MADRID, 2026, 11, 28, 12)
    # WHEN the helpers are asked
    # THEN they answer what the window answers
    assert not window_is_open(OFFICE_HOURS, at, MADRID)
    assert next_opening(OFFICE_HOURS, at, MADRID) == local(MADRID, 2026, 11, 30, 9)


def test_active_hours_become_a_window_with_weekday_numbers() -> None:
    # GIVEN active hours as the API takes them
    hours = ActiveHours(start="22:00", end="06:30", days=[Weekday.FRI, Weekday.MON, Weekday.SUN])
    # WHEN converted
    window = SendingWindow.from_active_hours(hours)
    # THEN times and weekday numbers carry over (Mon=0, Sun=6)
    assert window == SendingWindow(start=time(22), end=time(6, 30), days=frozenset({0, 4, 6}))
    assert window.crosses_midnight


def test_active_hours_without_days_allow_every_day() -> None:
    # GIVEN active hours with no days
    # WHEN converted
    window = SendingWindow.from_active_hours(ActiveHours(start="09:00", end="18:00"))
    # THEN the window allows every day
    assert window.days is None


def test_a_naive_instant_is_refused() -> None:
    # GIVEN an instant without a zone
    # WHEN it is checked
    # THEN the window refuses to guess
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE_HOURS.is_open(datetime(2026, 11, 27, 12), MADRID)


@pytest.mark.parametrize(
    ("start", "end", "days", "rule"),
    [
        (time(9), time(9), None, "must differ"),
        (time(9), time(18), frozenset(), "must not be empty"),
        (time(9), time(18), frozenset({7}), "0 \\(Monday\\) to 6 \\(Sunday\\)"),
        (time(9, tzinfo=UTC), time(18), None, "must not carry a time zone"),
    ],
)
def test_impossible_windows_are_refused(start: time, end: time, days: frozenset[int] | None, rule: str) -> None:
    # GIVEN bounds or days that could never make an open window
    # WHEN the window is built
    # THEN it is refused with the rule it breaks
    with pytest.raises(ValueError, match=rule):
        SendingWindow(start=start, end=end, days=days)
