"""What the API creates at run time, outside CloudFormation: list it, reconcile it with the table, remove it.

Per WhatsApp account the API creates "<queuePrefix>-<accountId>.fifo", its "-dlq.fifo" twin, an event source mapping
from each to the sender / the dead-letter consumer (wabacast.adapters.sqs.AccountQueues) and, for Twilio and Meta
accounts, the secret "<secretsPrefix>/<businessId>/accounts/<accountId>" (wabacast.adapters.secrets). The stack
does not own them, so `cdk destroy` would leave them behind, and a replaced function leaves mappings pointing at
the old one.

    python -m wabacast_ops.resources list      --stack-name Wabacast-dev [--json]
    python -m wabacast_ops.resources reconcile --stack-name Wabacast-dev [--json]
    python -m wabacast_ops.resources remove    --stack-name Wabacast-dev --yes

The environment (prefixes, table, function ARNs) comes from the deployed stack's outputs, or from flags
(--queue-prefix, --secrets-prefix, --table-name, --sender-function-arn, --dead-letter-function-arn), which win.
Only names built exactly as the code builds them count (an account id as wabacast.ids.new_id makes it), so another
environment whose prefix starts with this one's is never touched. See docs/operations.md, "Run-time resources".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from wabacast.adapters.dynamodb import AccountRepository, BusinessRepository
from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.adapters.sqs import AccountQueues
from wabacast.domain.delivery import parse_account_queue_name
from wabacast.domain.models import Account
from wabacast.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# What wabacast.ids.new_id makes: "<type>_" + 12 hex digits of milliseconds + 16 random hex digits.
_ID = r"[a-z]+_[0-9a-f]{28}"
_ID_PATTERN = re.compile(_ID)
# The stack outputs the command reads (infra/stack.py), and the Environment field each fills.
STACK_OUTPUTS = {
    "TableName": "table_name",
    "QueueNamePrefix": "queue_name_prefix",
    "SecretsPrefix": "secrets_prefix",
    "SenderFunctionArn": "sender_function_arn",
    "DeadLetterFunctionArn": "dead_letter_function_arn",
    "SenderBatchSeconds": "sender_batch_s",
}
_MISSING_QUEUE_CODES = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


@dataclass(frozen=True)
class Environment:
    """One deployed environment's names: what its code creates at run time is named from these."""

    region: str
    queue_name_prefix: str
    secrets_prefix: str
    table_name: str | None = None
    sender_function_arn: str | None = None
    dead_letter_function_arn: str | None = None
    sender_batch_s: float = 0.8

    def settings(self) -> Settings:
        """The settings the API provisions account queues with (reconcile provisions the same way)."""
        return Settings(
            table_name=self.table_name or "---",
            region=self.region,
            queue_name_prefix=self.queue_name_prefix,
            secrets_prefix=self.secrets_prefix,
            sender_function_arn=self.sender_function_arn,
            dead_letter_function_arn=self.dead_letter_function_arn,
            sender_batch_s=self.sender_batch_s,
        )


def stack_outputs(cloudformation: CloudFormationClient, stack_name: str) -> dict[str, str]:
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def environment_from_outputs(outputs: dict[str, str], region: str, **overrides: Any) -> Environment:
    """The environment from stack outputs, with flags (`overrides`, None = not given) winning."""
    values: dict[str, Any] = {name: outputs[key] for key, name in STACK_OUTPUTS.items() if key in outputs}
    values.update({name: value for name, value in overrides.items() if value is not None})
    if "sender_batch_s" in values:
        values["sender_batch_s"] = float(values["sender_batch_s"])
    missing = [name for name in ("queue_name_prefix", "secrets_prefix") if not values.get(name)]
    if missing:
        raise ValueError(f"unknown {', '.join(missing)}: pass --stack-name of a deployed stack, or the flags")
    return Environment(region=region, **values)


# The inventory ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueResource:
    name: str
    url: str
    arn: str
    account_id: str
    dead_letter: bool


@dataclass(frozen=True)
class MappingResource:
    uuid: str
    source_arn: str
    function_arn: str
    state: str
    account_id: str
    dead_letter: bool


