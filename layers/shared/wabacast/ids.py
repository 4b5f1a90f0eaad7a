"""Identifiers that sort by creation time, so a Query on "<TYPE>#<id>" lists oldest first without a second index."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """`<prefix>_` + 12 hex digits of milliseconds since the epoch + 16 random hex digits."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"
