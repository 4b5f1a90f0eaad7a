"""Delivery: the planner tick, the plan queue and its worker, the sender, the dead-letter consumer, the trace sampling
rules, and what their roles (and the API's, for the per-account queues it provisions at run time) may do. The tick's
schedule is checked in test_infra_scheduling.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from infra_helpers import (
    actions_of,
    actions_on,
    arn_pattern,
    as_list,
    get_att_arn,
    logical_id,
    of_type,
    only,
    statements_of_role,
)

from infra.app import build_app
from infra.capabilities.delivery import DeliverySettings
from infra.stack import WabacastStack

Resources = dict[str, dict[str, Any]]

POWERTOOLS = {
    "POWERTOOLS_SERVICE_NAME": "wabacast-dev",
    "POWERTOOLS_METRICS_NAMESPACE": "wabacast",
    "LOG_LEVEL": "INFO",
}
QUEUES_ARN_PATTERN = arn_pattern("sqs", "wabacast-dev-*")
DEAD_LETTER_QUEUES_ARN_PATTERN = arn_pattern("sqs", "wabacast-dev-*-dlq.fifo")
SECRETS_ARN_PATTERN = arn_pattern("secretsmanager", "secret:wabacast-dev/*")
SANDBOX_URL = "https://sandbox.example.com"
META_URL = "https://graph.example.com"
# DeliverySettings.sender_memory_mb, sized from bench/sender_memory.py (docs/operations.md, "Sizing").
SENDER_MEMORY_MB = 512


def role_statements(resources: Resources, function_id: str) -> list[dict[str, Any]]:
    return statements_of_role(resources, resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0])


def every_role_statement(resources: Resources) -> Iterator[tuple[str, dict[str, Any]]]:
    for role_id in of_type(resources, "AWS::IAM::Role"):
        for statement in statements_of_role(resources, role_id):
            yield role_id, statement


def tls_only_policy_statement(resources: Resources, queue_id: str) -> dict[str, Any]:
    (policy,) = [
        p
        for p in of_type(resources, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    statement: dict[str, Any] = deny
    return statement


@pytest.fixture(scope="module")
def plan_queue_id(stack: WabacastStack) -> str:
    return logical_id(stack, stack.delivery.plan_queue)


@pytest.fixture(scope="module")
def plan_dead_letter_queue_id(stack: WabacastStack) -> str:
    return logical_id(stack, stack.delivery.plan_dead_letter_queue)


@pytest.fixture(scope="module")
def schedule_dead_letter_queue_id(stack: WabacastStack) -> str:
    return logical_id(stack, stack.scheduling.dead_letter_queue)


# --- the functions -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "handler", "timeout", "memory", "environment"),
    [
        (
            "plan_worker",
            "worker.lambda_handler",
            300,
            512,
            {
                "QUEUE_NAME_PREFIX": "wabacast-dev",
                "FEED_WINDOW_S": "60",
                "REQUEUE_AFTER_S": "900",
                "JOB_RETENTION_DAYS": "90",
            },
        ),
        (
            "sender",
            "handler.lambda_handler",
            60,
            SENDER_MEMORY_MB,
            {
                "SECRETS_PREFIX": "wabacast-dev",
                "QUEUE_NAME_PREFIX": "wabacast-dev",
                "MAX_RATE_WAIT_S": "20",
                "JOB_RETENTION_DAYS": "90",
            },
        ),
        ("dead_letter", "dead_letter.lambda_handler", 60, 256, {"QUEUE_NAME_PREFIX": "wabacast-dev"}),
    ],
)
def test_delivery_function_handler_timeout_memory_and_environment(
    resources: Resources,
    function_ids: dict[str, str],
    name: str,
    handler: str,
    timeout: int,
    memory: int,
    environment: dict[str, str],
) -> None:
    # GIVEN / WHEN the function in the synthesized stack
    properties = resources[function_ids[name]]["Properties"]

    # THEN it runs the agreed handler on Python 3.12 with its timeout and memory
    assert properties["Handler"] == handler
    assert properties["Runtime"] == "python3.12"
    assert properties["Timeout"] == timeout
    assert properties["MemorySize"] == memory
    # AND its environment is exactly what wabacast.settings reads for it: no provider URLs without context values
    variables = dict(properties["Environment"]["Variables"])
    if name == "sender":
        # The API's URL, for Twilio status callbacks (infra/capabilities/webhooks.py; test_infra_webhooks).
        assert variables.pop("PUBLIC_BASE_URL")
        # The schedule settings, for a limit's resume (infra/capabilities/scheduling.py; test_infra_scheduling).
        for schedule_variable in (
            "SCHEDULE_GROUP_NAME",
            "SCHEDULER_TARGET_ARN",
            "SCHEDULER_ROLE_ARN",
            "SCHEDULE_DLQ_ARN",
        ):
            assert variables.pop(schedule_variable)
    assert variables == {**POWERTOOLS, "TABLE_NAME": {"Ref": "Table"}, **environment}


def test_planner_tick_only_gets_the_table_the_plan_queue_and_the_job_retention(
    resources: Resources, function_ids: dict[str, str], plan_queue_id: str
) -> None:
    # GIVEN / WHEN the planner tick in the synthesized stack
    properties = resources[function_ids["planner"]]["Properties"]

    # THEN it runs the planner's handler, with the time to list the registry and dispatch every account
    assert properties["Handler"] == "handler.lambda_handler"
    assert properties["Timeout"] == 300
    assert properties["MemorySize"] == 512
    # AND it finds the registry and the plan queue; feeding the account queues is the worker's (no queue prefix,
    # feed window or requeue delay); the job retention is set wherever jobs may be written
    assert properties["Environment"]["Variables"] == {
        **POWERTOOLS,
        "TABLE_NAME": {"Ref": "Table"},
        "PLAN_QUEUE_URL": {"Ref": plan_queue_id},
        "JOB_RETENTION_DAYS": "90",
    }


def test_planner_tick_and_plan_worker_share_the_planner_code_folder(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the code of the tick and of the worker
    tick, worker = (resources[function_ids[name]]["Properties"] for name in ("planner", "plan_worker"))

    # THEN both ship functions/planner, each with its own handler module
    assert tick["Code"] == worker["Code"]
    assert (tick["Handler"], worker["Handler"]) == ("handler.lambda_handler", "worker.lambda_handler")


def test_planner_async_invocations_are_not_retried_as_the_next_tick_comes_within_a_minute(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the planner's asynchronous invocation settings (ticks and the API's and the scheduler's starts
    # are asynchronous)
    (properties,) = [
        config["Properties"]
        for config in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if config["Properties"]["FunctionName"] == {"Ref": function_ids["planner"]}
    ]

    # THEN a failed or stale event is dropped instead of piling up next to newer ticks
    assert properties["MaximumRetryAttempts"] == 0
    assert properties["MaximumEventAgeInSeconds"] <= 300


def test_no_event_source_mapping_or_queue_per_account_is_in_the_stack(
    resources: Resources,
    function_ids: dict[str, str],
    plan_queue_id: str,
    plan_dead_letter_queue_id: str,
    schedule_dead_letter_queue_id: str,
) -> None:
    # GIVEN / WHEN the synthesized resources
    mappings = of_type(resources, "AWS::Lambda::EventSourceMapping")
    queues = of_type(resources, "AWS::SQS::Queue")

    # THEN the account queues and their mappings are left to the API at run time: the stack's queues are the
    # schedules' dead-letter queue, the plan queue and its dead-letter queue, and its one mapping the plan queue's
    assert sorted(queues) == sorted([schedule_dead_letter_queue_id, plan_queue_id, plan_dead_letter_queue_id])
    assert [m["Properties"]["FunctionName"] for m in mappings.values()] == [{"Ref": function_ids["plan_worker"]}]


# --- the plan queue ----------------------------------------------------------------------------------------------


def test_plan_queue_is_an_encrypted_standard_queue_with_a_dead_letter_queue(
    resources: Resources, function_ids: dict[str, str], plan_queue_id: str, plan_dead_letter_queue_id: str
) -> None:
    # GIVEN the plan queue and its dead-letter queue
    queue = resources[plan_queue_id]["Properties"]
    dead_letter_queue = resources[plan_dead_letter_queue_id]["Properties"]
    worker_timeout = resources[function_ids["plan_worker"]]["Properties"]["Timeout"]

    # WHEN / THEN the plan queue is a standard queue (accounts are planned in any order, each by its own worker)
    assert "FifoQueue" not in queue
    assert "FifoQueue" not in dead_letter_queue
    # AND both are encrypted with SQS-managed keys (no KMS permission needed to send or receive)
    assert queue["SqsManagedSseEnabled"] is True
    assert dead_letter_queue["SqsManagedSseEnabled"] is True
    # AND a message is not handed out again while a worker (up to its timeout, six times) may still hold it
    assert queue["VisibilityTimeout"] >= 6 * worker_timeout
    # AND a message the worker failed on three times moves to the dead-letter queue, before it could expire
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": get_att_arn(plan_dead_letter_queue_id),
        "maxReceiveCount": 3,
    }
    assert queue["MessageRetentionPeriod"] > 3 * queue["VisibilityTimeout"]
    # AND the dead letters are kept 14 days, and are not redriven further
    assert dead_letter_queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert "RedrivePolicy" not in dead_letter_queue


@pytest.mark.parametrize("queue", ["plan", "plan_dead_letter"])
def test_plan_queues_refuse_requests_not_made_over_tls(
    resources: Resources, plan_queue_id: str, plan_dead_letter_queue_id: str, queue: str
) -> None:
    # GIVEN the queue
    queue_id = plan_queue_id if queue == "plan" else plan_dead_letter_queue_id

    # WHEN reading its queue policy
    deny = tls_only_policy_statement(resources, queue_id)

    # THEN it denies every request without TLS
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == get_att_arn(queue_id)


def test_plan_worker_consumes_the_plan_queue_one_account_per_invocation(
    resources: Resources, function_ids: dict[str, str], plan_queue_id: str
) -> None:
    # GIVEN / WHEN the stack's only event source mapping
    _, mapping = only(resources, "AWS::Lambda::EventSourceMapping")
    properties = mapping["Properties"]

    # THEN it invokes the plan worker with the plan queue's messages, one per invocation
    assert properties["EventSourceArn"] == get_att_arn(plan_queue_id)
    assert properties["FunctionName"] == {"Ref": function_ids["plan_worker"]}
    assert properties["BatchSize"] == 1
    # AND a failure is reported per message (the message is retried, not the invocation's others)
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # AND at most 50 accounts are planned at the same time
    assert properties["ScalingConfig"] == {"MaximumConcurrency": 50}
    assert properties.get("Enabled", True) is True


def test_only_the_api_the_scheduler_and_the_schedules_may_invoke_a_function(
    resources: Resources, function_ids: dict[str, str], stack: WabacastStack
) -> None:
    # GIVEN every IAM statement of every role in the stack
    # WHEN picking those that allow lambda:InvokeFunction
    invoking = [
        (role_id, s) for role_id, s in every_role_statement(resources) if "lambda:InvokeFunction" in actions_of(s)
    ]

    # THEN the API and the scheduler may start the planner (the queue was processed, or its schedule fired), and
    # the schedules' invoke role may invoke the planner (the tick), the scheduler (the queue schedules) and the
    # account sync (its schedule), each unqualified and with no other action; API Gateway invokes the API and
    # authorizer through resource policies, nothing invokes sender or DLQ consumer (their event source mappings use
    # the function's own role)
    role_of = {name: resources[function_ids[name]]["Properties"]["Role"]["Fn::GetAtt"][0] for name in function_ids}
    planner, scheduler = get_att_arn(function_ids["planner"]), get_att_arn(function_ids["scheduler"])
    assert sorted(json.dumps([role_id, s["Resource"]]) for role_id, s in invoking) == sorted(
        json.dumps(pair)
        for pair in (
            [role_of["api"], planner],
            [role_of["scheduler"], planner],
            [logical_id(stack, stack.scheduling.invoke_role), [planner, scheduler]],
            [logical_id(stack, stack.scheduling.invoke_role), get_att_arn(function_ids["account_sync"])],
        )
    )
    assert all(actions_of(s) == {"lambda:InvokeFunction"} for _, s in invoking)
    invoked_by_resource_policy = {
        p["Properties"]["FunctionName"]["Fn::GetAtt"][0] for p in of_type(resources, "AWS::Lambda::Permission").values()
    }
    assert invoked_by_resource_policy == {function_ids["api"], function_ids["authorizer"]}


# --- job retention ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["planner", "plan_worker", "sender"])
def test_functions_that_may_write_jobs_get_the_job_retention(
    resources: Resources, function_ids: dict[str, str], name: str
) -> None:
    # GIVEN / WHEN the function's environment
    variables = resources[function_ids[name]]["Properties"]["Environment"]["Variables"]

    # THEN it knows how long a job is kept (its DynamoDB TTL), 90 days
    assert variables["JOB_RETENTION_DAYS"] == "90"


# --- trace sampling ----------------------------------------------------------------------------------------------


def sampling_rules_by_service(resources: Resources) -> dict[str, dict[str, Any]]:
    """The X-Ray sampling rules' SamplingRule property, by the logical id of the function they name."""
    rules = of_type(resources, "AWS::XRay::SamplingRule").values()
    return {
        rule["Properties"]["SamplingRule"]["ServiceName"]["Ref"]: rule["Properties"]["SamplingRule"] for rule in rules
    }