@dataclass(frozen=True)
class SecretResource:
    name: str
    business_id: str
    account_id: str


@dataclass
class Inventory:
    queues: list[QueueResource] = field(default_factory=list)
    mappings: list[MappingResource] = field(default_factory=list)
    secrets: list[SecretResource] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.queues or self.mappings or self.secrets)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queues": [asdict(queue) for queue in self.queues],
            "mappings": [asdict(mapping) for mapping in self.mappings],
            "secrets": [asdict(secret) for secret in self.secrets],
        }


@dataclass
class ReconcileReport:
    """What reconcile changed, and what it found but leaves to a human (orphans: no account in the table)."""

    repointed_mappings: list[str] = field(default_factory=list)
    deleted_duplicate_mappings: list[str] = field(default_factory=list)
    provisioned_accounts: list[str] = field(default_factory=list)
    created_queues: list[str] = field(default_factory=list)
    created_mappings: list[str] = field(default_factory=list)
    orphan_queues: list[str] = field(default_factory=list)
    orphan_mappings: list[str] = field(default_factory=list)
    orphan_secrets: list[str] = field(default_factory=list)
    missing_secrets: list[str] = field(default_factory=list)


@dataclass
class RemoveReport:
    deleted_mappings: list[str] = field(default_factory=list)
    deleted_queues: list[str] = field(default_factory=list)
    deleted_secrets: list[str] = field(default_factory=list)


