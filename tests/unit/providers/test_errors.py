"""The classification table: provider codes first, then HTTP status fallbacks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from wabacast.domain.jobs import ErrorClass
from wabacast.providers.errors import (
    LOCAL_RULES,
    META_ERRORS,
    TWILIO_ERRORS,
    classify,
    local_error,
    lookup,
    resets_after,
    table_rows,
)

RETRYABLE = ErrorClass.RETRYABLE
PERMANENT = ErrorClass.PERMANENT
OPTED_OUT = ErrorClass.OPTED_OUT
PAUSE_QUEUE = ErrorClass.PAUSE_QUEUE
UNKNOWN_OUTCOME = ErrorClass.UNKNOWN_OUTCOME


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        # Retryable: Meta trouble and throughput limits.
        (130429, 429, RETRYABLE),
        (131056, 400, RETRYABLE),
        (131057, 400, RETRYABLE),
        (131000, 500, RETRYABLE),
        (131016, 503, RETRYABLE),
        (1, 500, RETRYABLE),
        (2, 503, RETRYABLE),
        (4, 400, RETRYABLE),
        (80007, 400, RETRYABLE),
        # Permanent: this message cannot go.
        (131026, 400, PERMANENT),
        (131047, 400, PERMANENT),
        (132000, 400, PERMANENT),
        (132001, 404, PERMANENT),
        (131008, 400, PERMANENT),
        (131009, 400, PERMANENT),
        (100, 400, PERMANENT),
        # Opted out of marketing only.
        (131050, 400, ErrorClass.OPTED_OUT_MARKETING),
        # Account or template trouble.
        (131048, 400, PAUSE_QUEUE),
        (132015, 400, PAUSE_QUEUE),
        (132016, 400, PAUSE_QUEUE),
        (131031, 403, PAUSE_QUEUE),
        (190, 401, PAUSE_QUEUE),
        (10, 403, PAUSE_QUEUE),
        (200, 403, PAUSE_QUEUE),
        (368, 403, PAUSE_QUEUE),
    ],
)
def test_meta_codes_classify_as_the_table_says(code: int, status: int, expected: ErrorClass) -> None:
    # GIVEN a Meta error code and the HTTP status it comes with
    # WHEN it is classified, as an int and as a string
    # THEN both give the expected class
    assert classify("meta", code, status) is expected
    assert classify("meta", str(code), status) is expected


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (20429, 429, RETRYABLE),
        (63017, 429, RETRYABLE),
        (21211, 400, PERMANENT),
        (21614, 400, PERMANENT),
        (63003, 400, PERMANENT),
        (63016, 400, PERMANENT),
        (63027, 400, PERMANENT),
        (63028, 400, PERMANENT),
        (21610, 400, OPTED_OUT),
        (20003, 401, PAUSE_QUEUE),
        (21606, 400, PAUSE_QUEUE),
        (63007, 400, PAUSE_QUEUE),
        (63018, 400, PAUSE_QUEUE),
        (63038, 429, PAUSE_QUEUE),
        (21701, 400, PAUSE_QUEUE),
        (63040, 400, PAUSE_QUEUE),
    ],
)
def test_twilio_codes_classify_as_the_table_says(code: int, status: int, expected: ErrorClass) -> None:
    # GIVEN a Twilio error code
    # WHEN it is classified
    # THEN it gets the class of its row
    assert classify("twilio", code, status) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, RETRYABLE), (500, RETRYABLE), (502, RETRYABLE), (503, RETRYABLE), (408, RETRYABLE),
     (400, PERMANENT), (404, PERMANENT), (403, PERMANENT), (422, PERMANENT), (401, PAUSE_QUEUE)],
)  # fmt: skip
@pytest.mark.parametrize("provider", ["meta", "twilio", "sandbox"])
def test_unknown_codes_fall_back_on_the_http_status(provider: str, status: int, expected: ErrorClass) -> None:
    # GIVEN a code that is in no table (or no code at all)
    # WHEN classified with an HTTP status
    # THEN the status decides: 429/5xx/408 retry, 401 pauses, other 4xx are permanent
    assert classify(provider, 999_999, status) is expected
    assert classify(provider, None, status) is expected


def test_a_known_code_wins_over_its_http_status() -> None:
    # GIVEN codes whose class differs from what their HTTP status alone would say
    # WHEN classified
    # THEN the code decides
    assert classify("meta", 131056, 400) is RETRYABLE  # a 400 that is a rate limit
    assert classify("meta", 131000, 500) is RETRYABLE
    assert classify("meta", 190, 400) is PAUSE_QUEUE
    assert classify("twilio", 21211, 500) is PERMANENT


def test_meta_subcode_33_on_code_100_pauses_the_queue() -> None:
    # GIVEN code 100 with subcode 33 (the phone number id does not exist for this token)
    # WHEN classified with and without the subcode
    # THEN the subcode row wins; plain 100 stays permanent
    assert classify("meta", 100, 400, subcode=33) is PAUSE_QUEUE
    assert classify("meta", 100, 400, subcode=12) is PERMANENT
    assert classify("meta", 100, 400) is PERMANENT


def test_meta_permission_range_200_to_299_pauses_the_queue() -> None:
    # GIVEN Graph API permission codes anywhere in 200-299
    # WHEN classified
    # THEN they pause the queue, and 300 (outside the range) falls back on the status
    assert classify("meta", 200, 403) is PAUSE_QUEUE
    assert classify("meta", 299, 403) is PAUSE_QUEUE
    assert classify("meta", 300, 400) is PERMANENT


def test_sandbox_uses_the_meta_table_and_twilio_codes_are_not_meta_codes() -> None:
    # GIVEN the sandbox (Meta API) and a Twilio code sent as if it were Meta's
    # WHEN classified
    # THEN the sandbox reads the Meta table, and a Meta lookup never matches a Twilio row
    assert classify("sandbox", 131050, 400) is ErrorClass.OPTED_OUT_MARKETING
    assert classify("SANDBOX", 131048, 400) is PAUSE_QUEUE
    assert classify("meta", 21610, 400) is PERMANENT
    assert lookup("meta", 21610) is None


def test_without_any_http_status() -> None:
    # GIVEN no HTTP status (a status callback's error code, or nothing answered at all)
    # WHEN classified
    # THEN a known code keeps its class, an unknown code is permanent, and nothing at all is retryable
    assert classify("twilio", 21610, None) is OPTED_OUT
    assert classify("twilio", 12345, None) is PERMANENT
    assert classify("meta", None, None) is RETRYABLE
    assert classify("meta", "  ", None) is RETRYABLE


def test_an_error_with_a_success_status_is_an_unknown_outcome() -> None:
    # GIVEN an unknown code with a 2xx status (should not happen)
    # WHEN classified
    # THEN it is never resent
    assert classify("meta", 999_999, 200) is UNKNOWN_OUTCOME


def test_the_briefs_opt_out_and_pause_rows_are_exactly_these() -> None:
    # GIVEN the tables
    # WHEN their opted-out rows are listed
    # THEN "unsubscribed" (Twilio) opts a number out of everything, "user stopped marketing" (Meta) of marketing
    opted_out = {(provider, code) for provider, code, _, cls in table_rows() if cls is OPTED_OUT}
    assert opted_out == {("twilio", "21610")}
    marketing = {(provider, code) for provider, code, _, cls in table_rows() if cls is ErrorClass.OPTED_OUT_MARKETING}
    assert marketing == {("meta", "131050")}


def test_every_row_has_a_meaning_and_numeric_code() -> None:
    # GIVEN both tables
    # WHEN every row is inspected
    # THEN codes are digits (or digits/digits for a subcode) and each row says what it means
    for table in (META_ERRORS, TWILIO_ERRORS):
        for code, rule in table.items():
            assert all(part.isdigit() for part in code.split("/")), code
            assert rule.meaning.strip()
            assert "|" not in rule.meaning  # it renders into a Markdown table
    assert len(table_rows()) == len(META_ERRORS) + len(TWILIO_ERRORS)


def test_local_errors_take_their_class_from_the_table() -> None:
    # GIVEN each code wabacast raises itself
    # WHEN turned into a ProviderError
    # THEN the class is the table's and the detail is in the message
    for code, rule in LOCAL_RULES.items():
        error = local_error(code, "detail here", http_status=None)
        assert error.code == code
        assert error.error_class is rule.error_class
        assert "detail here" in error.message
    assert local_error("READ_TIMEOUT", "").error_class is UNKNOWN_OUTCOME
    assert local_error("CONNECT_ERROR", "").error_class is RETRYABLE


@pytest.mark.parametrize(("provider", "code"), [("meta", 131049), ("sandbox", "131049"), ("twilio", 63049)])
@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("+16505550100", PERMANENT),  # US: Meta delivers no marketing template there since April 2025
        ("16505550100", PERMANENT),  # Meta's recipient_id has no "+"
        ("whatsapp:+14155550100", PERMANENT),  # Twilio's address
        ("+34600000001", ErrorClass.RETRY_LATER),
        ("+447700900123", ErrorClass.RETRY_LATER),
        (None, ErrorClass.RETRY_LATER),  # callers that do not know the recipient get the general rule
    ],
)
def test_the_marketing_limit_is_permanent_for_plus_one_numbers_only(
    provider: str, code: int | str, recipient: str | None, expected: ErrorClass
) -> None:
    # GIVEN the per-user marketing limit (Meta 131049, Twilio 63049) and a recipient
    # WHEN classified with the recipient
    # THEN +1 numbers fail for good and everyone else is tried again later
    assert classify(provider, code, 400, recipient=recipient) is expected


def test_the_recipient_changes_no_other_row() -> None:
    # GIVEN rows that do not depend on the recipient's country
    # WHEN classified with a +1 recipient
    # THEN they keep their class
    assert classify("meta", 131056, 400, recipient="+16505550100") is RETRYABLE
    assert classify("meta", 131050, 400, recipient="+16505550100") is ErrorClass.OPTED_OUT_MARKETING
    assert classify("twilio", 21610, 400, recipient="+16505550100") is OPTED_OUT


def test_twilio_daily_limit_says_when_it_resets_and_other_pauses_do_not() -> None:
    # GIVEN Twilio's daily limit (rolling 24 h) and an ordinary pause
    # WHEN asked how long until the limit has room again
    # THEN the daily limit resets after 24 h; the others have no reset time
    assert resets_after("twilio", 63038) == timedelta(hours=24)
    assert resets_after("twilio", "63018") is None
    assert resets_after("meta", 131048) is None
