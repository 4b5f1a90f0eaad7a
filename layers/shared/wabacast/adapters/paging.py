"""Opaque paging tokens: DynamoDB's LastEvaluatedKey, encoded, and checked to stay inside the caller's partition."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from typing import Any

from wabacast.errors import InvalidInputError


def encode_token(last_evaluated_key: dict[str, Any] | None) -> str | None:
    if not last_evaluated_key:
        return None
    raw = json.dumps(last_evaluated_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(
    token: str | None,
    *,
    partition_attribute: str,
    partition_value: str,
    sort_attribute: str | None = None,
    sort_prefix: str | None = None,
    key_attributes: Collection[str] | None = None,
) -> dict[str, Any] | None:
    """Return the ExclusiveStartKey for a Query, refusing tokens made for another partition (another tenant).

    With `key_attributes` and `sort_prefix` it also refuses a token of another listing of the same partition:
    DynamoDB answers a start key outside the query's range (or missing a key attribute) with a ValidationException.
    """
    if not token:
        return None
    invalid = InvalidInputError("nextToken is not a token this listing returned", field="nextToken")
    try:
        padded = token + "=" * (-len(token) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise invalid from None
    if not isinstance(key, dict) or key.get(partition_attribute) != {"S": partition_value}:
        raise invalid
    if not all(
        isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str) for value in key.values()
    ):
        raise invalid
    if key_attributes is not None and set(key) != set(key_attributes):
        raise invalid
    if sort_attribute and sort_prefix and not str(key.get(sort_attribute, {}).get("S", "")).startswith(sort_prefix):
        raise invalid
    return key
