"""Operator tasks outside the API: creating the table locally and issuing the first admin key.

`python -m wabacast.bootstrap admin-key --label ops` prints a new admin key for the table in TABLE_NAME.
"""

from __future__ import annotations

import argparse

import boto3

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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m wabacast.bootstrap")
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("admin-key", help="issue a new admin API key (printed once)")
    admin.add_argument("--label", default="bootstrap")
    arguments = parser.parse_args()
    if arguments.command == "admin-key":
        print(issue_admin_key(Settings.from_env(), arguments.label))


if __name__ == "__main__":
    main()
