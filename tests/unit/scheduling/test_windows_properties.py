"""Properties of sending windows over zones with odd offsets and DST rules, random windows and instants near switches.

The checks compare against a reference written straight from the definition ("the wall clock at the instant reads a
time in [start, end) of an allowed day's window") and scan every whole UTC minute in between. Window bounds are
whole minutes and every zone here changes offset on a whole minute, so each open stretch contains a whole minute:
a minute-by-minute scan misses none.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from wabacast.domain.windows import SendingWindow

ZONES = [
    "America/New_York",
    "Europe/Madrid",
    "America/Guayaquil",
    "Australia/Lord_Howe",  # 30-minute DST
    "Asia/Kolkata",  # +05:30, no DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",  # switches at midnight
    "Asia/Kathmandu",  # +05:45
    "UTC",
]
FIRST = datetime(2026, 1, 1, tzinfo=UTC)
LAST = datetime(2028, 1, 1, tzinfo=UTC)
ONE_MINUTE = timedelta(minutes=1)
ONE_SECOND = timedelta(seconds=1)
PROPERTY_SETTINGS = settings(max_examples=80, deadline=None)


@cache
def offset_changes(zone_name: str) -> tuple[datetime, ...]:
    """Every instant of 2026-2027 at which the zone's offset changes, found by a plain minute-level scan."""
    zone = ZoneInfo(zone_name)
    changes = []
    at = FIRST
    previous = at.astimezone(zone).utcoffset()
    while at < LAST:
        probe = at + timedelta(hours=1)
        if probe.astimezone(zone).utcoffset() != previous:
            minute = at
            while minute.astimezone(zone).utcoffset() == previous:
                minute += ONE_MINUTE
            changes.append(minute)
            previous = probe.astimezone(zone).utcoffset()
        at = probe
    return tuple(changes)


def reference_is_open(window: SendingWindow, at: datetime, zone: ZoneInfo) -> bool:
    wall = at.astimezone(zone)
    clock, day = wall.time().replace(tzinfo=None, fold=0), wall.weekday()

    def allowed(weekday: int) -> bool:
        return window.days is None or weekday in window.days

    if window.start < window.end:
        return allowed(day) and window.start <= clock < window.end
    return (clock >= window.start and allowed(day)) or (clock < window.end and allowed((day - 1) % 7))


def whole_minutes_between(first: datetime, last: datetime) -> list[datetime]:
    """Whole UTC minutes strictly between the two instants."""
    minute = first.astimezone(UTC).replace(second=0, microsecond=0) + ONE_MINUTE
    minutes = []
    while minute < last:
        minutes.append(minute)
        minute += ONE_MINUTE
    return minutes


# Bounds drawn often on the half hours where DST switches happen, sometimes anywhere in the day.
wall_times = st.one_of(
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 30])),
    st.builds(time, st.integers(0, 23), st.integers(0, 59)),
)
day_sets = st.one_of(st.none(), st.frozensets(st.integers(0, 6), min_size=1, max_size=7))


@st.composite
def windows(draw: st.DrawFn) -> SendingWindow:
    start = draw(wall_times)
    end = draw(wall_times.filter(lambda end: end != start))
    return SendingWindow(start=start, end=end, days=draw(day_sets))


zone_names = st.sampled_from(ZONES)


@st.composite
def instants(draw: st.DrawFn, zone_name: str) -> datetime:
    """Either anywhere in 2026-2027, or within a day and a half of one of the zone's offset changes."""
    changes = offset_changes(zone_name)
    seconds = draw(st.integers(-36 * 3600, 36 * 3600))
    microseconds = draw(st.sampled_from([0, 0, 0, 1, 500_000, 999_999]))
    if changes and draw(st.booleans()):
        anchor = draw(st.sampled_from(changes))
    else:
        anchor = FIRST + timedelta(seconds=draw(st.integers(0, int((LAST - FIRST).total_seconds()))))
    return anchor + timedelta(seconds=seconds, microseconds=microseconds)


