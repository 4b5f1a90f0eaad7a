"""Each function's role allows every AWS call its code makes: the calls are recorded while representative flows
run the real handlers on moto, mapped to IAM actions (tests/support/aws_calls.py) and compared with the
synthesized policies. A new boto3 call whose action the role lacks fails here.

The flows run inside this test (not collected from other test files), so the check does not depend on which
tests ran in which process under `pytest -n 2 --dist loadfile`.

To cover a new function (e.g. a scheduler): add its logical id to `function_ids` (tests/infra/conftest.py), wrap
its handler with `recorder.wrap(monkeypatch, "<name>", module)` in a flow that exercises it, and add it to
FUNCTIONS; add its event source to POLLED_BY_MAPPINGS if a mapping polls SQS with its role.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_cdk.assertions import Template
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from infra_helpers import actions_of, statements_of_role

from tests.integration.conftest import (
    META_CREDENTIALS,
    ApiClient,
    FakeLambdaContext,
    account_body,
    aws_environment,
    issue_admin_key,
    load_function_module,
    new_api_client,
    new_business,
    phone,
)
from tests.integration.delivery.conftest import PLAN_QUEUE_NAME, Pipeline, new_queue, process
from tests.support.aws_calls import AwsCallRecorder
from wabacast.settings import Settings
from wabacast_local.moto_fixes import install_all as install_moto_fixes
from wabacast_local.sandbox import SandboxServer

# The account sync's service (wabacast.account_health_wiring, AccountHealthService) lands on its own: until it
# does, the account sync's flow cannot run, and its checks are skipped (never passed without a recording).
ACCOUNT_HEALTH_MISSING = importlib.util.find_spec("wabacast.account_health_wiring") is None
FUNCTIONS = ("api", "authorizer", "planner", "plan_worker", "sender", "dead_letter", "scheduler", "account_sync")
CHECKED = [
    pytest.param(
        function,
        marks=pytest.mark.skipif(
            function == "account_sync" and ACCOUNT_HEALTH_MISSING,
            reason="wabacast.account_health_wiring is not there yet: the account sync's flow cannot run",
        ),
    )
    for function in FUNCTIONS
]
# What Lambda's SQS event source mapping does with the function's role (Lambda developer guide, "Amazon SQS
# execution role permissions"): the handlers never make these calls, the mapping does.
MAPPING_POLL_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
POLLED_BY_MAPPINGS = ("plan_worker", "sender", "dead_letter")
# Granted on purpose though the flows below never call them, each with the reason.
GRANTED_BEYOND_THE_FLOWS = {
    # The shared table statement (DataStore.read_write_statement) is one set for every function: which item actions
    # a function uses varies with the path (and transactions are authorized item by item), so table actions are
    # reported, not asserted.
    "xray:PutTraceSegments": "Lambda's active tracing sends segments with the role; no boto3 call",
    "xray:PutTelemetryRecords": "Lambda's active tracing, as above",
}
# The same, for one function only.
GRANTED_TO_ONE_FUNCTION_BEYOND_THE_FLOWS = {
    "scheduler": {
        # Lambda's asynchronous invocation sends a failed event to the on-failure destination (the schedules'
        # dead-letter queue) with the function's role; the code makes no SQS call.
        "sqs:SendMessage": "on-failure destination, used by Lambda",
        "sqs:GetQueueAttributes": "on-failure destination (CDK's grant), used by Lambda",
        "sqs:GetQueueUrl": "on-failure destination (CDK's grant), used by Lambda",
        # An expiry fire removes the queue's schedules; starting one makes none (the flow fires a start).
        "scheduler:DeleteSchedule": "an expiry removes the queue's schedules",
        "scheduler:CreateSchedule": "the schedule permissions the API has (ScheduleKeeper)",
        "scheduler:UpdateSchedule": "the schedule permissions the API has (ScheduleKeeper)",
        "scheduler:GetSchedule": "the schedule permissions the API has (ScheduleKeeper)",
        "iam:PassRole": "the invoke role, passed when a schedule is made (ScheduleKeeper)",
    },
    "sender": {
        # A queue paused by Twilio's daily limit (63038) gets a one-time schedule that resumes it; the flow meets no
        # such limit (tests/unit/delivery/test_limit_resume.py covers it).
        "scheduler:CreateSchedule": "a limit's resume (FailureFates)",
        "scheduler:UpdateSchedule": "a limit's resume when the queue's exists already (FailureFates)",
        "iam:PassRole": "the invoke role, passed when the resume is made",
    },
}
TRUST_POLICY = {"Version": "2012-10-17", "Statement": []}


def _allowed_actions(resources: dict[str, Any], function_id: str) -> set[str]:
    role_id = resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = statements_of_role(resources, role_id)
    return {action for s in statements if s.get("Effect", "Allow") == "Allow" for action in actions_of(s)}


def _is_allowed(action: str, allowed: set[str]) -> bool:
    return any(fnmatch.fnmatchcase(action, pattern) for pattern in allowed)


def _create_function(name: str) -> str:
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(TRUST_POLICY))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
    return boto3.client("lambda", region_name="us-east-1").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": code.getvalue()},
    )["FunctionArn"]


@contextmanager
def _world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    with aws_environment() as settings:
        # A planner to start at once when a queue is processed (moto accepts the asynchronous invoke).
        monkeypatch.setenv("PLANNER_FUNCTION_NAME", _create_function("wabacast-planner"))
        yield settings


def _api(recorder: AwsCallRecorder, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> ApiClient:
    client = new_api_client(issue_admin_key(settings, "iam-audit"))
    recorder.wrap(monkeypatch, "api", client._api)
    recorder.wrap(monkeypatch, "authorizer", client._authorizer)
    return client


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status == status, response.body
    return response.body  # type: ignore[no-any-return]


def _account_lifecycle_in_aws(recorder: AwsCallRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API as in AWS (function ARNs set, so accounts get mappings): create, converge, update, delete."""
    with pytest.MonkeyPatch.context() as patch, _world(patch) as settings:
        patch.setenv("SENDER_FUNCTION_ARN", _create_function("wabacast-sender"))
        patch.setenv("DEAD_LETTER_FUNCTION_ARN", _create_function("wabacast-dead-letter"))
        business = new_business(_api(recorder, patch, settings))
        # Not ACTIVE: mappings are created disabled, so moto leaves the queues alone.
        account = _ok(business.post("/api/whatsapp/accounts", account_body(phone(1), "meta", status="SUSPENDED")), 201)
        # A queue whose attributes drifted is converged by the next provisioning (SetQueueAttributes, TagQueue).
        sqs = boto3.client("sqs", region_name=settings.region)
        url = sqs.get_queue_url(QueueName=f"{settings.queue_name_prefix}-{account['id']}.fifo")["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "30"})
        changed = {"limits": {"messagesPerSecond": 5, "dailyRecipientLimit": 100}, "credentials": META_CREDENTIALS}
        _ok(business.put(f"/api/whatsapp/accounts/{account['id']}", changed))
        _ok(business.get(f"/api/whatsapp/accounts/{account['id']}"))
        _ok(business.get("/api/whatsapp/accounts"))
        assert business.delete(f"/api/whatsapp/accounts/{account['id']}").status in (200, 204)


def _delivery(recorder: AwsCallRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plan, feed and send a campaign from a Meta account (its secret read by the sender), with a retryable failure
    (a delayed redelivery) and a dead-lettered message."""
    with pytest.MonkeyPatch.context() as patch, _world(patch) as settings, SandboxServer() as sandbox:
        install_moto_fixes()
        patch.setenv("META_BASE_URL", sandbox.url)
        patch.setenv("SANDBOX_BASE_URL", sandbox.url)
        patch.setattr("wabacast.logic.sender.BACKOFF_BASE_S", 0)
        # Powertools' secrets provider keeps its client between tests: this one must make its own.
        patch.delitem(DEFAULT_PROVIDERS, "secrets", raising=False)
        plan_queue = boto3.client("sqs", region_name=settings.region).create_queue(QueueName=PLAN_QUEUE_NAME)
        patch.setenv("PLAN_QUEUE_URL", plan_queue["QueueUrl"])
        business = new_business(_api(recorder, patch, settings))
        account = _ok(business.post("/api/whatsapp/accounts", account_body(phone(1), "meta")), 201)
        failing, fine = phone(2), phone(3)
        sandbox.configure(recipient_errors={failing: 131000})
        pipeline = Pipeline(settings, business, sandbox)
        for name, module in (
            ("planner", pipeline.planner),
            ("plan_worker", pipeline.plan_worker),
            ("sender", pipeline.sender),
            ("dead_letter", pipeline.dead_letter),
        ):
            recorder.wrap(patch, name, module)
        queue = new_queue(business, [failing, fine], maxAttempts=2)
        process(business, queue["id"])
        progress = pipeline.run_until_settled(queue["id"], max_rounds=6)[queue["id"]]
        assert (progress["counters"]["sent"], progress["counters"]["failed"]) == (1, 1), progress
        # A message SQS gave up on reaches the dead-letter consumer.
        sqs = boto3.client("sqs", region_name=settings.region)
        sqs.send_message(
            QueueUrl=pipeline.queue_url(account["id"], dead_letter=True),
            MessageBody=json.dumps({"b": business.business_id, "q": queue["id"], "j": "job_gone"}),  # type: ignore[attr-defined]
            MessageGroupId="g",
            MessageDeduplicationId="d",
        )
        assert pipeline.drain_dead_letters() == 1
        _ok(business.get(f"/api/whatsapp/queue/{queue['id']}/process"))
        assert pipeline.planner.lambda_handler({"source": "test"}, FakeLambdaContext())["errors"] == []
        # A queue that starts later: its schedule is made, moved, then fired at the scheduler function.
        start_at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
        later = new_queue(business, [fine], schedule={"startAt": start_at.strftime("%Y-%m-%dT%H:%M:%SZ")})
        assert _ok(business.post(f"/api/whatsapp/queue/{later['id']}/process"), 202)["status"] == "SCHEDULED"
        moved = (start_at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        _ok(business.put(f"/api/whatsapp/queue/{later['id']}", {"schedule": {"startAt": moved}}))
        scheduler = load_function_module("scheduler", "handler")
        recorder.wrap(patch, "scheduler", scheduler)
        fired = scheduler.lambda_handler(
            {
                "source": "wabacast.schedule",
                "action": "start",
                "businessId": business.business_id,  # type: ignore[attr-defined]
                "queueId": later["id"],
                "scheduledTime": moved,
            },
            FakeLambdaContext(),
        )
        assert fired["outcome"] == "started", fired
        if not ACCOUNT_HEALTH_MISSING:
            # One pass of the account sync over the business's accounts (the Meta one's secret read as the sender
            # reads it; its provider calls go to the sandbox).
            account_sync = load_function_module("scheduler", "account_sync")
            recorder.wrap(patch, "account_sync", account_sync)
            report = account_sync.lambda_handler({"source": "wabacast.account-sync"}, FakeLambdaContext())
            assert report["accounts_synced"] + report["accounts_failed"] >= 1, report


@pytest.fixture(scope="module")
def recorded() -> AwsCallRecorder:
    recorder = AwsCallRecorder()
    with pytest.MonkeyPatch.context() as monkeypatch:
        recorder.install(monkeypatch)
        _account_lifecycle_in_aws(recorder, monkeypatch)
        _delivery(recorder, monkeypatch)
    for function in POLLED_BY_MAPPINGS:
        recorder.actions[function] |= MAPPING_POLL_ACTIONS
    return recorder


def test_the_flows_exercise_every_function(recorded: AwsCallRecorder) -> None:
    # GIVEN / WHEN the recorded flows  THEN each function made AWS calls (a flow that stopped early shows here)
    expected = {f for f in FUNCTIONS if not (f == "account_sync" and ACCOUNT_HEALTH_MISSING)}
    assert {function for function in FUNCTIONS if recorded.calls[function]} == expected


@pytest.mark.parametrize("function", CHECKED)
def test_the_role_allows_every_call_the_function_makes(
    recorded: AwsCallRecorder, template: Template, function_ids: dict[str, str], function: str
) -> None:
    # GIVEN the IAM actions the function's calls need, and what its role allows
    needed = recorded.actions[function]
    allowed = _allowed_actions(template.to_json()["Resources"], function_ids[function])
    # WHEN comparing
    missing = sorted(action for action in needed if not _is_allowed(action, allowed))
    # THEN nothing is missing
    assert missing == [], f"{function} calls AWS without permission for: {missing}"


@pytest.mark.parametrize("function", CHECKED)
def test_the_role_grants_no_action_of_another_service_than_those_it_calls(
    recorded: AwsCallRecorder,
    template: Template,
    function_ids: dict[str, str],
    function: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN what the role allows beyond the recorded calls (logs and tracing are Lambda's own)
    allowed = _allowed_actions(template.to_json()["Resources"], function_ids[function])
    services_called = {action.split(":")[0] for action in recorded.actions[function]}
    unused = sorted(
        action
        for action in allowed
        if action.split(":")[0] not in {"logs", *services_called}
        and action not in GRANTED_BEYOND_THE_FLOWS
        and action not in GRANTED_TO_ONE_FUNCTION_BEYOND_THE_FLOWS.get(function, {})
    )
    # THEN every service it is granted is one it calls
    assert unused == [], f"{function} is granted actions of services it never calls: {unused}"
    # AND actions of those services it does not call are reported, not asserted (docs/operations.md says why each
    # is kept): the flows are representative, not exhaustive
    not_called = sorted(
        action
        for action in allowed
        if not action.startswith("logs:")
        and action not in GRANTED_BEYOND_THE_FLOWS
        and not any(fnmatch.fnmatchcase(needed, action) for needed in recorded.actions[function])
    )
    with capsys.disabled():
        print(f"\n{function}: granted, not called by the flows: {not_called}")