def test_the_sender_and_the_plan_worker_have_a_trace_sampling_rule_each(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the stack's X-Ray sampling rules, by the function (service) they match
    rules = sampling_rules_by_service(resources)

    # THEN there is one for each function that runs per batch or per account and minute, none for the others
    assert sorted(rules) == sorted([function_ids["sender"], function_ids["plan_worker"]])
    assert len(of_type(resources, "AWS::XRay::SamplingRule")) == 2


@pytest.mark.parametrize("name", ["sender", "plan_worker"])
def test_trace_sampling_rule_keeps_one_trace_a_second_and_one_percent_of_the_rest(
    resources: Resources, function_ids: dict[str, str], name: str
) -> None:
    # GIVEN / WHEN the sampling rule of the function
    rule = sampling_rules_by_service(resources)[function_ids[name]]

    # THEN it records 1 trace a second, then 1% of the other invocations
    assert rule["ReservoirSize"] == 1
    assert rule["FixedRate"] == 0.01
    # AND it comes before the Default rule (priority 10000) and matches any request of that function
    assert rule["Priority"] == 9000
    assert {rule[key] for key in ("ServiceType", "Host", "HTTPMethod", "URLPath", "ResourceARN")} == {"*"}
    assert rule["Version"] == 1
    # AND its name is unique per stack and fits X-Ray's 32 characters
    assert rule["RuleName"].startswith("Wabacast")
    assert 1 <= len(rule["RuleName"]) <= 32


def test_trace_sampling_rule_names_differ(resources: Resources) -> None:
    # GIVEN / WHEN the names of the sampling rules (unique per account and region in X-Ray)
    names = [rule["RuleName"] for rule in sampling_rules_by_service(resources).values()]

    # THEN no two are the same
    assert len(set(names)) == len(names) == 2


def test_every_function_keeps_lambda_active_tracing(resources: Resources, function_ids: dict[str, str]) -> None:
    # GIVEN / WHEN every function of wabacast (CDK's console deployment function runs only during deployments)
    functions = [resources[logical_id] for logical_id in function_ids.values()]

    # THEN tracing is still active (the sampling rules are on top of it)
    assert {json.dumps(f["Properties"]["TracingConfig"]) for f in functions} == {json.dumps({"Mode": "Active"})}


# --- IAM scoping of the delivery roles ----------------------------------------------------------------------------


def test_planner_tick_may_only_send_to_the_plan_queue(
    resources: Resources, function_ids: dict[str, str], plan_queue_id: str
) -> None:
    # GIVEN / WHEN the planner tick's SQS permissions
    statements = role_statements(resources, function_ids["planner"])
    sqs = actions_on(statements, "sqs")

    # THEN it can send (SendMessageBatch is authorized as SendMessage) to the plan queue and nothing else: no
    # account queue (the workers feed those), no receive or delete
    assert [(actions_of(s), s["Resource"]) for s in sqs] == [({"sqs:SendMessage"}, get_att_arn(plan_queue_id))]
    # AND it reads no secrets and calls no function
    assert actions_on(statements, "secretsmanager") == []
    assert actions_on(statements, "lambda") == []


def test_plan_worker_feeds_wabacast_queues_and_consumes_only_the_plan_queue(
    resources: Resources, function_ids: dict[str, str], plan_queue_id: str
) -> None:
    # GIVEN / WHEN the plan worker's SQS permissions
    statements = role_statements(resources, function_ids["plan_worker"])
    sqs = actions_on(statements, "sqs")

    # THEN it can find, measure and send to the account queues (arn:...:wabacast-dev-*), not receive or delete there;
    # and its mapping may receive, delete and hand back messages of the plan queue only
    assert sorted((sorted(actions_of(s)), json.dumps(s["Resource"])) for s in sqs) == sorted(
        [
            (["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"], json.dumps(QUEUES_ARN_PATTERN)),
            (
                [
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage",
                ],
                json.dumps(get_att_arn(plan_queue_id)),
            ),
        ]
    )
    # AND it reads no secrets and calls no function
    assert actions_on(statements, "secretsmanager") == []
    assert actions_on(statements, "lambda") == []


def test_sender_consumes_wabacast_queues_and_only_reads_account_secrets(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN the sender's permissions (its role is also what the event source mappings poll the queues with)
    statements = role_statements(resources, function_ids["sender"])

    # WHEN / THEN it can receive, delete, delay and look up messages of the account queues, not send new ones
    sqs = actions_on(statements, "sqs")
    assert [(actions_of(s), s["Resource"]) for s in sqs] == [
        (
            {
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
            },
            QUEUES_ARN_PATTERN,
        )
    ]
    # AND it can read (only read) the account credentials under wabacast/
    secrets = actions_on(statements, "secretsmanager")
    assert [(actions_of(s), s["Resource"]) for s in secrets] == [
        ({"secretsmanager:GetSecretValue"}, SECRETS_ARN_PATTERN)
    ]
    assert actions_on(statements, "lambda") == []


def test_dead_letter_consumer_only_consumes_the_dead_letter_queues(
    resources: Resources, function_ids: dict[str, str]
) -> None:
    # GIVEN / WHEN the dead-letter consumer's permissions
    statements = role_statements(resources, function_ids["dead_letter"])
    sqs = actions_on(statements, "sqs")

    # THEN what its event source mappings need, on wabacast-dev-*-dlq.fifo only (never an account's main queue)
    assert [(actions_of(s), s["Resource"]) for s in sqs] == [
        ({"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}, DEAD_LETTER_QUEUES_ARN_PATTERN)
    ]
    assert actions_on(statements, "secretsmanager") == []
    assert actions_on(statements, "lambda") == []


def test_no_role_has_sqs_permissions_outside_the_wabacast_queues_the_plan_queue_and_the_schedule_dlq(
    resources: Resources, plan_queue_id: str, schedule_dead_letter_queue_id: str
) -> None:
    # GIVEN the schedules' dead-letter queue and the plan queue
    queue_ids = [schedule_dead_letter_queue_id, plan_queue_id]
    allowed = [QUEUES_ARN_PATTERN, DEAD_LETTER_QUEUES_ARN_PATTERN, *(get_att_arn(queue_id) for queue_id in queue_ids)]

    # WHEN collecting the resources of every SQS statement of every role
    resources_used = [
        r for _, s in every_role_statement(resources) for r in as_list(s["Resource"]) if actions_on([s], "sqs")
    ]

    # THEN each is one of the patterns or those queues, never "*" (no role may send to the plan dead-letter queue:
    # SQS moves the messages there itself)
    assert resources_used
    assert all(r in allowed for r in resources_used), resources_used


# --- outputs and context --------------------------------------------------------------------------------------


def test_stack_outputs_the_delivery_function_names_and_the_dead_letter_queues(
    template: Template, function_ids: dict[str, str], plan_dead_letter_queue_id: str
) -> None:
    # GIVEN / WHEN the synthesized outputs
    outputs = template.find_outputs("*")

    # THEN operators can find each delivery function (e.g. for its logs) and the accounts the plan worker failed
    # on (the schedules' dead-letter queue is test_infra_scheduling.py's)
    assert outputs["PlannerFunctionName"]["Value"] == {"Ref": function_ids["planner"]}
    assert outputs["PlanWorkerFunctionName"]["Value"] == {"Ref": function_ids["plan_worker"]}
    assert outputs["SenderFunctionName"]["Value"] == {"Ref": function_ids["sender"]}
    assert outputs["DeadLetterFunctionName"]["Value"] == {"Ref": function_ids["dead_letter"]}
    assert outputs["PlanDeadLetterQueueUrl"]["Value"] == {"Ref": plan_dead_letter_queue_id}


@pytest.fixture(scope="module")
def with_provider_urls(stub_inputs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> WabacastStack:
    """The app built with the context values `cdk deploy -c sandboxBaseUrl=... -c metaBaseUrl=...` would pass."""
    layer_dir, functions_dir = stub_inputs
    _, stack = build_app(
        layer_dir=layer_dir,
        functions_dir=functions_dir,
        outdir=tmp_path_factory.mktemp("cdk.out-context"),
        context={"sandboxBaseUrl": f"{SANDBOX_URL}/", "metaBaseUrl": META_URL},
    )
    return stack


def test_provider_urls_from_the_context_reach_the_functions_that_use_them(with_provider_urls: WabacastStack) -> None:
    # GIVEN the stack built with sandboxBaseUrl and metaBaseUrl context values
    stack = with_provider_urls
    resources = Template.from_stack(stack).to_json()["Resources"]

    # WHEN reading the environments
    def variables(function: Any) -> dict[str, Any]:
        found: dict[str, Any] = resources[logical_id(stack, function)]["Properties"]["Environment"]["Variables"]
        return found

    # THEN the sender gets both (trailing slash dropped), the API the sandbox URL (it refuses sandbox accounts
    # without one), and the functions that call no provider get neither
    assert variables(stack.delivery.sender)["SANDBOX_BASE_URL"] == SANDBOX_URL
    assert variables(stack.delivery.sender)["META_BASE_URL"] == META_URL
    assert variables(stack.api.function)["SANDBOX_BASE_URL"] == SANDBOX_URL
    assert "META_BASE_URL" not in variables(stack.api.function)
    for function in (
        stack.delivery.planner,
        stack.delivery.plan_worker,
        stack.delivery.dead_letter_function,
        stack.api.authorizer_function,
        stack.scheduling.function,
    ):
        assert not {"SANDBOX_BASE_URL", "META_BASE_URL"} & set(variables(function))


@pytest.mark.parametrize("value", ["sandbox.example.com", 42, ["https://x"]])
def test_a_provider_url_context_value_that_is_not_a_url_is_refused(value: Any) -> None:
    # GIVEN a context value that is not an http(s) URL
    app = cdk.App(context={"sandboxBaseUrl": value})

    # WHEN / THEN reading the settings fails at synth time, naming the key
    with pytest.raises(ValueError, match="sandboxBaseUrl"):
        DeliverySettings.from_context(app.node)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"plan_worker_max_concurrency": 1}, "plan_worker_max_concurrency"),
        ({"plan_worker_max_concurrency": 1001}, "plan_worker_max_concurrency"),
        ({"plan_queue_retention_seconds": 3 * 1800}, "plan_queue_retention_seconds"),
        ({"plan_worker_timeout_seconds": 900}, "plan_queue_retention_seconds"),
        ({"trace_sampling_rate": 1.5}, "trace_sampling_rate"),
    ],
)
def test_delivery_settings_that_cannot_work_are_refused(change: dict[str, Any], message: str) -> None:
    # GIVEN / WHEN settings with a value Lambda refuses, or one that would expire a failing plan message before
    # it reaches the dead-letter queue
    # THEN they are refused at synth time, naming the setting
    with pytest.raises(ValueError, match=message):
        DeliverySettings(**change)


def test_plan_queue_visibility_timeout_follows_the_worker_timeout() -> None:
    # GIVEN a longer worker timeout, and a retention that still covers three receives
    settings = DeliverySettings(plan_worker_timeout_seconds=600, plan_queue_retention_seconds=4 * 3600)

    # WHEN / THEN the visibility timeout is six times the worker's timeout
    assert settings.plan_queue_visibility_timeout_seconds == 3600


def test_without_context_values_no_provider_url_is_set() -> None:
    # GIVEN / WHEN the settings of an app without the context values
    settings = DeliverySettings.from_context(cdk.App().node)

    # THEN the code's own defaults apply (Meta's Graph API; sandbox accounts refused)
    assert settings.sandbox_environment == {}
    assert settings.meta_environment == {}
