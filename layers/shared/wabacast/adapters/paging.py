"""Opaque paging tokens: DynamoDB's LastEvaluatedKey, encoded, and checked to stay inside the caller's partition."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from wabacast.errors import InvalidInputError


def encode_token(last_evaluated_key: dict[str, Any] | None) -> str | None:
    if not last_evaluated_key:
        return None
    raw = json.dumps(last_evaluated_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, *, partition_attribute: str, partition_value: str) -> dict[str, Any] | None:
    """Return the ExclusiveStartKey for a Query, refusing tokens made for another partition (another tenant)."""
    if not token:
        return None
    invalid = InvalidInputError("nextToken is not a token this listing returned", field="nextToken")
    try:
        padded = token + "=" * (-len(token) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(key, dict) or key.get(partition_attribute) != {"S": partition_value}:
        raise invalid
    if not all(isinstance(value, dict) and set(value) == {"S"} for value in key.values()):
        raise invalid
    return key
