"""Admin keys: listed, issued, rotated and revoked through /api/admin/keys or the bootstrap command, so a leaked
admin key can always be revoked; and the key lookup reads consistently, so a revoked key stops at once (behind API
Gateway's authorizer cache, docs/operations.md)."""

from __future__ import annotations

from typing import Any

import boto3

from tests.integration.conftest import ApiClient, assert_error
from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.adapters.dynamodb.businesses import BusinessRepository
from wabacast.logic.keys import hash_api_key
from wabacast.settings import Settings

ADMIN_KEYS = "/api/admin/keys"


# Admin keys ----------------------------------------------------------------------------------------------------------
def test_admin_keys_are_listed_without_their_secret(admin: ApiClient) -> None:
    # GIVEN the test's admin key and one more
    created = admin.post(ADMIN_KEYS, {"label": "ops"})
    assert created.status == 201, created.body

    # WHEN the admin keys are listed
    listed = admin.get(ADMIN_KEYS)

    # THEN both are there by id and label, and no key material is
    assert listed.status == 200, listed.body
    labels = {item["keyId"]: item["label"] for item in listed.body["items"]}
    assert labels[created.body["keyId"]] == "ops"
    assert "tests" in labels.values()
    assert all(set(item) == {"keyId", "label", "createdAt"} for item in listed.body["items"])


def test_a_leaked_admin_key_is_revoked_with_another(admin: ApiClient) -> None:
    # GIVEN a second admin key, which leaks
    leaked = admin.as_key(admin.post(ADMIN_KEYS, {"label": "leaked"}).body["apiKey"])
    leaked_id = next(item["keyId"] for item in admin.get(ADMIN_KEYS).body["items"] if item["label"] == "leaked")
    assert leaked.get("/api/admin/businesses").status == 200

    # WHEN the first key revokes it
    revoked = admin.delete(f"{ADMIN_KEYS}/{leaked_id}")

    # THEN it no longer authenticates, and the revoking key still does
    assert revoked.status == 204, revoked.body
    assert_error(leaked.get("/api/admin/businesses"), 401, "UNAUTHENTICATED")
    assert admin.get("/api/admin/businesses").status == 200
    assert leaked_id not in {item["keyId"] for item in admin.get(ADMIN_KEYS).body["items"]}


def test_an_admin_key_is_rotated_into_a_new_one(admin: ApiClient) -> None:
    # GIVEN an admin key to rotate
    old = admin.post(ADMIN_KEYS, {"label": "ci"}).body

    # WHEN it is rotated
    rotated = admin.post(f"{ADMIN_KEYS}/{old['keyId']}/rotate", {"label": "ci"})

    # THEN a new key comes back once, works, and the old one is revoked
    assert rotated.status == 201, rotated.body
    assert rotated.body["apiKey"] != old["apiKey"]
    assert rotated.body["label"] == "ci"
    assert admin.as_key(rotated.body["apiKey"]).get(ADMIN_KEYS).status == 200
    assert_error(admin.as_key(old["apiKey"]).get(ADMIN_KEYS), 401, "UNAUTHENTICATED")


def test_an_admin_key_can_rotate_itself_but_not_revoke_itself(admin: ApiClient) -> None:
    # GIVEN an admin key acting on its own id
    own = admin.as_key(admin.post(ADMIN_KEYS, {"label": "self"}).body["apiKey"])
    own_id = next(item["keyId"] for item in admin.get(ADMIN_KEYS).body["items"] if item["label"] == "self")

    # WHEN it revokes itself, then rotates itself
    revoked = own.delete(f"{ADMIN_KEYS}/{own_id}")
    rotated = own.post(f"{ADMIN_KEYS}/{own_id}/rotate")

    # THEN revoking is a 409 (the API would be left without this key's holder), rotating works
    assert_error(revoked, 409, "CONFLICT", "keyId")
    assert rotated.status == 201, rotated.body
    assert admin.as_key(rotated.body["apiKey"]).get(ADMIN_KEYS).status == 200


def test_unknown_admin_keys_are_404_and_business_keys_are_403(admin: ApiClient, business: ApiClient) -> None:
    # GIVEN / WHEN an unknown key id is revoked and rotated, and a business key tries the admin key routes
    revoked = admin.delete(f"{ADMIN_KEYS}/key_missing")
    rotated = admin.post(f"{ADMIN_KEYS}/key_missing/rotate")
    listed_by_business = business.get(ADMIN_KEYS)
    revoked_by_business = business.delete(f"{ADMIN_KEYS}/key_missing")

    # THEN 404 for the unknown key (and no new key left behind), 403 for the business key
    assert_error(revoked, 404, "NOT_FOUND", "keyId")
    assert_error(rotated, 404, "NOT_FOUND", "keyId")
    assert len(admin.get(ADMIN_KEYS).body["items"]) == 1
    assert_error(listed_by_business, 403, "FORBIDDEN")
    assert_error(revoked_by_business, 403, "FORBIDDEN")


def test_the_bootstrap_commands_list_and_revoke_admin_keys(settings: Settings, admin: ApiClient) -> None:
    from wabacast.bootstrap import admin_keys, issue_admin_key, revoke_admin_key

    # GIVEN a second admin key issued by the bootstrap command
    plaintext = issue_admin_key(settings, "break-glass")
    listed = {key.label: key.key_id for key in admin_keys(settings)}

    # WHEN it is revoked by the command (no API key needed)
    revoke_admin_key(settings, listed["break-glass"])

    # THEN it was listed, and no longer authenticates
    assert set(listed) == {"tests", "break-glass"}
    assert_error(admin.as_key(plaintext).get(ADMIN_KEYS), 401, "UNAUTHENTICATED")
    assert [key.label for key in admin_keys(settings)] == ["tests"]


def test_the_key_lookup_is_a_consistent_read(settings: Settings, business: ApiClient) -> None:
    # GIVEN the repository the authorizer uses, with every GetItem it makes recorded
    client = boto3.client("dynamodb", region_name=settings.region)
    reads: list[dict[str, Any]] = []
    client.meta.events.register("provide-client-params.dynamodb.GetItem", lambda params, **_: reads.append(params))
    repository = BusinessRepository(TableGateway(client, settings.table_name))

    # WHEN a key is looked up
    found = repository.find_key(hash_api_key(business.api_key or ""))

    # THEN it is found with a strongly consistent read: a revoked key stops working at once
    assert found is not None
    assert [read.get("ConsistentRead") for read in reads] == [True]
