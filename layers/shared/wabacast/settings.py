"""Runtime settings, read once from the environment by the entry points (never at import time of logic)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Everything a handler needs to know about where it runs.

    Built by `Settings.from_env()` in handlers and the local stack, and passed down explicitly.
    """

    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3)
    # Account credentials live at "{secrets_prefix}/{businessId}/accounts/{accountId}"; IAM is scoped to the prefix.
    secrets_prefix: str = "wabacast"
    region: str = "us-east-1"
    # Optional override used by the local stack (moto server); boto3 honours AWS_ENDPOINT_URL by itself.
    endpoint_url: str | None = None
    default_page_size: int = Field(default=50, ge=1, le=100)
    # Base URL of the sandbox WhatsApp provider; sandbox accounts are refused when it is not set.
    sandbox_base_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            table_name=env.get("TABLE_NAME", ""),
            secrets_prefix=env.get("SECRETS_PREFIX", "wabacast"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            sandbox_base_url=env.get("SANDBOX_BASE_URL") or None,
        )