@st.composite
def cases(draw: st.DrawFn) -> tuple[SendingWindow, ZoneInfo, datetime]:
    zone_name = draw(zone_names)
    return draw(windows()), ZoneInfo(zone_name), draw(instants(zone_name))


def test_the_reference_scan_finds_the_dst_switches() -> None:
    # GIVEN the zones of the properties
    # WHEN their offset changes of 2026-2027 are scanned
    # THEN the zones with DST switch four times and the others never, so "near a switch" instants exist
    assert len(offset_changes("America/New_York")) == 4
    assert len(offset_changes("Australia/Lord_Howe")) == 4
    assert len(offset_changes("America/Santiago")) == 4
    assert offset_changes("Asia/Kolkata") == ()
    assert datetime(2026, 3, 8, 7, tzinfo=UTC) in offset_changes("America/New_York")
    assert datetime(2026, 11, 1, 6, tzinfo=UTC) in offset_changes("America/New_York")


@PROPERTY_SETTINGS
@given(cases())
def test_is_open_agrees_with_the_wall_clock_definition(case: tuple[SendingWindow, ZoneInfo, datetime]) -> None:
    # GIVEN a window, a zone and an instant
    window, zone, at = case
    # WHEN the window is checked
    # THEN it answers what the wall-clock definition answers, whatever zone the instant is expressed in
    assert window.is_open(at, zone) is reference_is_open(window, at, zone)
    assert window.is_open(at.astimezone(zone), zone) is reference_is_open(window, at, zone)


@PROPERTY_SETTINGS
@given(cases())
def test_next_opening_is_the_first_open_instant(case: tuple[SendingWindow, ZoneInfo, datetime]) -> None:
    # GIVEN a window, a zone and an instant
    window, zone, at = case
    # WHEN the next opening is computed
    in_zone = window.next_opening(at, zone)
    # THEN it is open, in the zone, not before the instant, and equal to it exactly when the window is open now
    # (arithmetic and equality in UTC: Python subtracts same-zone datetimes as wall clocks)
    assert in_zone.tzinfo is zone
    opening = in_zone.astimezone(UTC)
    assert reference_is_open(window, opening, zone)
    assert opening >= at
    assert (opening == at) is reference_is_open(window, at, zone)
    # AND nothing between the instant and the opening is open, not even one second before it
    if opening > at:
        assert opening - at <= timedelta(days=8, hours=3)
        assert not any(reference_is_open(window, minute, zone) for minute in whole_minutes_between(at, opening))
        assert not reference_is_open(window, max(at, opening - ONE_SECOND), zone)


@PROPERTY_SETTINGS
@given(cases())
def test_next_closing_is_the_first_closed_instant(case: tuple[SendingWindow, ZoneInfo, datetime]) -> None:
    # GIVEN a window, a zone and an instant
    window, zone, at = case
    # WHEN the next closing is computed
    in_zone = window.next_closing(at, zone)
    assert in_zone.tzinfo is zone
    closing = in_zone.astimezone(UTC)
    # THEN a closed window answers the instant itself
    if not reference_is_open(window, at, zone):
        assert closing == at
        return
    # AND an open one answers a later closed instant, open one second before and at every minute in between
    assert closing > at
    assert not reference_is_open(window, closing, zone)
    assert reference_is_open(window, max(at, closing - ONE_SECOND), zone)
    assert all(reference_is_open(window, minute, zone) for minute in whole_minutes_between(at, closing))


@PROPERTY_SETTINGS
@given(cases())
def test_opening_then_closing_walks_the_window(case: tuple[SendingWindow, ZoneInfo, datetime]) -> None:
    # GIVEN a window, a zone and an instant
    window, zone, at = case
    # WHEN the next opening and then its closing are computed
    opening = window.next_opening(at, zone).astimezone(UTC)
    closing = window.next_closing(opening, zone).astimezone(UTC)
    # THEN the window is open for a positive stretch, and reopening from the closing moves strictly forward
    # (compared in UTC: Python orders same-zone datetimes by wall clock, which repeats on fall-back days)
    assert opening < closing
    assert window.next_opening(closing, zone).astimezone(UTC) > closing
