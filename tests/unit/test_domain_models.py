"""Rules every value obeys wherever it enters: the annotated types and models of wabacast.domain.models."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from tests.unit.fakes import CONTENT_SID, META_CREDENTIALS, TWILIO_SID, TWILIO_TOKEN, phone
from wabacast.domain.models import (
    MAX_INLINE_RECIPIENTS,
    AccountLimits,
    ActiveHours,
    Attributes,
    Audience,
    MetaCredentials,
    Recipient,
    Tag,
    Template,
    TimeZoneName,
    TwilioCredentials,
    Variables,
    VariableValue,
    Weekday,
)

_timezone = TypeAdapter(TimeZoneName)
_variables = TypeAdapter(Variables)
_variable_value = TypeAdapter(VariableValue)
_attributes = TypeAdapter(Attributes)
_tag = TypeAdapter(Tag)


def _messages(error: ValidationError) -> str:
    return " | ".join(str(problem["msg"]) for problem in error.errors())


# Time zones ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Europe/Madrid", "UTC", "America/Argentina/Buenos_Aires", "Asia/Kolkata"])
def test_iana_time_zone_names_are_accepted(name: str) -> None:
    # GIVEN an IANA time zone name
    # WHEN it is validated
    result = _timezone.validate_python(name)
    # THEN it is kept as is
    assert result == name


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus_Mons",
        "europe/madrid",
        "Europe/Madrid ",
        "",
        "+02:00",
        "../../etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "Europe/../UTC",
        "Europe/Madrid/",
        "./UTC",
        "Europe\\Madrid",
    ],
)
def test_unknown_or_path_like_time_zone_names_are_refused(name: str) -> None:
    # GIVEN something that is not a time zone name from the catalogue (including file-system paths)
    # WHEN it is validated
    with pytest.raises(ValidationError) as caught:
        _timezone.validate_python(name)
    # THEN the message shows what a valid name looks like
    assert "must be an IANA time zone name such as 'Europe/Madrid'" in _messages(caught.value)


# Templates -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "language", "content_sid"),
    [
        ("welcome", "en", None),
        ("order_update_2", "en_US", None),
        ("promo", "pt_BR", CONTENT_SID),
        ("a" * 512, "fil", "HX" + "ABCDEF0123456789" * 2),
    ],
)
def test_valid_templates(name: str, language: str, content_sid: str | None) -> None:
    # GIVEN a template name, language and optional Content SID in the expected shapes
    # WHEN the template is built
    template = Template(name=name, language=language, content_sid=content_sid)
    # THEN it keeps them
    assert (template.name, template.language, template.content_sid) == (name, language, content_sid)


@pytest.mark.parametrize("name", ["Welcome", "order-update", "with space", "", "a" * 513, "café"])
def test_template_names_must_be_lowercase_digits_and_underscores(name: str) -> None:
    # GIVEN a template name outside [a-z0-9_]{1,512}
    # WHEN the template is built
    with pytest.raises(ValidationError) as caught:
        Template(name=name, language="en")
    # THEN the name is the field at fault
    assert caught.value.errors()[0]["loc"] == ("name",)


@pytest.mark.parametrize("language", ["EN", "en-US", "en_us", "english", "e", "en_US_x", "es_419", ""])
def test_template_languages_must_look_like_whatsapp_codes(language: str) -> None:
    # GIVEN a language code not shaped like "en" / "en_US"
    # WHEN the template is built
    with pytest.raises(ValidationError) as caught:
        Template(name="welcome", language=language)
    # THEN the language is the field at fault
    assert caught.value.errors()[0]["loc"] == ("language",)


@pytest.mark.parametrize("content_sid", ["HX123", "MG" + "0" * 32, "hx" + "0" * 32, "HX" + "g" * 32, "HX" + "0" * 33])
def test_content_sid_must_be_hx_and_32_hex_digits(content_sid: str) -> None:
    # GIVEN a malformed Twilio Content SID
    # WHEN the template is built
    with pytest.raises(ValidationError) as caught:
        Template(name="welcome", language="en", content_sid=content_sid)
    # THEN contentSid (snake_case in the domain) is the field at fault
    assert caught.value.errors()[0]["loc"] == ("content_sid",)


def test_template_reads_camel_case_aliases() -> None:
    # GIVEN the API's camelCase spelling
    # WHEN a template is validated from it
    template = Template.model_validate({"name": "welcome", "language": "en", "contentSid": CONTENT_SID})
    # THEN the Content SID lands in content_sid
    assert template.content_sid == CONTENT_SID


# Variables -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "plain text",
        "{{contact.name}}",
        "{{ contact.name }}",
        "{{contact.phoneNumber}}",
        "{{contact.attributes.city}}",
        "{{contact.city}}",
        "Hi {{contact.name}}, see you in {{contact.attributes.city}} on {{contact.date_2}}",
        "",
    ],
)
def test_supported_placeholders_are_accepted(value: str) -> None:
    # GIVEN a variable value with supported {{contact.*}} placeholders (or none)
    # WHEN it is validated
    result = _variable_value.validate_python(value)
    # THEN it is kept untouched for the sender to render
    assert result == value


@pytest.mark.parametrize(
    "value",
    [
        "{{foo}}",
        "{{contact.}}",
        "{{contact}}",
        "{{}}",
        "{{ }}",
        "{{contact.attributes.}}",
        "{{contact.attributes.1st}}",
        "{{contact.first name}}",
        "{{Contact.name}}",
        "{{contact.name.first}}",
        "Hello {{contact.name}} and {{account.id}}",
    ],
)
def test_unsupported_placeholders_are_refused(value: str) -> None:
    # GIVEN a value with a placeholder that does not name a contact field or attribute
    # WHEN it is validated
    with pytest.raises(ValidationError) as caught:
        _variable_value.validate_python(value)
    # THEN the message quotes the placeholder and lists the supported forms
    message = _messages(caught.value)
    assert "is not supported" in message
    assert "{{contact.attributes.<name>}}" in message


@pytest.mark.parametrize(
    "value", ["{{contact.name", "contact.name}}", "Hi {{contact.name}} {{", "}} {{contact.name}}", "{{", "a }} b"]
)
def test_unbalanced_braces_are_refused(value: str) -> None:
    # GIVEN a value with a "{{" or "}}" that does not close a placeholder
    # WHEN it is validated
    with pytest.raises(ValidationError) as caught:
        _variable_value.validate_python(value)
    # THEN the message says the braces are unbalanced
    assert "unbalanced" in _messages(caught.value)


def test_variable_keys_and_sizes_are_bounded() -> None:
    # GIVEN variables keyed by position or name
    valid = {"1": "{{contact.name}}", "first_name": "x" * 1024}
    # WHEN they are validated, and when a key or value breaks the bounds
    result = _variables.validate_python(valid)
    # THEN valid ones pass and the others are refused
    assert result == valid
    for invalid in ({"bad key": "x"}, {"k" * 65: "x"}, {"1": "x" * 1025}, {str(n): "x" for n in range(101)}):
        with pytest.raises(ValidationError):
            _variables.validate_python(invalid)


def test_recipient_variables_are_checked_too() -> None:
    # GIVEN an inline recipient with an unsupported placeholder
    # WHEN it is validated
    with pytest.raises(ValidationError) as caught:
        Recipient.model_validate({"phoneNumber": phone(1), "variables": {"1": "{{foo}}"}})
    # THEN the error points at that variable
    assert caught.value.errors()[0]["loc"][:2] == ("variables", "1")


# Active hours --------------------------------------------------------------------------------------------------
def test_active_hours_window_is_kept() -> None:
    # GIVEN a daytime window on weekdays
    # WHEN it is built
    hours = ActiveHours(start="09:00", end="18:30", days=[Weekday.MON, Weekday.FRI])
    # THEN its times are readable as times
    assert (hours.start_time().hour, hours.end_time().minute) == (9, 30)


def test_overnight_window_is_allowed() -> None:
    # GIVEN a window whose end is before its start
    # WHEN it is built
    hours = ActiveHours(start="22:00", end="06:00")
    # THEN it is accepted: it runs past midnight
    assert hours.start_time() > hours.end_time()


def test_empty_window_is_refused() -> None:
    # GIVEN a window starting and ending at the same minute
    # WHEN it is built
    with pytest.raises(ValidationError) as caught:
        ActiveHours(start="09:00", end="09:00")
    # THEN the message explains it would never send
    assert "start and end must differ" in _messages(caught.value)


def test_repeated_days_are_refused() -> None:
    # GIVEN a day listed twice
    # WHEN the window is built
    with pytest.raises(ValidationError) as caught:
        ActiveHours(start="09:00", end="17:00", days=["MON", "TUE", "MON"])
    # THEN the message says days must not repeat
    assert "days must not repeat" in _messages(caught.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"start": "24:00", "end": "06:00"},
        {"start": "9:00", "end": "17:00"},
        {"start": "09:60", "end": "17:00"},
        {"start": "09:00", "end": "17:00", "days": []},
        {"start": "09:00", "end": "17:00", "days": ["MONDAY"]},
    ],
)
def test_malformed_active_hours_are_refused(fields: dict[str, Any]) -> None:
    # GIVEN times not in HH:MM (00-23, 00-59), an empty day list or an unknown day
    # WHEN the window is built
    # THEN it is refused
    with pytest.raises(ValidationError):
        ActiveHours.model_validate(fields)


# Audience ------------------------------------------------------------------------------------------------------
def test_audience_needs_recipients_or_tags() -> None:
    # GIVEN an audience with neither recipients nor contact tags
    # WHEN it is built
    with pytest.raises(ValidationError) as caught:
        Audience()
    # THEN the message says one of them is needed
    assert "needs at least one of recipients or contactTags" in _messages(caught.value)


def test_audience_of_tags_only_is_enough() -> None:
    # GIVEN an audience given only by contact tags
    # WHEN it is built
    audience = Audience(contact_tags=["vip"])
    # THEN it is accepted with no inline recipients
    assert audience.recipients == []


def test_audience_accepts_up_to_the_inline_limit() -> None:
    # GIVEN exactly MAX_INLINE_RECIPIENTS recipients
    recipients = [{"phoneNumber": phone(n)} for n in range(MAX_INLINE_RECIPIENTS)]
    # WHEN the audience is built
    audience = Audience.model_validate({"recipients": recipients})
    # THEN all of them are kept
    assert len(audience.recipients) == MAX_INLINE_RECIPIENTS == 1000


def test_audience_refuses_more_than_the_inline_limit() -> None:
    # GIVEN one recipient more than the inline limit
    recipients = [{"phoneNumber": phone(n)} for n in range(MAX_INLINE_RECIPIENTS + 1)]
    # WHEN the audience is built
    with pytest.raises(ValidationError) as caught:
        Audience.model_validate({"recipients": recipients})
    # THEN the recipients list is the field at fault
    assert caught.value.errors()[0]["loc"] == ("recipients",)


def test_audience_recipient_numbers_are_normalized() -> None:
    # GIVEN a recipient written with formatting
    # WHEN the audience is built
    audience = Audience.model_validate({"recipients": [{"phoneNumber": "0034 612 34 56 78"}]})
    # THEN the stored number is E.164
    assert audience.recipients[0].phone_number == "+34612345678"


# Account limits ------------------------------------------------------------------------------------------------
def test_account_limits_defaults() -> None:
    # GIVEN no limits
    # WHEN defaults are taken
    limits = AccountLimits()
    # THEN they are 80 messages per second and 1000 recipients a day
    assert (limits.messages_per_second, limits.daily_recipient_limit) == (80, 1000)


@pytest.mark.parametrize(("mps", "daily"), [(1, 1), (1000, 10_000_000)])
def test_account_limits_bounds_are_inclusive(mps: int, daily: int) -> None:
    # GIVEN limits exactly at the bounds
    # WHEN they are built
    limits = AccountLimits(messages_per_second=mps, daily_recipient_limit=daily)
    # THEN they are accepted
    assert (limits.messages_per_second, limits.daily_recipient_limit) == (mps, daily)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"messages_per_second": 0}, "messages_per_second"),
        ({"messages_per_second": 1001}, "messages_per_second"),
        ({"daily_recipient_limit": 0}, "daily_recipient_limit"),
        ({"daily_recipient_limit": 10_000_001}, "daily_recipient_limit"),
        ({"messagesPerSecond": -5}, "messagesPerSecond"),
    ],
)
def test_account_limits_out_of_bounds_are_refused(fields: dict[str, int], field: str) -> None:
    # GIVEN a limit outside its range
    # WHEN the limits are built
    with pytest.raises(ValidationError) as caught:
        AccountLimits.model_validate(fields)
    # THEN that limit is the field at fault
    assert caught.value.errors()[0]["loc"] == (field,)


# Credentials ---------------------------------------------------------------------------------------------------
def test_twilio_credentials_hint_shows_only_the_sid_ends() -> None:
    # GIVEN valid Twilio credentials
    credentials = TwilioCredentials(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN)
    # WHEN their hint and repr are taken
    hint, shown = credentials.hint(), repr(credentials)
    # THEN the hint is "AC..." plus the last four characters, and the token never shows
    assert hint == "AC...cdef"
    assert TWILIO_TOKEN not in shown


def test_twilio_hint_example() -> None:
    # GIVEN an account SID ending in 1234
    credentials = TwilioCredentials(account_sid="AC" + "0" * 28 + "1234", auth_token=TWILIO_TOKEN)
    # WHEN the hint is taken
    # THEN it is "AC...1234"
    assert credentials.hint() == "AC...1234"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"account_sid": "AC123", "auth_token": TWILIO_TOKEN}, "account_sid"),
        ({"account_sid": "MG" + "0" * 32, "auth_token": TWILIO_TOKEN}, "account_sid"),
        ({"account_sid": TWILIO_SID, "auth_token": "not-a-token"}, "auth_token"),
        ({"account_sid": TWILIO_SID, "auth_token": "f" * 31}, "auth_token"),
        (
            {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "messaging_service_sid": "MG1"},
            "messaging_service_sid",
        ),
    ],
)
def test_twilio_credentials_patterns(fields: dict[str, str], field: str) -> None:
    # GIVEN a Twilio credential field in the wrong shape
    # WHEN the credentials are built
    with pytest.raises(ValidationError) as caught:
        TwilioCredentials.model_validate(fields)
    # THEN that field is at fault
    assert caught.value.errors()[0]["loc"] == (field,)


def test_twilio_messaging_service_sid_is_optional_but_shaped() -> None:
    # GIVEN a valid messaging service SID
    sid = "MG" + "a" * 32
    # WHEN the credentials are built with it
    credentials = TwilioCredentials(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, messaging_service_sid=sid)
    # THEN it is kept
    assert credentials.messaging_service_sid == sid


def test_meta_credentials_hint_shows_the_phone_number_id_end() -> None:
    # GIVEN valid Meta credentials whose phone number id ends in 1234
    credentials = MetaCredentials.model_validate(META_CREDENTIALS)
    # WHEN the hint and repr are taken
    hint, shown = credentials.hint(), repr(credentials)
    # THEN the hint is "...1234" and neither secret shows
    assert hint == "...1234"
    assert META_CREDENTIALS["accessToken"] not in shown
    assert META_CREDENTIALS["appSecret"] not in shown


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phoneNumberId": "1234"}, "phoneNumberId"),
        ({"phoneNumberId": "12345abc"}, "phoneNumberId"),
        ({"wabaId": "x" * 10}, "wabaId"),
        ({"accessToken": "short"}, "accessToken"),
        ({"accessToken": "x" * 4097}, "accessToken"),
        ({"appSecret": "z" * 32}, "appSecret"),
    ],
)
def test_meta_credentials_patterns(change: dict[str, str], field: str) -> None:
    # GIVEN one Meta credential field in the wrong shape
    # WHEN the credentials are built
    with pytest.raises(ValidationError) as caught:
        MetaCredentials.model_validate({**META_CREDENTIALS, **change})
    # THEN that field is at fault, named as it was sent (camelCase)
    assert caught.value.errors()[0]["loc"] == (field,)


# Tags and attributes -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tag", ["vip", "VIP", "9lives", "a.b:c-d_e", "x" * 64])
def test_valid_tags(tag: str) -> None:
    # GIVEN a tag of letters, digits and . : - _ starting with a letter or digit, at most 64 long
    # WHEN it is validated
    # THEN it is accepted
    assert _tag.validate_python(tag) == tag


@pytest.mark.parametrize("tag", ["", "-vip", "_vip", ".vip", "has space", "vip!", "x" * 65, "ñandú"])
def test_invalid_tags(tag: str) -> None:
    # GIVEN a tag outside the pattern
    # WHEN it is validated
    # THEN it is refused
    with pytest.raises(ValidationError):
        _tag.validate_python(tag)


def test_valid_attributes() -> None:
    # GIVEN attributes of every supported type, with names up to 64 characters and strings up to 1024
    attributes = {"city": "Madrid", "age": 42, "score": 9.5, "vip": True, "_private": "x" * 1024, "a" * 64: 1}
    # WHEN they are validated
    # THEN they are kept as they are
    assert _attributes.validate_python(attributes) == attributes


@pytest.mark.parametrize("name", ["1city", "home-town", "with space", "a" * 65, "", "città"])
def test_attribute_names_must_be_identifiers(name: str) -> None:
    # GIVEN an attribute name that is not an identifier of up to 64 characters
    # WHEN the attributes are validated
    with pytest.raises(ValidationError) as caught:
        _attributes.validate_python({name: "x"})
    # THEN the message names the attribute
    assert f"attribute name '{name}' must match" in _messages(caught.value)


def test_attribute_string_values_are_bounded() -> None:
    # GIVEN a string value of 1025 characters
    # WHEN the attributes are validated
    with pytest.raises(ValidationError) as caught:
        _attributes.validate_python({"bio": "x" * 1025})
    # THEN the message names the attribute and the limit
    assert "attribute 'bio' is longer than 1024 characters" in _messages(caught.value)


def test_at_most_fifty_attributes() -> None:
    # GIVEN 50 and then 51 attributes
    fifty = {f"a{n}": n for n in range(50)}
    # WHEN they are validated
    # THEN 50 pass and 51 are refused
    assert len(_attributes.validate_python(fifty)) == 50
    with pytest.raises(ValidationError):
        _attributes.validate_python({**fifty, "one_more": 1})
