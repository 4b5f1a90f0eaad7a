"""Businesses (tenants) and their API keys: the admin side."""

from __future__ import annotations

from wabacast.clock import Clock, utc_now
from wabacast.domain.models import ApiKey, ApiKeyRole, Business, Page
from wabacast.errors import ConflictError, NotFoundError
from wabacast.ids import new_id
from wabacast.logic.keys import Principal, bearer_token, generate_api_key, hash_api_key
from wabacast.logic.ports import BusinessStore


class BusinessService:
    def __init__(self, store: BusinessStore, clock: Clock = utc_now) -> None:
        self._store = store
        self._clock = clock

    def create(
        self,
        name: str,
        timezone: str,
        stop_keywords: list[str] | None = None,
        start_keywords: list[str] | None = None,
    ) -> tuple[Business, ApiKey, str]:
        business = Business(
            id=new_id("biz"),
            name=name,
            timezone=timezone,
            created_at=self._clock(),
            stop_keywords=stop_keywords,
            start_keywords=start_keywords,
        )
        key, plaintext = self._new_key(ApiKeyRole.BUSINESS, business.id, label="initial")
        self._store.create(business, key, hash_api_key(plaintext))
        return business, key, plaintext

    def get(self, business_id: str) -> Business:
        business = self._store.get(business_id)
        if business is None:
            raise NotFoundError("business not found")
        return business

    def set_keywords(self, business_id: str, stop: list[str] | None, start: list[str] | None) -> Business:
        """Replace the business's reply keywords; None for a list means the defaults
        (wabacast.domain.replies)."""
        return self._store.set_keywords(business_id, stop, start)

    def list(self, limit: int, next_token: str | None) -> Page[Business]:
        return self._store.list(limit, next_token)

    def issue_key(self, business_id: str, label: str | None) -> tuple[ApiKey, str]:
        key, plaintext = self._new_key(ApiKeyRole.BUSINESS, business_id, label=label)
        self._store.add_key(key, hash_api_key(plaintext))
        return key, plaintext

    def issue_admin_key(self, label: str | None) -> tuple[ApiKey, str]:
        key, plaintext = self._new_key(ApiKeyRole.ADMIN, None, label=label)
        self._store.add_key(key, hash_api_key(plaintext))
        return key, plaintext

    def list_keys(self, business_id: str, limit: int, next_token: str | None) -> Page[ApiKey]:
        self.get(business_id)
        return self._store.list_keys(business_id, limit, next_token)

    def revoke_key(self, business_id: str, key_id: str) -> None:
        self._store.delete_key(business_id, key_id)

    # Admin keys (the store lists them under no business) ------------------------------------------------------
    def list_admin_keys(self, limit: int, next_token: str | None) -> Page[ApiKey]:
        return self._store.list_keys(None, limit, next_token)

    def revoke_admin_key(self, key_id: str, *, caller_key_id: str) -> None:
        """Revoke an admin key with another one: a key cannot revoke itself, so the API always keeps an admin key
        that works (a leaked key is rotated, or revoked with a new one)."""
        if key_id == caller_key_id:
            raise ConflictError(
                "keyId: an admin key cannot revoke itself; issue a new admin key (or rotate this one) and revoke it "
                "with that",
                field="keyId",
            )
        self._store.delete_key(None, key_id)

    def rotate_admin_key(self, key_id: str, label: str | None) -> tuple[ApiKey, str]:
        """A new admin key replacing `key_id`, which is revoked. The new key is written first: a failure in
        between leaves two working keys, never none."""
        key, plaintext = self.issue_admin_key(label if label is not None else f"rotation of {key_id}")
        try:
            self._store.delete_key(None, key_id)
        except NotFoundError:
            self._store.delete_key(None, key.key_id)
            raise
        return key, plaintext

    def authenticate(self, authorization: str | None) -> Principal | None:
        token = bearer_token(authorization)
        if token is None:
            return None
        key = self._store.find_key(hash_api_key(token))
        if key is None:
            return None
        return Principal(role=key.role, key_id=key.key_id, business_id=key.business_id)

    def _new_key(self, role: ApiKeyRole, business_id: str | None, label: str | None) -> tuple[ApiKey, str]:
        key = ApiKey(key_id=new_id("key"), role=role, business_id=business_id, label=label, created_at=self._clock())
        return key, generate_api_key()