class RuntimeResources:
    def __init__(
        self,
        environment: Environment,
        *,
        sqs: SQSClient,
        lambda_client: LambdaClient,
        secrets: SecretsManagerClient,
        table: TableGateway | None = None,
    ) -> None:
        self._env = environment
        self._sqs = sqs
        self._lambda = lambda_client
        self._secrets = secrets
        self._table = table
        self._secret_name = re.compile(rf"{re.escape(environment.secrets_prefix)}/({_ID})/accounts/({_ID})")

    # Listing -------------------------------------------------------------------------------------------------
    def inventory(self) -> Inventory:
        return Inventory(queues=self._queues(), mappings=self._mappings(), secrets=self._account_secrets())

    def _parse_queue(self, name_or_arn: str) -> tuple[str, bool] | None:
        parsed = parse_account_queue_name(self._env.queue_name_prefix, name_or_arn)
        if parsed is None or not _ID_PATTERN.fullmatch(parsed.account_id):
            return None
        return parsed.account_id, parsed.dead_letter

    def _queues(self) -> list[QueueResource]:
        found: list[QueueResource] = []
        for url in self._queue_urls():
            name = url.rsplit("/", 1)[-1]
            parsed = self._parse_queue(name)
            if parsed is None:
                continue
            try:
                attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
            except ClientError as error:
                if error.response["Error"]["Code"] in _MISSING_QUEUE_CODES:
                    continue  # deleted since it was listed
                raise
            found.append(QueueResource(name, url, attributes["QueueArn"], *parsed))
        return sorted(found, key=lambda queue: queue.name)

    def _queue_urls(self) -> Iterator[str]:
        request: dict[str, Any] = {"QueueNamePrefix": f"{self._env.queue_name_prefix}-", "MaxResults": 1000}
        while True:
            response = self._sqs.list_queues(**request)
            yield from response.get("QueueUrls", [])
            if not response.get("NextToken"):
                return
            request["NextToken"] = response["NextToken"]

    def _mappings(self) -> list[MappingResource]:
        """Every mapping in the region whose source is one of this environment's account queues (existing or not)."""
        found: list[MappingResource] = []
        request: dict[str, Any] = {"MaxItems": 100}
        while True:
            response = self._lambda.list_event_source_mappings(**request)
            for mapping in response.get("EventSourceMappings", []):
                source = mapping.get("EventSourceArn", "")
                parsed = self._parse_queue(source) if source.startswith("arn:") and ":sqs:" in source else None
                if parsed is None:
                    continue
                found.append(
                    MappingResource(
                        uuid=mapping["UUID"],
                        source_arn=source,
                        function_arn=mapping.get("FunctionArn", ""),
                        state=mapping.get("State", ""),
                        account_id=parsed[0],
                        dead_letter=parsed[1],
                    )
                )
            if not response.get("NextMarker"):
                break
            request["Marker"] = response["NextMarker"]
        return sorted(found, key=lambda mapping: (mapping.source_arn, mapping.uuid))

    def _account_secrets(self) -> list[SecretResource]:
        found: list[SecretResource] = []
        request: dict[str, Any] = {
            "Filters": [{"Key": "name", "Values": [f"{self._env.secrets_prefix}/"]}],
            "MaxResults": 100,
        }
        while True:
            response = self._secrets.list_secrets(**request)
            for secret in response.get("SecretList", []):
                match = self._secret_name.fullmatch(secret.get("Name", ""))
                if match:
                    found.append(SecretResource(secret["Name"], business_id=match[1], account_id=match[2]))
            if not response.get("NextToken"):
                break
            request["NextToken"] = response["NextToken"]
        return sorted(found, key=lambda secret: secret.name)

    # Reconciling ---------------------------------------------------------------------------------------------
    def reconcile(self) -> ReconcileReport:
        """Mappings to a replaced function point at the current one again (a second mapping on the same queue is
        deleted instead); every account in the table gets its queues and mappings back as the API provisions them
        (mapping enabled only while ACTIVE, attributes converged, e.g. a new redrive); the rest is reported."""
        if self._table is None:
            raise ValueError("reconcile reads the accounts from the table: the table name is unknown")
        report = ReconcileReport()
        before = self.inventory()
        self._repoint_mappings(before, report)
        accounts = list(self._accounts())
        provisioner = AccountQueues(self._sqs, self._lambda, self._env.settings())
        for account in accounts:
            provisioner.provision(account)
            report.provisioned_accounts.append(account.id)
        after = self.inventory()
        known_queues = {queue.name for queue in before.queues}
        known_mappings = {mapping.uuid for mapping in before.mappings}
        report.created_queues = [queue.name for queue in after.queues if queue.name not in known_queues]
        report.created_mappings = [m.uuid for m in after.mappings if m.uuid not in known_mappings]
        account_ids = {account.id for account in accounts}
        existing_queues = {queue.arn for queue in after.queues}
        report.orphan_queues = [queue.name for queue in after.queues if queue.account_id not in account_ids]
        report.orphan_mappings = [
            m.uuid for m in after.mappings if m.account_id not in account_ids or m.source_arn not in existing_queues
        ]
        report.orphan_secrets = [secret.name for secret in after.secrets if secret.account_id not in account_ids]
        secret_accounts = {secret.account_id for secret in after.secrets}
        report.missing_secrets = [
            account.id for account in accounts if account.credentials.configured and account.id not in secret_accounts
        ]
        return report

    def _expected_function(self, mapping: MappingResource) -> str | None:
        return self._env.dead_letter_function_arn if mapping.dead_letter else self._env.sender_function_arn

    def _repoint_mappings(self, inventory: Inventory, report: ReconcileReport) -> None:
        by_source: dict[str, list[MappingResource]] = {}
        for mapping in inventory.mappings:
            by_source.setdefault(mapping.source_arn, []).append(mapping)
        for mappings in by_source.values():
            expected = self._expected_function(mappings[0])
            if expected is None:
                continue  # this environment maps nothing to that kind of queue (or the flags did not say)
            has_current = any(mapping.function_arn == expected for mapping in mappings)
            for mapping in mappings:
                if mapping.function_arn == expected:
                    continue
                if has_current:
                    self._lambda.delete_event_source_mapping(UUID=mapping.uuid)
                    report.deleted_duplicate_mappings.append(mapping.uuid)
                else:
                    self._lambda.update_event_source_mapping(UUID=mapping.uuid, FunctionName=expected)
                    report.repointed_mappings.append(mapping.uuid)
                    has_current = True

    def _accounts(self) -> Iterator[Account]:
        assert self._table is not None
        businesses = BusinessRepository(self._table)
        accounts = AccountRepository(self._table)
        business_token: str | None = None
        while True:
            page = businesses.list(100, business_token)
            for business in page.items:
                account_token: str | None = None
                while True:
                    account_page = accounts.list(business, 100, account_token)
                    yield from account_page.items
                    account_token = account_page.next_token
                    if account_token is None:
                        break
            business_token = page.next_token
            if business_token is None:
                return

    # Removing ------------------------------------------------------------------------------------------------
    def remove(self) -> RemoveReport:
        """Mappings first (so nothing polls a queue being deleted), then queues and dead-letter queues, then the
        secrets (deleted without a recovery window: a teardown leaves nothing behind)."""
        inventory = self.inventory()
        report = RemoveReport()
        for mapping in inventory.mappings:
            try:
                self._lambda.delete_event_source_mapping(UUID=mapping.uuid)
            except self._lambda.exceptions.ResourceNotFoundException:
                continue
            report.deleted_mappings.append(mapping.uuid)
        for queue in inventory.queues:
            try:
                self._sqs.delete_queue(QueueUrl=queue.url)
            except ClientError as error:
                if error.response["Error"]["Code"] not in _MISSING_QUEUE_CODES:
                    raise
                continue
            report.deleted_queues.append(queue.name)
        for secret in inventory.secrets:
            try:
                self._secrets.delete_secret(SecretId=secret.name, ForceDeleteWithoutRecovery=True)
            except self._secrets.exceptions.ResourceNotFoundException:
                continue
            report.deleted_secrets.append(secret.name)
        return report


