"""wabacast.logic.businesses and wabacast.logic.keys: tenants and API keys that are stored only hashed."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.unit.fakes import FakeBusinessStore, FixedClock
from wabacast.domain.models import ApiKeyRole
from wabacast.errors import ConflictError, NotFoundError
from wabacast.logic.businesses import BusinessService
from wabacast.logic.keys import KEY_PREFIX, Principal, bearer_token, generate_api_key, hash_api_key

pytestmark = pytest.mark.filterwarnings("error")


def test_generated_keys_are_prefixed_random_and_unique() -> None:
    # GIVEN many freshly generated keys
    keys = [generate_api_key() for _ in range(500)]
    # WHEN they are compared
    # THEN each has the prefix, 43 URL-safe characters of randomness, and none repeats
    assert all(key.startswith(KEY_PREFIX) and key.startswith("wbk_") for key in keys)
    assert {len(key) for key in keys} == {len(KEY_PREFIX) + 43}
    assert len(set(keys)) == len(keys)


def test_hash_is_sha256_hex_and_not_the_key() -> None:
    # GIVEN a key
    key = generate_api_key()
    # WHEN it is hashed
    digest = hash_api_key(key)
    # THEN it is the SHA-256 hex digest, stable, and different from the key
    assert digest == hashlib.sha256(key.encode()).hexdigest() == hash_api_key(key)
    assert len(digest) == 64
    assert key not in digest


def test_create_business_returns_its_key_once_and_stores_only_the_hash(
    business_service: BusinessService, business_store: FakeBusinessStore, clock: FixedClock
) -> None:
    # GIVEN a new business
    # WHEN it is created
    business, key, plaintext = business_service.create("Acme", "Europe/Madrid")
    # THEN its first key is returned in plaintext, labelled "initial", for that business
    assert plaintext.startswith(KEY_PREFIX)
    assert (key.role, key.business_id, key.label) == (ApiKeyRole.BUSINESS, business.id, "initial")
    assert business.created_at == key.created_at == clock.now
    assert business.primary_account_id is None
    assert business.default_account_id is None
    # AND the store received the hash, never the plaintext
    assert hash_api_key(plaintext) in business_store.received
    assert plaintext not in json.dumps(business_store.received)
    assert plaintext not in json.dumps([business_store.items, business_store.key_lookup])


def test_business_ids_and_key_ids_are_unique(business_service: BusinessService) -> None:
    # GIVEN several businesses created at the same (frozen) instant
    created = [business_service.create(f"B{n}", "UTC") for n in range(20)]
    # WHEN their ids and keys are compared
    # THEN none repeats
    assert len({business.id for business, _, _ in created}) == 20
    assert len({key.key_id for _, key, _ in created}) == 20
    assert len({plaintext for _, _, plaintext in created}) == 20
    assert all(business.id.startswith("biz_") and key.key_id.startswith("key_") for business, key, _ in created)


def test_authenticate_a_valid_business_key(business_service: BusinessService) -> None:
    # GIVEN a business and its key
    business, key, plaintext = business_service.create("Acme", "UTC")
    # WHEN a request presents it as a bearer token
    principal = business_service.authenticate(f"Bearer {plaintext}")
    # THEN the caller is that business
    assert principal == Principal(role=ApiKeyRole.BUSINESS, key_id=key.key_id, business_id=business.id)


@pytest.mark.parametrize("template", ["bearer {}", "BEARER {}", "  Bearer   {}  "])
def test_bearer_scheme_is_case_insensitive_and_blank_tolerant(business_service: BusinessService, template: str) -> None:
    # GIVEN a valid key
    _, _, plaintext = business_service.create("Acme", "UTC")
    # WHEN it is presented with another casing or extra blanks
    principal = business_service.authenticate(template.format(plaintext))
    # THEN it authenticates
    assert principal is not None


@pytest.mark.parametrize(
    "header",
    [None, "", "   ", "Bearer", "Bearer ", "Bearer    ", "Basic x", "Basic d2JrOng=", "Token wbk_x", "wbk_abc"],
)
def test_malformed_or_missing_headers_do_not_authenticate(
    business_service: BusinessService, business_store: FakeBusinessStore, header: str | None
) -> None:
    # GIVEN a business with a key, and a header that is not "Bearer <token>"
    business_service.create("Acme", "UTC")
    # WHEN a request presents that header
    principal = business_service.authenticate(header)
    # THEN it is not authenticated, without even a lookup
    assert principal is None
    assert business_store.calls.get("find_key", 0) == 0


def test_unknown_key_does_not_authenticate(business_service: BusinessService) -> None:
    # GIVEN a business with a key
    business_service.create("Acme", "UTC")
    # WHEN another well-formed key is presented
    # THEN it is not authenticated
    assert business_service.authenticate(f"Bearer {generate_api_key()}") is None


def test_the_key_hash_itself_does_not_authenticate(business_service: BusinessService) -> None:
    # GIVEN a key whose hash leaked (e.g. from a table export)
    _, _, plaintext = business_service.create("Acme", "UTC")
    # WHEN the hash is presented as the key
    # THEN it is not authenticated
    assert business_service.authenticate(f"Bearer {hash_api_key(plaintext)}") is None


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Bearer a b", "a b"), ("Basic abc", None), (None, None)],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    # GIVEN an Authorization header
    # WHEN the bearer token is extracted
    # THEN it is the part after the scheme, trimmed, or None
    assert bearer_token(header) == token


def test_revoked_key_no_longer_authenticates(business_service: BusinessService) -> None:
    # GIVEN a business with its initial key and a second key
    business, initial, first_plaintext = business_service.create("Acme", "UTC")
    second, second_plaintext = business_service.issue_key(business.id, "ci")
    # WHEN the second key is revoked
    business_service.revoke_key(business.id, second.key_id)
    # THEN it no longer authenticates, while the initial key still does
    assert business_service.authenticate(f"Bearer {second_plaintext}") is None
    assert business_service.authenticate(f"Bearer {first_plaintext}") is not None
    assert [key.key_id for key in business_service.list_keys(business.id, 10, None).items] == [initial.key_id]


def test_revoking_an_unknown_key_or_another_business_key_is_not_found(business_service: BusinessService) -> None:
    # GIVEN two businesses
    mine, _, _ = business_service.create("Mine", "UTC")
    _, theirs, their_plaintext = business_service.create("Theirs", "UTC")
    # WHEN one revokes an unknown key, or the other business's key
    # THEN both are NotFoundError, and the other business's key still works
    with pytest.raises(NotFoundError):
        business_service.revoke_key(mine.id, "key_missing")
    with pytest.raises(NotFoundError):
        business_service.revoke_key(mine.id, theirs.key_id)
    assert business_service.authenticate(f"Bearer {their_plaintext}") is not None


def test_issued_keys_are_stored_hashed(business_service: BusinessService, business_store: FakeBusinessStore) -> None:
    # GIVEN a business
    business, _, _ = business_service.create("Acme", "UTC")
    # WHEN another key is issued
    key, plaintext = business_service.issue_key(business.id, "reporting")
    # THEN it authenticates as the business, and the store never saw its plaintext
    principal = business_service.authenticate(f"Bearer {plaintext}")
    assert principal is not None
    assert principal.key_id == key.key_id
    assert principal.business_id == business.id
    assert plaintext not in json.dumps(business_store.received)


def test_issuing_a_key_for_an_unknown_business_is_not_found(business_service: BusinessService) -> None:
    # GIVEN no such business
    # WHEN a key is issued for it
    # THEN it is NotFoundError
    with pytest.raises(NotFoundError):
        business_service.issue_key("biz_missing", None)


def test_admin_keys_belong_to_no_business(business_service: BusinessService) -> None:
    # GIVEN an admin key
    key, plaintext = business_service.issue_admin_key("ops")
    # WHEN it authenticates
    principal = business_service.authenticate(f"Bearer {plaintext}")
    # THEN the caller is an admin without a business
    assert principal == Principal(role=ApiKeyRole.ADMIN, key_id=key.key_id, business_id=None)


def test_get_and_list_businesses(business_service: BusinessService) -> None:
    # GIVEN three businesses
    created = [business_service.create(name, "UTC")[0] for name in ("A", "B", "C")]
    # WHEN one is read and all are listed two by two
    first_page = business_service.list(2, None)
    second_page = business_service.list(2, first_page.next_token)
    # THEN the read returns it and the pages hold each business once
    assert business_service.get(created[1].id) == created[1]
    listed = [business.id for business in first_page.items + second_page.items]
    assert sorted(listed) == sorted(business.id for business in created)
    with pytest.raises(NotFoundError):
        business_service.get("biz_missing")


def test_listing_keys_of_an_unknown_business_is_not_found(business_service: BusinessService) -> None:
    # GIVEN no such business
    # WHEN its keys are listed
    # THEN it is NotFoundError
    with pytest.raises(NotFoundError):
        business_service.list_keys("biz_missing", 10, None)


# Admin keys -----------------------------------------------------------------------------------------------------
def test_admin_keys_are_listed_apart_from_business_keys(business_service: BusinessService) -> None:
    # GIVEN an admin key and a business with its own key
    admin_key, _ = business_service.issue_admin_key("ops")
    _, business_key, _ = business_service.create("Acme", "UTC")

    # WHEN the admin keys are listed
    listed = business_service.list_admin_keys(10, None).items

    # THEN only the admin key is there
    assert [key.key_id for key in listed] == [admin_key.key_id]
    assert business_key.key_id not in {key.key_id for key in listed}


def test_an_admin_key_cannot_revoke_itself_but_another_can(business_service: BusinessService) -> None:
    # GIVEN two admin keys
    first, first_plaintext = business_service.issue_admin_key("first")
    second, _ = business_service.issue_admin_key("second")

    # WHEN the first revokes itself, then the second revokes the first
    with pytest.raises(ConflictError) as refused:
        business_service.revoke_admin_key(first.key_id, caller_key_id=first.key_id)
    business_service.revoke_admin_key(first.key_id, caller_key_id=second.key_id)

    # THEN the self-revocation was refused naming keyId, and the first key no longer authenticates
    assert refused.value.field == "keyId"
    assert business_service.authenticate(f"Bearer {first_plaintext}") is None


def test_rotating_an_admin_key_replaces_it(business_service: BusinessService) -> None:
    # GIVEN an admin key
    old, old_plaintext = business_service.issue_admin_key("ci")

    # WHEN it is rotated
    new, new_plaintext = business_service.rotate_admin_key(old.key_id, None)

    # THEN the new key authenticates as admin, the old one does not, and one admin key is left
    principal = business_service.authenticate(f"Bearer {new_plaintext}")
    assert principal is not None
    assert principal.role == ApiKeyRole.ADMIN
    assert business_service.authenticate(f"Bearer {old_plaintext}") is None
    assert [key.key_id for key in business_service.list_admin_keys(10, None).items] == [new.key_id]


def test_rotating_an_unknown_admin_key_leaves_no_new_key(business_service: BusinessService) -> None:
    # GIVEN no admin key
    # WHEN an unknown one is rotated
    with pytest.raises(NotFoundError):
        business_service.rotate_admin_key("key_missing", "x")

    # THEN no key was left behind
    assert business_service.list_admin_keys(10, None).items == []


def test_a_business_keeps_its_reply_keywords_until_they_are_cleared(business_service: BusinessService) -> None:
    # GIVEN a business created with its own stop keywords
    business, _, _ = business_service.create("Acme", "UTC", stop_keywords=["No más"])
    assert (business.stop_keywords, business.start_keywords) == (["No más"], None)
    # WHEN its start keywords are set and its stop keywords cleared
    updated = business_service.set_keywords(business.id, None, ["Volver"])
    # THEN the change is stored: the defaults apply to stop again
    stored = business_service.get(business.id)
    assert (updated.stop_keywords, updated.start_keywords) == (None, ["Volver"])
    assert stored == updated


def test_keywords_of_a_missing_business_are_not_found(business_service: BusinessService) -> None:
    with pytest.raises(NotFoundError):
        business_service.set_keywords("biz_missing", ["STOP"], None)
