"""The run-time resources command on moto: what the API created per account is listed, repaired and removed."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass

import boto3
import pytest

from tests.integration.conftest import ApiClient, create_account, new_api_client, phone
from wabacast.adapters.dynamodb.base import TableGateway
from wabacast.settings import Settings
from wabacast_ops.resources import Environment, RuntimeResources, environment_from_outputs, main

TRUST_POLICY = {"Version": "2012-10-17", "Statement": []}


@dataclass(frozen=True)
class Functions:
    sender: str
    dead_letter: str
    old_sender: str


def _create_function(name: str) -> str:
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
    created = boto3.client("lambda", region_name="us-east-1").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": code.getvalue()},
    )
    return created["FunctionArn"]


@pytest.fixture
def functions(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Functions:
    """The sender and dead-letter functions, as the stack deploys them; the API provisions mappings to them."""
    made = Functions(
        sender=_create_function("wabacast-sender"),
        dead_letter=_create_function("wabacast-dead-letter"),
        old_sender=_create_function("wabacast-sender-replaced"),
    )
    monkeypatch.setenv("SENDER_FUNCTION_ARN", made.sender)
    monkeypatch.setenv("DEAD_LETTER_FUNCTION_ARN", made.dead_letter)
    return made


@pytest.fixture
def api(functions: Functions, business: ApiClient) -> ApiClient:
    # `business` was built before the function ARNs were set: a fresh API handler reads them.
    client = new_api_client(business.api_key)
    client.business_id = business.business_id  # type: ignore[attr-defined]
    return client


def _environment(settings: Settings, functions: Functions, **changes: str) -> Environment:
    outputs = {
        "TableName": settings.table_name,
        "QueueNamePrefix": settings.queue_name_prefix,
        "SecretsPrefix": settings.secrets_prefix,
        "SenderFunctionArn": functions.sender,
        "DeadLetterFunctionArn": functions.dead_letter,
        "SenderBatchSeconds": "0.8",
    }
    return environment_from_outputs({**outputs, **changes}, settings.region)


def _resources(environment: Environment) -> RuntimeResources:
    return RuntimeResources(
        environment,
        sqs=boto3.client("sqs", region_name=environment.region),
        lambda_client=boto3.client("lambda", region_name=environment.region),
        secrets=boto3.client("secretsmanager", region_name=environment.region),
        table=TableGateway(boto3.client("dynamodb", region_name=environment.region), environment.table_name or ""),
    )


def _suspended_accounts(api: ApiClient) -> tuple[dict[str, object], dict[str, object]]:
    """A Twilio account (with a secret) and a sandbox one, both SUSPENDED: their mappings are created disabled,
    so moto leaves their queues alone."""
    twilio = create_account(api, phone(1), "twilio", status="SUSPENDED")
    sandbox = create_account(api, phone(2), "sandbox", status="SUSPENDED")
    return twilio, sandbox


def test_list_finds_every_queue_mapping_and_secret_the_api_created(
    settings: Settings, functions: Functions, api: ApiClient
) -> None:
    # GIVEN two accounts created through the API
    twilio, sandbox = _suspended_accounts(api)
    # AND a queue of another environment whose prefix starts with this one's
    boto3.client("sqs", region_name=settings.region).create_queue(
        QueueName=f"{settings.queue_name_prefix}-dev-acc_0123456789abcdef0123456789ab.fifo",
        Attributes={"FifoQueue": "true"},
    )

    # WHEN the run-time resources are listed
    inventory = _resources(_environment(settings, functions)).inventory()

    # THEN both accounts' queues and dead-letter queues are there, and nothing of the other environment
    prefix = settings.queue_name_prefix
    assert [queue.name for queue in inventory.queues] == sorted(
        f"{prefix}-{account['id']}{suffix}.fifo" for account in (twilio, sandbox) for suffix in ("", "-dlq")
    )
    # AND the four mappings: each queue to the sender, each dead-letter queue to the dead-letter consumer
    assert sorted((m.account_id, m.dead_letter, m.function_arn) for m in inventory.mappings) == sorted(
        (account["id"], dead_letter, functions.dead_letter if dead_letter else functions.sender)
        for account in (twilio, sandbox)
        for dead_letter in (False, True)
    )
    # AND the Twilio account's secret (the sandbox one has none)
    business_id = api.business_id  # type: ignore[attr-defined]
    assert [(secret.business_id, secret.account_id) for secret in inventory.secrets] == [(business_id, twilio["id"])]


def test_reconcile_repoints_a_mapping_of_a_replaced_function_and_recreates_what_is_missing(
    settings: Settings, functions: Functions, api: ApiClient
) -> None:
    # GIVEN two accounts created through the API
    twilio, sandbox = _suspended_accounts(api)
    resources = _resources(_environment(settings, functions))
    before = resources.inventory()
    lambda_client = boto3.client("lambda", region_name=settings.region)
    sqs = boto3.client("sqs", region_name=settings.region)
    # AND the first account's queue mapped to the sender the stack has since replaced
    stale = next(m for m in before.mappings if m.account_id == twilio["id"] and not m.dead_letter)
    lambda_client.update_event_source_mapping(UUID=stale.uuid, FunctionName=functions.old_sender)
    # AND the second account's dead-letter queue gone with its mapping
    gone = next(q for q in before.queues if q.account_id == sandbox["id"] and q.dead_letter)
    for mapping in before.mappings:
        if mapping.source_arn == gone.arn:
            lambda_client.delete_event_source_mapping(UUID=mapping.uuid)
    sqs.delete_queue(QueueUrl=gone.url)
    # AND a queue and a secret left by an account no longer in the table
    orphan_id = "acc_0123456789abcdef0123456789ab"
    sqs.create_queue(QueueName=f"{settings.queue_name_prefix}-{orphan_id}.fifo", Attributes={"FifoQueue": "true"})
    orphan_secret = f"{settings.secrets_prefix}/biz_0123456789abcdef0123456789ab/accounts/{orphan_id}"
    boto3.client("secretsmanager", region_name=settings.region).create_secret(Name=orphan_secret, SecretString="{}")

    # WHEN the resources are reconciled
    report = resources.reconcile()
    after = resources.inventory()

    # THEN the stale mapping invokes the current sender again (the same mapping, not a second one)
    assert report.repointed_mappings == [stale.uuid]
    repaired = [m for m in after.mappings if m.source_arn == stale.source_arn]
    assert [(m.uuid, m.function_arn) for m in repaired] == [(stale.uuid, functions.sender)]
    # AND the missing dead-letter queue and its mapping are back, the queue's redrive pointing at it
    assert report.created_queues == [gone.name]
    recreated = next(q for q in after.queues if q.name == gone.name)
    assert [m.function_arn for m in after.mappings if m.source_arn == recreated.arn] == [functions.dead_letter]
    main_queue = next(q for q in after.queues if q.account_id == sandbox["id"] and not q.dead_letter)
    redrive = sqs.get_queue_attributes(QueueUrl=main_queue.url, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert json.loads(redrive["RedrivePolicy"])["deadLetterTargetArn"] == recreated.arn
    # AND every account has its two queues and two mappings, each to the right function
    assert sorted(report.provisioned_accounts) == sorted([twilio["id"], sandbox["id"]])
    for account in (twilio, sandbox):
        mapped = sorted((m.dead_letter, m.function_arn) for m in after.mappings if m.account_id == account["id"])
        assert mapped == [(False, functions.sender), (True, functions.dead_letter)]
    # AND the leftovers are reported, not deleted
    assert report.orphan_queues == [f"{settings.queue_name_prefix}-{orphan_id}.fifo"]
    assert report.orphan_secrets == [orphan_secret]
    assert report.missing_secrets == []
    # AND a second run finds nothing to repair
    again = resources.reconcile()
    assert (again.repointed_mappings, again.created_queues, again.created_mappings) == ([], [], [])


def test_remove_leaves_nothing_of_this_environment(settings: Settings, functions: Functions, api: ApiClient) -> None:
    # GIVEN two accounts created through the API, and one of another environment sharing the prefix's start
    _suspended_accounts(api)
    sqs = boto3.client("sqs", region_name=settings.region)
    other = f"{settings.queue_name_prefix}-dev-acc_0123456789abcdef0123456789ab.fifo"
    sqs.create_queue(QueueName=other, Attributes={"FifoQueue": "true"})
    resources = _resources(_environment(settings, functions))
    assert len(resources.inventory().queues) == 4

    # WHEN they are removed
    report = resources.remove()

    # THEN every queue, mapping and secret is gone
    assert (len(report.deleted_queues), len(report.deleted_mappings), len(report.deleted_secrets)) == (4, 4, 1)
    assert resources.inventory().is_empty()
    assert boto3.client("lambda", region_name=settings.region).list_event_source_mappings()["EventSourceMappings"] == []
    # AND the other environment's queue is untouched
    assert [url.rsplit("/", 1)[-1] for url in sqs.list_queues()["QueueUrls"]] == [other]


def test_the_command_reads_the_environment_from_flags_and_removes_only_with_yes(
    settings: Settings, functions: Functions, api: ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an account created through the API
    create_account(api, phone(3), "sandbox", status="SUSPENDED")
    flags = ["--queue-prefix", settings.queue_name_prefix, "--secrets-prefix", settings.secrets_prefix]
    # WHEN remove runs without --yes
    assert main(["remove", *flags, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    # THEN it only lists
    assert len(listed["queues"]) == 2
    assert len(_resources(_environment(settings, functions)).inventory().queues) == 2
    # AND with --yes it removes everything
    assert main(["remove", *flags, "--yes"]) == 0
    assert _resources(_environment(settings, functions)).inventory().is_empty()
    # AND without a stack or the prefixes it refuses to guess
    assert main(["list"]) == 2
