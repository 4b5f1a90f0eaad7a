"""Queue input rules through the HTTP API: every refused field is named in error.field.

The module shares one business (module scope) holding a sandbox primary account, a twilio account and a
SUSPENDED account; every request here must be refused, so none changes what the next test sees.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import (
    CONTENT_SID,
    ApiClient,
    assert_error,
    create_account,
    create_queue,
    new_business,
    phone,
    queue_body,
)

QUEUES = "/api/whatsapp/queue"


def _days_ahead(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def accounts(module_business: ApiClient) -> dict[str, dict[str, Any]]:
    return {
        "sandbox": create_account(module_business, phone(1)),
        "twilio": create_account(module_business, phone(2), "twilio"),
        "suspended": create_account(module_business, phone(3), status="SUSPENDED"),
    }


@pytest.fixture(scope="module")
def draft_queue(module_business: ApiClient, accounts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return create_queue(module_business, accountId=accounts["sandbox"]["id"])


def _recipients(count: int) -> list[dict[str, Any]]:
    return [{"phoneNumber": phone(10_000 + index)} for index in range(count)]


CREATE_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "name empty": ({"name": ""}, "name"),
    "name too long": ({"name": "n" * 201}, "name"),
    "template missing": ({"template": None}, "template"),
    "template name with capitals and punctuation": (
        {"template": {"name": "Spring Sale!", "language": "en_US"}},
        "template.name",
    ),
    "template language not a code": ({"template": {"name": "spring_sale", "language": "english"}}, "template.language"),
    "template category unknown": (
        {"template": {"name": "spring_sale", "language": "en", "category": "promotional"}},
        "template.category",
    ),
    "template image header without link": (
        {"template": {"name": "spring_sale", "language": "en", "header": {"type": "image"}}},
        "template.header",
    ),
    "template header link not https": (
        {"template": {"name": "spring_sale", "language": "en", "header": {"type": "video", "link": "http://x.io/a"}}},
        "template.header.link",
    ),
    "template header text too long": (
        {"template": {"name": "spring_sale", "language": "en", "header": {"type": "text", "text": "t" * 61}}},
        "template.header.text",
    ),
    "template header type unknown": (
        {"template": {"name": "spring_sale", "language": "en", "header": {"type": "location"}}},
        "template.header.type",
    ),
    "template button index 10": (
        {"template": {"name": "s", "language": "en", "buttons": [{"subType": "url", "index": 10, "urlSuffix": "a"}]}},
        "template.buttons[0].index",
    ),
    "template quick reply without payload": (
        {"template": {"name": "s", "language": "en", "buttons": [{"subType": "quick_reply", "index": 0}]}},
        "template.buttons[0]",
    ),
    "template buttons with the same index": (
        {
            "template": {
                "name": "s",
                "language": "en",
                "buttons": [
                    {"subType": "url", "index": 0, "urlSuffix": "a"},
                    {"subType": "quick_reply", "index": 0, "payload": "b"},
                ],
            }
        },
        "template",
    ),
    "template contentSid malformed": (
        {"template": {"name": "spring_sale", "language": "en", "contentSid": "HX123"}},
        "template.contentSid",
    ),
    "audience empty object": ({"audience": {}}, "audience"),
    "audience with empty lists": ({"audience": {"recipients": [], "contactTags": []}}, "audience"),
    "more than 1000 recipients": ({"audience": {"recipients": _recipients(1001)}}, "audience.recipients"),
    "recipient phone without plus": (
        {"audience": {"recipients": [{"phoneNumber": phone(1)}, {"phoneNumber": "612345678"}]}},
        "audience.recipients[1].phoneNumber",
    ),
    "recipient phone invalid for its country": (
        {"audience": {"recipients": [{"phoneNumber": phone(1)}, {"phoneNumber": phone(2)}, {"phoneNumber": "+1415"}]}},
        "audience.recipients[2].phoneNumber",
    ),
    "recipient variable with unsupported placeholder": (
        {"audience": {"recipients": [{"phoneNumber": phone(1), "variables": {"1": "Hi {{contact.first.name}}"}}]}},
        "audience.recipients[0].variables.1",
    ),
    "contact tag with a space": ({"audience": {"contactTags": ["vip", "big spender"]}}, "audience.contactTags[1]"),
    "more than 20 contact tags": ({"audience": {"contactTags": [f"t{i}" for i in range(21)]}}, "audience.contactTags"),
    "priority 0": ({"priority": 0}, "priority"),
    "priority 11": ({"priority": 11}, "priority"),
    "maxAttempts 0": ({"maxAttempts": 0}, "maxAttempts"),
    "maxAttempts 11": ({"maxAttempts": 11}, "maxAttempts"),
    "timezone not IANA": ({"schedule": {"timezone": "Mars/Olympus_Mons"}}, "schedule.timezone"),
    "timezone as an offset": ({"schedule": {"timezone": "+02:00"}}, "schedule.timezone"),
    "active hours start not HH:MM": (
        {"schedule": {"activeHours": {"start": "25:00", "end": "18:00"}}},
        "schedule.activeHours.start",
    ),
    "active hours end without leading zero": (
        {"schedule": {"activeHours": {"start": "09:00", "end": "9:30"}}},
        "schedule.activeHours.end",
    ),
    "active hours start equals end": (
        {"schedule": {"activeHours": {"start": "09:00", "end": "09:00"}}},
        "schedule.activeHours",
    ),
    "active hours repeated days": (
        {"schedule": {"activeHours": {"start": "09:00", "end": "18:00", "days": ["MON", "TUE", "MON"]}}},
        "schedule.activeHours",
    ),
    "active hours unknown day": (
        {"schedule": {"activeHours": {"start": "09:00", "end": "18:00", "days": ["FUNDAY"]}}},
        "schedule.activeHours.days[0]",
    ),
    "active hours no days": (
        {"schedule": {"activeHours": {"start": "09:00", "end": "18:00", "days": []}}},
        "schedule.activeHours.days",
    ),
    "startAt in the past": ({"schedule": {"startAt": "2020-01-01T09:00:00Z"}}, "schedule.startAt"),
    "startAt wall clock in the past": (
        {"schedule": {"startAt": "2020-01-01T09:00:00", "timezone": "Asia/Tokyo"}},
        "schedule.startAt",
    ),
    "startAt not a date": ({"schedule": {"startAt": "next tuesday"}}, "schedule.startAt"),
    "startAt more than a year ahead": ({"schedule": {"startAt": "2099-01-01T09:00:00Z"}}, "schedule.startAt"),
    "endAt in the past": ({"schedule": {"endAt": "2020-01-01T09:00:00Z"}}, "schedule.endAt"),
    "endAt before startAt": (
        {"schedule": {"startAt": _days_ahead(30), "endAt": _days_ahead(29)}},
        "schedule.endAt",
    ),
    "recurrence minute out of range": ({"schedule": {"recurrence": "61 9 * * MON"}}, "schedule.recurrence"),
    "recurrence with four fields": ({"schedule": {"recurrence": "0 9 * MON"}}, "schedule.recurrence"),
    "recurrence with both days": ({"schedule": {"recurrence": "0 9 1 * MON"}}, "schedule.recurrence"),
    "recurrence not cron": ({"schedule": {"recurrence": "every monday"}}, "schedule.recurrence"),
    "recipientLocalTime without a window": ({"schedule": {"recipientLocalTime": True}}, "schedule.recipientLocalTime"),
    "recipientLocalTime not a boolean": (
        {"schedule": {"recipientLocalTime": "yes", "activeHours": {"start": "09:00", "end": "18:00"}}},
        "schedule.recipientLocalTime",
    ),
    "variable with unknown placeholder": ({"variables": {"1": "{{foo}}"}}, "variables.1"),
    "variable with unbalanced braces": ({"variables": {"2": "Hello {{contact.name"}}, "variables.2"),
    "accountId unknown": ({"accountId": "acc_doesnotexist"}, "accountId"),
    "unknown top-level field": ({"sendNow": True}, "sendNow"),
}


@pytest.mark.parametrize(("overrides", "field"), CREATE_CASES.values(), ids=CREATE_CASES.keys())
def test_create_queue_refuses_each_broken_rule_and_names_the_field(
    module_business: ApiClient, accounts: dict[str, dict[str, Any]], overrides: dict[str, Any], field: str
) -> None:
    # GIVEN an otherwise valid queue body with one rule broken (None means: leave the field out)
    body = {key: value for key, value in {**queue_body(), **overrides}.items() if value is not None}

    # WHEN it is posted
    response = module_business.post(QUEUES, body)

    # THEN it is refused with 422 naming exactly that field
    assert_error(response, 422, "VALIDATION_ERROR", field)


def test_create_queue_for_twilio_account_requires_content_sid(
    module_business: ApiClient, accounts: dict[str, dict[str, Any]]
) -> None:
    # GIVEN a twilio account and a template without contentSid
    body = queue_body(accountId=accounts["twilio"]["id"])

    # WHEN the queue is posted
    response = module_business.post(QUEUES, body)

    # THEN template.contentSid is named
    assert_error(response, 422, "VALIDATION_ERROR", "template.contentSid")


def test_create_queue_on_suspended_account_is_refused(
    module_business: ApiClient, accounts: dict[str, dict[str, Any]]
) -> None:
    # GIVEN a SUSPENDED account
    # WHEN a queue names it
    response = module_business.post(QUEUES, queue_body(accountId=accounts["suspended"]["id"]))

    # THEN accountId is named and the message says why
    error = assert_error(response, 422, "VALIDATION_ERROR", "accountId")
    assert "SUSPENDED" in error["message"]


def test_create_queue_for_business_without_accounts_names_account_id(module_admin: ApiClient) -> None:
    # GIVEN a business that has no WhatsApp account yet
    newcomer = new_business(module_admin, "Newcomer")

    # WHEN it posts a queue without accountId
    response = newcomer.post(QUEUES, queue_body())

    # THEN accountId is named
    assert_error(response, 422, "VALIDATION_ERROR", "accountId")


def test_recipient_numbers_are_stored_in_e164(module_business: ApiClient, accounts: dict[str, dict[str, Any]]) -> None:
    # GIVEN recipients written in national-looking and 00-prefixed international forms
    audience = {"recipients": [{"phoneNumber": "+1 (415) 555-2671"}, {"phoneNumber": "0034612345678"}]}

    # WHEN a queue is created (on the twilio account with a content SID, so the template rules are met too)
    queue = create_queue(
        module_business,
        accountId=accounts["twilio"]["id"],
        template={"name": "spring_sale", "language": "es", "contentSid": CONTENT_SID},
        audience=audience,
    )

    # THEN both numbers come back in E.164 and the count matches
    assert [r["phoneNumber"] for r in queue["audience"]["recipients"]] == ["+14155552671", "+34612345678"]
    assert queue["audience"]["recipientCount"] == 2
    assert module_business.delete(f"{QUEUES}/{queue['id']}").status == 204


UPDATE_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "name empty": ({"name": ""}, "name"),
    "name null": ({"name": None}, "name"),
    "priority 0": ({"priority": 0}, "priority"),
    "maxAttempts 11": ({"maxAttempts": 11}, "maxAttempts"),
    "audience empty": ({"audience": {}}, "audience"),
    "recipient phone invalid": (
        {"audience": {"recipients": [{"phoneNumber": "+999"}]}},
        "audience.recipients[0].phoneNumber",
    ),
    "startAt in the past": ({"schedule": {"startAt": "2021-06-01T10:00:00Z"}}, "schedule.startAt"),
    "active hours start equals end": (
        {"schedule": {"activeHours": {"start": "10:00", "end": "10:00"}}},
        "schedule.activeHours",
    ),
    "template language bad": ({"template": {"name": "spring_sale", "language": "EN"}}, "template.language"),
    "variables placeholder unsupported": ({"variables": {"1": "{{ order.id }}"}}, "variables.1"),
    "accountId unknown": ({"accountId": "acc_doesnotexist"}, "accountId"),
    "status is read-only": ({"status": "COMPLETED"}, "status"),
}


@pytest.mark.parametrize(("body", "field"), UPDATE_CASES.values(), ids=UPDATE_CASES.keys())
def test_update_queue_refuses_each_broken_rule_and_keeps_the_queue(
    module_business: ApiClient, draft_queue: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    # GIVEN a DRAFT queue
    path = f"{QUEUES}/{draft_queue['id']}"
    before = module_business.get(path).body

    # WHEN a PUT breaks one rule
    response = module_business.put(path, body)

    # THEN it is refused naming the field, and the queue is as it was
    assert_error(response, 422, "VALIDATION_ERROR", field)
    assert module_business.get(path).body == before


def test_moving_a_queue_to_a_twilio_account_requires_content_sid(
    module_business: ApiClient, accounts: dict[str, dict[str, Any]], draft_queue: dict[str, Any]
) -> None:
    # GIVEN a DRAFT queue whose template has no contentSid
    path = f"{QUEUES}/{draft_queue['id']}"

    # WHEN it is moved to the twilio account
    response = module_business.put(path, {"accountId": accounts["twilio"]["id"]})

    # THEN template.contentSid is named and the queue keeps its account
    assert_error(response, 422, "VALIDATION_ERROR", "template.contentSid")
    assert module_business.get(path).body["accountId"] == accounts["sandbox"]["id"]


def test_moving_a_queue_to_a_suspended_account_is_refused(
    module_business: ApiClient, accounts: dict[str, dict[str, Any]], draft_queue: dict[str, Any]
) -> None:
    # GIVEN a DRAFT queue
    # WHEN it is moved to the SUSPENDED account
    response = module_business.put(f"{QUEUES}/{draft_queue['id']}", {"accountId": accounts["suspended"]["id"]})

    # THEN accountId is named
    assert_error(response, 422, "VALIDATION_ERROR", "accountId")


@pytest.mark.parametrize(
    ("query", "field"),
    [({"status": "SENDING"}, "status"), ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "x"}, "limit")],
)
def test_queue_listing_refuses_bad_filters(module_business: ApiClient, query: dict[str, Any], field: str) -> None:
    # GIVEN a listing query with one bad parameter
    # WHEN the queues are listed
    response = module_business.get(QUEUES, **query)

    # THEN the parameter is named
    assert_error(response, 422, "VALIDATION_ERROR", field)
