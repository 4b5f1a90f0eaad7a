"""Demo data, created through the public API exactly as a user would create it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

DEMO_BUSINESS = {"name": "Demo Business", "timezone": "UTC"}


class SeedError(RuntimeError):
    pass


@dataclass(frozen=True)
class DemoBusiness:
    id: str
    name: str
    api_key: str


def create_demo_business(api_url: str, admin_api_key: str, timeout_seconds: float = 30.0) -> DemoBusiness:
    """POST /api/admin/businesses over real HTTP, so the demo data goes through the gateway, authorizer and API."""
    request = urllib.request.Request(  # noqa: S310 (the URL is the local stack's own http:// address)
        f"{api_url}/api/admin/businesses",
        method="POST",
        data=json.dumps(DEMO_BUSINESS).encode(),
        headers={"Authorization": f"Bearer {admin_api_key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:  # noqa: S310
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    if status != 201:
        raise SeedError(f"POST /api/admin/businesses answered {status}: {body.decode(errors='replace')[:500]}")
    business: Any = json.loads(body)
    try:
        return DemoBusiness(id=str(business["id"]), name=str(business["name"]), api_key=str(business["apiKey"]))
    except (KeyError, TypeError) as error:
        raise SeedError(f"POST /api/admin/businesses answered an unexpected body: {business!r}") from error
