"""Account credentials in AWS Secrets Manager: one secret per account, never logged, never returned."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class SecretsManagerStore:
    def __init__(self, client: SecretsManagerClient, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def name_for_account(self, business_id: str, account_id: str) -> str:
        return f"{self._prefix}/{business_id}/accounts/{account_id}"

    def put(self, name: str, value: dict[str, Any], tags: dict[str, str]) -> None:
        """Create the secret, or store a new version when it exists (a retried create lands here)."""
        payload = json.dumps(value, separators=(",", ":"))
        try:
            self._client.create_secret(
                Name=name,
                SecretString=payload,
                Tags=[{"Key": key, "Value": tag} for key, tag in tags.items()],
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceExistsException":
                raise
            self._client.put_secret_value(SecretId=name, SecretString=payload)

    def get(self, name: str) -> dict[str, Any]:
        response = self._client.get_secret_value(SecretId=name)
        value: dict[str, Any] = json.loads(response["SecretString"])
        return value

    def delete(self, name: str) -> None:
        try:
            self._client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
