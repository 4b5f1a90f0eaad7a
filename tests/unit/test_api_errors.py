"""wabacast.api.errors._field_of: pydantic error locations as the dotted, camelCase paths clients send."""

from __future__ import annotations

import pytest

from wabacast.api.errors import _field_of


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (("body", "audience", "recipients", 3, "phoneNumber"), "audience.recipients[3].phoneNumber"),
        (("body", "name"), "name"),
        (("query", "limit"), "limit"),
        (("path", "accountId"), "accountId"),
        (("header", "authorization"), "authorization"),
        (("body", "schedule", "activeHours", "days", 0), "schedule.activeHours.days[0]"),
        (("body", "contacts", 2), "contacts[2]"),
        (("body", "matrix", 1, 2), "matrix[1][2]"),
        (("body", "variables", "function-after[_check_variable_value(), str]"), "variables"),
        (("body", "limits", "dict[str,int]", "messagesPerSecond"), "limits.messagesPerSecond"),
        (("audience", "contactTags", 1), "audience.contactTags[1]"),
    ],
)
def test_locations_become_dotted_paths(location: tuple[str | int, ...], expected: str) -> None:
    # GIVEN a pydantic error location from a request
    # WHEN it is turned into a field path
    field = _field_of(location)
    # THEN the request part is dropped, keys are dotted, indexes are bracketed, validator names are skipped
    assert field == expected


@pytest.mark.parametrize("location", [(), ("body",), ("query",), ("body", "function-after[_not_empty()]")])
def test_locations_without_a_field_give_none(location: tuple[str | int, ...]) -> None:
    # GIVEN a location naming no field (the whole body, or only a validator)
    # WHEN it is turned into a field path
    # THEN there is no field
    assert _field_of(location) is None


def test_a_field_called_body_inside_the_body_is_kept() -> None:
    # GIVEN a body field that happens to be called "body"
    # WHEN its location is turned into a path
    # THEN only the leading request part is dropped
    assert _field_of(("body", "body", "text")) == "body.text"
