"""wabacast.phone: the one place where phone numbers are parsed and normalized to E.164."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from wabacast.phone import FROM_STORAGE, PhoneNumber, normalize_phone_number

NO_PLUS = "must be an international number starting with + and the country code (E.164)"
NOT_A_NUMBER = "is not a phone number"
INVALID_FOR_COUNTRY = "is not a valid phone number for its country"


class _Holder(BaseModel):
    phone_number: PhoneNumber


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+14155552671", "+14155552671"),
        ("+1 (415) 555-2671", "+14155552671"),
        ("+34 612 34 56 78", "+34612345678"),
        ("+34-612-345-678", "+34612345678"),
        ("  +44 20 7946 0958  ", "+442079460958"),
        ("+49 30 901820", "+4930901820"),
    ],
)
def test_formatted_international_numbers_become_e164(raw: str, expected: str) -> None:
    # GIVEN a number written with spaces, dashes, brackets or surrounding blanks
    # WHEN it is normalized
    result = normalize_phone_number(raw)
    # THEN only "+" and digits remain
    assert result == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("0034612345678", "+34612345678"), ("0044 20 7946 0958", "+442079460958")]
)
def test_00_international_prefix_is_read_as_plus(raw: str, expected: str) -> None:
    # GIVEN a number dialled with the 00 international prefix
    # WHEN it is normalized
    result = normalize_phone_number(raw)
    # THEN the 00 is read as "+"
    assert result == expected


@pytest.mark.parametrize("raw", ["612345678", "34612345678", "(+34) 612 345 678", "", "   ", "0 612 345 678"])
def test_numbers_without_a_country_code_are_refused(raw: str) -> None:
    # GIVEN a national or otherwise country-less number
    # WHEN it is normalized
    with pytest.raises(ValueError, match=r"^must be an international number") as caught:
        normalize_phone_number(raw)
    # THEN the message explains the E.164 requirement
    assert str(caught.value) == NO_PLUS


@pytest.mark.parametrize("raw", ["+abc", "+", "00", "+ call me"])
def test_garbage_after_the_plus_is_not_a_phone_number(raw: str) -> None:
    # GIVEN text that phonenumbers cannot parse
    # WHEN it is normalized
    with pytest.raises(ValueError, match="phone number") as caught:
        normalize_phone_number(raw)
    # THEN the message says it is not a phone number, with the parser's reason
    assert str(caught.value).startswith(f"{NOT_A_NUMBER} (")


@pytest.mark.parametrize("raw", ["+34 123", "+1 000 000 0000", "+34 999 999 999999", "+1 415 555 26"])
def test_numbers_invalid_for_their_country_are_refused(raw: str) -> None:
    # GIVEN numbers that parse but cannot exist in their country's numbering plan
    # WHEN they are normalized
    with pytest.raises(ValueError, match="phone number") as caught:
        normalize_phone_number(raw)
    # THEN the message says the number is not valid for its country
    assert str(caught.value) == INVALID_FOR_COUNTRY


@pytest.mark.parametrize("raw", ["+999 1234567", "+44 1"])
def test_unknown_country_codes_and_too_short_numbers_are_not_phone_numbers(raw: str) -> None:
    # GIVEN an unassigned country calling code, or a number too short to parse
    # WHEN it is normalized
    with pytest.raises(ValueError, match="phone number") as caught:
        normalize_phone_number(raw)
    # THEN it is refused as "not a phone number", with the parser's reason in brackets
    assert str(caught.value).startswith(f"{NOT_A_NUMBER} (")
    assert str(caught.value).endswith(")")


def test_phone_number_field_normalizes_on_input() -> None:
    # GIVEN a model with a PhoneNumber field
    # WHEN it is validated from user input
    holder = _Holder.model_validate({"phone_number": "0034 612 34 56 78"})
    # THEN the stored value is E.164
    assert holder.phone_number == "+34612345678"


def test_phone_number_field_rejects_invalid_input() -> None:
    # GIVEN an invalid number from user input
    # WHEN it is validated
    with pytest.raises(ValidationError) as caught:
        _Holder.model_validate({"phone_number": "612345678"})
    # THEN the validation error carries the normalization message
    assert NO_PLUS in caught.value.errors()[0]["msg"]


def test_phone_number_from_storage_is_not_parsed_again() -> None:
    # GIVEN a value read back from storage (which, by contract, was normalized on the way in)
    stored = "+34 123"  # would be refused as user input
    # WHEN it is validated with the FROM_STORAGE context
    holder = _Holder.model_validate({"phone_number": stored}, context={FROM_STORAGE: True})
    # THEN it is kept exactly as stored, without calling phonenumbers
    assert holder.phone_number == stored


@pytest.mark.parametrize("context", [None, {}, {FROM_STORAGE: False}, {"other": True}])
def test_phone_number_without_the_storage_flag_is_parsed(context: dict[str, bool] | None) -> None:
    # GIVEN a validation context that does not carry a true FROM_STORAGE flag
    # WHEN an invalid number is validated
    with pytest.raises(ValidationError):
        _Holder.model_validate({"phone_number": "+34 123"}, context=context)
    # THEN it is parsed and refused like any user input
