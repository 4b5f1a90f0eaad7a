"""Pure delivery rules: variable rendering, active hours, job ids, backoff, sender concurrency."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wabacast.adapters.sqs import sender_concurrency
from wabacast.domain.jobs import job_id_for
from wabacast.domain.models import ActiveHours, Contact, Schedule, Weekday
from wabacast.logic.rendering import MissingVariableError, render_variables
from wabacast.logic.scheduling import window_open
from wabacast.logic.sender import BACKOFF_CAP_S, backoff_seconds

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _contact(**attributes: str | int | float | bool) -> Contact:
    return Contact(phone_number="+14155552671", name="Ana", attributes=dict(attributes), created_at=NOW, updated_at=NOW)


def test_render_substitutes_contact_fields_and_attributes() -> None:
    # GIVEN static, name, phone and attribute variables (long and short attribute forms)
    variables = {"1": "Hi {{contact.name}}", "2": "{{ contact.attributes.city }}", "3": "{{contact.tier}}", "4": "x"}
    # WHEN rendered for a contact
    rendered = render_variables(variables, {}, "+14155552671", _contact(city="Oslo", tier=2))
    # THEN every placeholder is replaced, numbers as text
    assert rendered == {"1": "Hi Ana", "2": "Oslo", "3": "2", "4": "x"}


def test_recipient_variables_override_the_queue_ones() -> None:
    # GIVEN a queue variable and an inline recipient's own value for it
    # WHEN rendered
    rendered = render_variables({"1": "{{contact.name}}", "2": "b"}, {"1": "Bo"}, "+14155552671", None)
    # THEN the recipient's value wins and needs no contact
    assert rendered == {"1": "Bo", "2": "b"}


@pytest.mark.parametrize("template", ["{{contact.name}}", "{{contact.attributes.city}}", "{{contact.city}}"])
def test_missing_value_names_the_variable(template: str) -> None:
    # GIVEN a recipient without that value
    # WHEN rendered
    with pytest.raises(MissingVariableError) as missing:
        render_variables({"1": template}, {}, "+14155552671", None)
    # THEN the error names the variable and placeholder (it becomes the job's skip reason)
    assert missing.value.variable == "1"
    assert template in str(missing.value)


def test_phone_number_placeholder_needs_no_contact() -> None:
    # GIVEN / WHEN / THEN
    assert render_variables({"1": "{{contact.phoneNumber}}"}, {}, "+14155552671", None) == {"1": "+14155552671"}


def _schedule(start: str, end: str, days: list[Weekday] | None = None, timezone: str = "Europe/Madrid") -> Schedule:
    return Schedule(timezone=timezone, active_hours=ActiveHours(start=start, end=end, days=days))


@pytest.mark.parametrize(
    ("utc_hour", "expected"),
    [(7, True), (16, True), (17, False), (6, False)],  # Madrid is UTC+1 in November: 08:00..17:59 local
)
def test_daytime_window_in_the_schedule_time_zone(utc_hour: int, expected: bool) -> None:
    # GIVEN a 08:00-18:00 window in Madrid
    schedule = _schedule("08:00", "18:00")
    # WHEN checked at a UTC instant
    moment = datetime(2026, 11, 25, utc_hour, 30, tzinfo=UTC)
    # THEN local time decides
    assert window_open(schedule, moment) is expected


def test_overnight_window_belongs_to_the_day_it_started() -> None:
    # GIVEN a 22:00-06:00 window on Fridays only (UTC)
    schedule = _schedule("22:00", "06:00", [Weekday.FRI], timezone="UTC")
    # WHEN checked on Saturday 02:00 and Sunday 02:00
    saturday_night = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    sunday_night = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    # THEN Saturday 02:00 is still Friday's window; Sunday 02:00 is Saturday's, which is not allowed
    assert window_open(schedule, saturday_night) is True
    assert window_open(schedule, sunday_night) is False


def test_no_window_always_sends() -> None:
    assert window_open(Schedule(timezone="UTC"), NOW) is True


def test_job_ids_are_deterministic_per_queue_and_number() -> None:
    # GIVEN / WHEN / THEN: same queue and number, same job; any difference, another job
    assert job_id_for("q_1", "+14155552671") == job_id_for("q_1", "+14155552671")
    assert job_id_for("q_1", "+14155552671", 2) == job_id_for("q_1", "+14155552671", 2)
    # each run of a recurring queue has its own jobs; run 1 keeps the ids queues always had
    assert job_id_for("q_1", "+14155552671", 2) != job_id_for("q_1", "+14155552671")
    assert job_id_for("q_1", "+14155552671", 1) == job_id_for("q_1", "+14155552671")
    assert job_id_for("q_1", "+14155552671") != job_id_for("q_2", "+14155552671")
    assert job_id_for("q_1", "+14155552671") != job_id_for("q_1", "+14155552672")


def test_backoff_doubles_per_attempt_up_to_the_cap() -> None:
    assert [backoff_seconds(attempt) for attempt in (1, 2, 3, 4)] == [15, 30, 60, 120]
    assert backoff_seconds(20) == BACKOFF_CAP_S


@pytest.mark.parametrize(
    ("mps", "batch_time_s", "expected"),
    [(1, 0.8, 2), (10, 0.8, 2), (80, 0.8, 8), (1000, 0.8, 81), (1000, 0.3, 31), (80_000, 1.0, 1000)],
)
def test_sender_concurrency_is_the_rate_times_the_batch_time_over_the_batch_size(
    mps: int, batch_time_s: float, expected: int
) -> None:
    # GIVEN an account's rate and the time a batch takes besides its rate slots
    # WHEN the sender mapping is sized
    # THEN it has rate x batch time / 10 invocations (each carries 10 messages per batch time) plus one, 2..1000
    assert sender_concurrency(mps, batch_time_s) == expected
