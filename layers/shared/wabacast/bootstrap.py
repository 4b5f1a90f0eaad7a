"""Operator tasks outside the API: creating the table locally and issuing the first admin key.

`python -m wabacast.bootstrap admin-key --label ops` prints a new admin key for the table in TABLE_NAME;
`admin-keys` lists the admin keys (ids, labels, creation times) and `revoke-admin-key KEY_ID` revokes one. They work
with AWS credentials alone, so a leaked admin key can be revoked even when no other admin key is at hand (the API's
/api/admin/keys routes do the same with an admin key).
"""

from __future__ import annotations

import argparse

import boto3

from wabacast.domain.models import ApiKey
from wabacast.settings import Settings
from wabacast.storage.table import TTL_ATTRIBUTE, create_table_request
from wabacast.wiring import build_business_service


def create_resources(settings: Settings) -> None:
    """Create the table (same definition as the CDK stack) if it does not exist yet."""
    client = boto3.client("dynamodb", region_name=settings.region)
    if settings.table_name in client.list_tables().get("TableNames", []):
        return
    client.create_table(**create_table_request(settings.table_name))
    client.get_waiter("table_exists").wait(TableName=settings.table_name)
    client.update_time_to_live(
        TableName=settings.table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


def issue_admin_key(settings: Settings, label: str) -> str:
    _, plaintext = build_business_service(settings).issue_admin_key(label)
    return plaintext


def admin_keys(settings: Settings) -> list[ApiKey]:
    """Every admin key (never the key itself: only its hash is stored)."""
    service = build_business_service(settings)
    keys: list[ApiKey] = []
    token: str | None = None
    while True:
        page = service.list_admin_keys(100, token)
        keys.extend(page.items)
        token = page.next_token
        if token is None:
            return keys


def revoke_admin_key(settings: Settings, key_id: str) -> None:
    # No caller key here: the operator acts with AWS credentials, so any admin key may go, the last one included.
    build_business_service(settings).revoke_admin_key(key_id, caller_key_id="")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wabacast.bootstrap")
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("admin-key", help="issue a new admin API key (printed once)")
    admin.add_argument("--label", default="bootstrap")
    commands.add_parser("admin-keys", help="list the admin keys: key id, creation time, label")
    revoke = commands.add_parser("revoke-admin-key", help="revoke an admin key by its key id")
    revoke.add_argument("key_id")
    arguments = parser.parse_args(argv)
    settings = Settings.from_env()
    if arguments.command == "admin-key":
        print(issue_admin_key(settings, arguments.label))
    elif arguments.command == "admin-keys":
        for key in admin_keys(settings):
            print(f"{key.key_id}\t{key.created_at.isoformat()}\t{key.label or ''}")
    elif arguments.command == "revoke-admin-key":
        revoke_admin_key(settings, arguments.key_id)
        print(f"revoked {arguments.key_id}")


if __name__ == "__main__":
    main()