# Command line -----------------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wabacast_ops.resources", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("list", "reconcile", "remove"))
    parser.add_argument("--stack-name", help="read the environment from this deployed stack's outputs")
    parser.add_argument("--region", help="default: the AWS CLI/SDK configuration")
    parser.add_argument("--queue-prefix", dest="queue_name_prefix")
    parser.add_argument("--secrets-prefix", dest="secrets_prefix")
    parser.add_argument("--table-name", dest="table_name")
    parser.add_argument("--sender-function-arn", dest="sender_function_arn")
    parser.add_argument("--dead-letter-function-arn", dest="dead_letter_function_arn")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--yes", action="store_true", help="remove: do it (without --yes it only lists)")
    return parser


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    for section, entries in result.items():
        print(f"{section}: {len(entries)}")
        for entry in entries:
            print(f"  {entry['name'] if isinstance(entry, dict) and 'name' in entry else entry}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    session = boto3.session.Session(region_name=args.region)
    region = session.region_name or "us-east-1"
    outputs = stack_outputs(session.client("cloudformation"), args.stack_name) if args.stack_name else {}
    try:
        environment = environment_from_outputs(
            outputs,
            region,
            queue_name_prefix=args.queue_name_prefix,
            secrets_prefix=args.secrets_prefix,
            table_name=args.table_name,
            sender_function_arn=args.sender_function_arn,
            dead_letter_function_arn=args.dead_letter_function_arn,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    resources = RuntimeResources(
        environment,
        sqs=session.client("sqs"),
        lambda_client=session.client("lambda"),
        secrets=session.client("secretsmanager"),
        table=TableGateway(session.client("dynamodb"), environment.table_name) if environment.table_name else None,
    )
    if args.command == "list" or (args.command == "remove" and not args.yes):
        inventory = resources.inventory()
        result: dict[str, Any] = {
            "queues": [queue.name for queue in inventory.queues],
            "mappings": [f"{m.uuid} {m.source_arn} -> {m.function_arn} ({m.state})" for m in inventory.mappings],
            "secrets": [secret.name for secret in inventory.secrets],
        }
        if args.json:
            result = inventory.as_dict()
        _print(result, args.json)
        if args.command == "remove":
            print("nothing removed: pass --yes to delete all of the above", file=sys.stderr)
        return 0
    if args.command == "reconcile":
        _print(asdict(resources.reconcile()), args.json)
        return 0
    _print(asdict(resources.remove()), args.json)
    left = resources.inventory()
    if not left.is_empty():
        print("error: resources appeared while removing (is the API still creating accounts?)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
