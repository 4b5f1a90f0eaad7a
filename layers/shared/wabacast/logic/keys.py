"""API keys: random, shown once, stored and looked up only by their SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from wabacast.domain.models import ApiKeyRole

KEY_PREFIX = "wbk_"


def generate_api_key() -> str:
    # 256 bits of randomness: a fast hash is enough, nothing to brute-force (unlike passwords).
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the authorizer established it."""

    role: ApiKeyRole
    key_id: str
    business_id: str | None = None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
