"""Secrets a webhook is checked with: the stack's (verify token, optional Meta app secret) and an account's
credentials, read through a cached getter (Powertools parameters in AWS: a rotated value is seen within its
max age)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wabacast.domain.webhooks import StackWebhookSecrets

SecretsGetter = Callable[[str], dict[str, Any]]


class WebhookSecretsReader:
    def __init__(
        self,
        getter: SecretsGetter,
        stack_secret_name: str | None,
        account_secret_name: Callable[[str, str], str],
    ) -> None:
        self._getter = getter
        self._stack_secret_name = stack_secret_name
        self._account_secret_name = account_secret_name

    def stack(self) -> StackWebhookSecrets:
        """Empty when the stack has no webhook secret: every handshake is then refused."""
        if not self._stack_secret_name:
            return StackWebhookSecrets()
        raw = self._getter(self._stack_secret_name)
        return StackWebhookSecrets(
            meta_verify_token=str(raw.get("metaVerifyToken") or "") or None,
            meta_app_secret=str(raw.get("metaAppSecret") or "") or None,
        )

    def account_credentials(self, business_id: str, account_id: str) -> dict[str, Any]:
        """The account's stored credentials; empty when it has none (its webhooks are then refused)."""
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            return self._getter(self._account_secret_name(business_id, account_id))
        except GetParameterError:
            return {}
