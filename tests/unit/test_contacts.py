"""wabacast.logic.contacts: bulk upsert (create, merge, duplicates, tags) and opt-outs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.fakes import FakeContactStore, FixedClock, phone
from wabacast.domain.models import OptOutSource
from wabacast.errors import NotFoundError
from wabacast.logic.contacts import ContactDraft, ContactService, Rejection

pytestmark = pytest.mark.filterwarnings("error")

BIZ = "biz_contacts"


def _rows(*drafts: dict[str, Any]) -> list[tuple[int, ContactDraft]]:
    return [(index, ContactDraft(**draft)) for index, draft in enumerate(drafts)]


def test_new_contacts_are_created(
    contact_service: ContactService, contact_store: FakeContactStore, clock: FixedClock
) -> None:
    # GIVEN two rows for unknown numbers
    rows = _rows(
        {"phone_number": phone(1), "name": "Ana", "tags": ["vip"], "attributes": {"city": "Madrid"}},
        {"phone_number": phone(2)},
    )
    # WHEN they are upserted
    result = contact_service.upsert(BIZ, rows, [])
    # THEN both are created, with the clock's time and empty defaults for what was not sent
    assert (result.created, result.updated, result.rejected) == (2, 0, [])
    page = contact_service.list(BIZ, tag=None, limit=10, next_token=None)
    ana, bare = page.items
    assert (ana.name, ana.tags, ana.attributes) == ("Ana", ["vip"], {"city": "Madrid"})
    assert (bare.name, bare.tags, bare.attributes, bare.timezone) == (None, [], {}, None)
    assert ana.created_at == ana.updated_at == clock.now


def test_existing_contacts_are_counted_as_updated(contact_service: ContactService, clock: FixedClock) -> None:
    # GIVEN one existing contact
    contact_service.upsert(BIZ, _rows({"phone_number": phone(1), "name": "Ana"}), [])
    # WHEN it is upserted again together with a new one
    result = contact_service.upsert(BIZ, _rows({"phone_number": phone(1)}, {"phone_number": phone(2)}), [])
    # THEN one is updated and one created
    assert (result.created, result.updated) == (1, 1)


def test_merge_keeps_fields_that_were_not_sent(
    contact_service: ContactService, contact_store: FakeContactStore, clock: FixedClock
) -> None:
    # GIVEN a contact with name, tags, attributes and time zone
    first = {
        "phone_number": phone(1),
        "name": "Ana",
        "tags": ["vip"],
        "attributes": {"city": "Madrid"},
        "timezone": "Europe/Madrid",
    }
    contact_service.upsert(BIZ, _rows(first), [])
    created_at = clock.now
    # WHEN, later, only its tags are sent
    clock.advance(hours=1)
    contact_service.upsert(BIZ, _rows({"phone_number": phone(1), "tags": ["newsletter"]}), [])
    # THEN the tags are replaced and everything else is kept; created_at stays, updated_at moves
    (contact,) = contact_service.list(BIZ, tag=None, limit=10, next_token=None).items
    assert contact.tags == ["newsletter"]
    assert (contact.name, contact.attributes, contact.timezone) == ("Ana", {"city": "Madrid"}, "Europe/Madrid")
    assert contact.created_at == created_at
    assert contact.updated_at == clock.now


def test_attributes_sent_replace_the_stored_ones_whole(contact_service: ContactService) -> None:
    # GIVEN a contact with two attributes
    contact_service.upsert(BIZ, _rows({"phone_number": phone(1), "attributes": {"city": "Madrid", "age": 30}}), [])
    # WHEN attributes are sent again with one key
    contact_service.upsert(BIZ, _rows({"phone_number": phone(1), "attributes": {"city": "Lisbon"}}), [])
    # THEN the stored attributes are exactly those sent
    (contact,) = contact_service.list(BIZ, tag=None, limit=10, next_token=None).items
    assert contact.attributes == {"city": "Lisbon"}


def test_explicit_null_clears_a_field(contact_service: ContactService) -> None:
    # GIVEN a contact with a name and tags
    contact_service.upsert(BIZ, _rows({"phone_number": phone(1), "name": "Ana", "tags": ["vip"]}), [])
    # WHEN name and tags are sent as null
    contact_service.upsert(BIZ, _rows({"phone_number": phone(1), "name": None, "tags": None}), [])
    # THEN the name is cleared and the tags become empty
    (contact,) = contact_service.list(BIZ, tag=None, limit=10, next_token=None).items
    assert (contact.name, contact.tags) == (None, [])


def test_duplicate_rows_are_rejected_naming_the_first(
    contact_service: ContactService, contact_store: FakeContactStore
) -> None:
    # GIVEN a request where rows 0 and 2 have the same number
    rows = _rows(
        {"phone_number": phone(1), "name": "First"},
        {"phone_number": phone(2)},
        {"phone_number": phone(1), "name": "Second"},
    )
    # WHEN it is upserted
    result = contact_service.upsert(BIZ, rows, [])
    # THEN row 2 is rejected as a duplicate of row 0 and row 0 wins
    assert (result.created, result.updated) == (2, 0)
    (rejection,) = result.rejected
    assert (rejection.index, rejection.phone_number, rejection.field) == (2, phone(1), "phoneNumber")
    assert rejection.message == "phoneNumber: duplicate of row 0 in this request"
    assert contact_store.get_many(BIZ, [phone(1)])[phone(1)].name == "First"


def test_rows_rejected_by_the_caller_are_reported_in_index_order(contact_service: ContactService) -> None:
    # GIVEN a row the API already refused (index 1) and a duplicate at index 3
    rows = [
        (0, ContactDraft(phone_number=phone(1))),
        (2, ContactDraft(phone_number=phone(2))),
        (3, ContactDraft(phone_number=phone(1))),
    ]
    refused = [Rejection(index=1, field="phoneNumber", message="phoneNumber: must be an international number")]
    # WHEN the rows are upserted
    result = contact_service.upsert(BIZ, rows, refused)
    # THEN both rejections come back, sorted by row index, and the valid rows were written
    assert [rejection.index for rejection in result.rejected] == [1, 3]
    assert result.rejected[0] == refused[0]
    assert result.created == 2


def test_all_rows_rejected_still_answers(contact_service: ContactService, contact_store: FakeContactStore) -> None:
    # GIVEN only rows the caller refused
    refused = [Rejection(index=0, message="bad")]
    # WHEN they are upserted
    result = contact_service.upsert(BIZ, [], refused)
    # THEN nothing is created and the rejection is reported
    assert (result.created, result.updated, result.rejected) == (0, 0, refused)
    assert contact_store.contacts == {}


def test_tag_changes_pass_the_old_tags_to_the_store(
    contact_service: ContactService, contact_store: FakeContactStore
) -> None:
    # GIVEN a contact tagged vip and promo
    contact_service.upsert(BIZ, _rows({"phone_number": phone(1), "tags": ["vip", "promo"]}), [])
    # WHEN its tags become promo and newsletter
    contact_service.upsert(BIZ, _rows({"phone_number": phone(1), "tags": ["promo", "newsletter"]}), [])
    # THEN the store got the new contact with its old tags, for the first write with none
    (first_call,), (second_call,) = contact_store.saved
    assert first_call[1] == []
    contact, old_tags = second_call
    assert (contact.tags, old_tags) == (["promo", "newsletter"], ["vip", "promo"])

    # AND listings by tag follow: vip is gone, newsletter appears, promo stays
    def tagged(tag: str) -> list[str]:
        return [c.phone_number for c in contact_service.list(BIZ, tag=tag, limit=10, next_token=None).items]

    assert (tagged("vip"), tagged("promo"), tagged("newsletter")) == ([], [phone(1)], [phone(1)])


def test_update_without_tags_passes_unchanged_old_tags(
    contact_service: ContactService, contact_store: FakeContactStore
) -> None:
    # GIVEN a tagged contact
    contact_service.upsert(BIZ, _rows({"phone_number": phone(1), "tags": ["vip"]}), [])
    # WHEN only its name changes
    contact_service.upsert(BIZ, _rows({"phone_number": phone(1), "name": "Ana"}), [])
    # THEN old and new tags are the same, so no membership moves
    contact, old_tags = contact_store.saved[-1][0]
    assert contact.tags == old_tags == ["vip"]


def test_contacts_are_per_business(contact_service: ContactService) -> None:
    # GIVEN a contact of one business
    contact_service.upsert(BIZ, _rows({"phone_number": phone(1), "name": "Ana"}), [])
    # WHEN another business upserts the same number
    result = contact_service.upsert("biz_other", _rows({"phone_number": phone(1)}), [])
    # THEN it is a new contact there, and the first business's contact is untouched
    assert result.created == 1
    (mine,) = contact_service.list(BIZ, tag=None, limit=10, next_token=None).items
    assert mine.name == "Ana"


def test_delete_contact(contact_service: ContactService) -> None:
    # GIVEN a tagged contact
    contact_service.upsert(BIZ, _rows({"phone_number": phone(1), "tags": ["vip"]}), [])
    # WHEN it is deleted
    contact_service.delete(BIZ, phone(1))
    # THEN it is gone from listings, and deleting again is NotFoundError
    assert contact_service.list(BIZ, tag="vip", limit=10, next_token=None).items == []
    with pytest.raises(NotFoundError):
        contact_service.delete(BIZ, phone(1))


def test_listing_by_tag_pages(contact_service: ContactService) -> None:
    # GIVEN five contacts tagged vip and one not
    contact_service.upsert(BIZ, _rows(*({"phone_number": phone(n), "tags": ["vip"]} for n in range(5))), [])
    contact_service.upsert(BIZ, _rows({"phone_number": phone(9)}), [])
    # WHEN they are listed by tag two at a time
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        page = contact_service.list(BIZ, tag="vip", limit=2, next_token=token)
        seen += [contact.phone_number for contact in page.items]
        token = page.next_token
        if token is None:
            break
    # THEN every tagged contact shows exactly once, in order
    assert seen == [phone(n) for n in range(5)]


# Opt-outs ------------------------------------------------------------------------------------------------------
def test_opt_out_is_recorded_once(contact_service: ContactService, clock: FixedClock) -> None:
    # GIVEN a number that opts out
    first, created = contact_service.opt_out(BIZ, phone(1), "asked by phone")
    recorded_at = clock.now
    # WHEN it opts out again later, with another reason and source
    clock.advance(days=1)
    again, created_again = contact_service.opt_out(BIZ, phone(1), "STOP", source=OptOutSource.STOP_REPLY)
    # THEN the first is created, the second is not, and the original record is returned unchanged
    assert (created, created_again) == (True, False)
    assert again == first
    assert (again.reason, again.source) == ("asked by phone", OptOutSource.API)
    assert again.created_at == recorded_at != clock.now
    assert len(contact_service.list_opt_outs(BIZ, 10, None).items) == 1


def test_remove_opt_out(contact_service: ContactService) -> None:
    # GIVEN an opt-out
    contact_service.opt_out(BIZ, phone(1), None)
    # WHEN it is removed
    contact_service.remove_opt_out(BIZ, phone(1))
    # THEN it is gone, removing it again is NotFoundError, and opting out again creates it anew
    assert contact_service.list_opt_outs(BIZ, 10, None).items == []
    with pytest.raises(NotFoundError):
        contact_service.remove_opt_out(BIZ, phone(1))
    assert contact_service.opt_out(BIZ, phone(1), None)[1] is True


def test_opt_outs_are_per_business(contact_service: ContactService) -> None:
    # GIVEN a number opted out of one business
    contact_service.opt_out(BIZ, phone(1), None)
    # WHEN it opts out of another business
    _, created = contact_service.opt_out("biz_other", phone(1), None)
    # THEN that is a new opt-out
    assert created is True
