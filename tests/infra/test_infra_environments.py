"""Environments (`-c env=dev|prod`) and the sender's reserved concurrency: two environments in one account and
region share no name and no permission pattern."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template
from infra_helpers import logical_id, of_type

from infra.app import build_app
from infra.capabilities.delivery import DEFAULT_SENDER_RESERVED_CONCURRENCY, DeliverySettings
from infra.capabilities.names import Names
from infra.stack import WabacastStack


@pytest.fixture(scope="module")
def prod(stub_inputs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> WabacastStack:
    """The app as `cdk deploy -c env=prod -c senderReservedConcurrency=250` builds it."""
    layer_dir, functions_dir = stub_inputs
    _, stack = build_app(
        layer_dir=layer_dir,
        functions_dir=functions_dir,
        outdir=tmp_path_factory.mktemp("cdk.out-prod"),
        context={"env": "prod", "senderReservedConcurrency": "250"},
    )
    return stack


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


def _names_and_patterns(resources: dict[str, dict[str, Any]]) -> set[str]:
    """Every explicit name and name prefix the template sets, and the literal part of every IAM resource pattern:
    function environment variables, *Name properties, IAM statement resources and conditions."""
    found: set[str] = set()
    for resource in resources.values():
        properties = resource.get("Properties", {})
        for key, value in properties.items():
            if key.endswith("Name") and key != "FunctionName":
                found.update(_strings(value))
        variables = properties.get("Environment", {}).get("Variables", {})
        found.update(
            value
            for name, value in variables.items()
            if isinstance(value, str) and name.endswith(("PREFIX", "SERVICE_NAME"))
        )
        for statement in properties.get("PolicyDocument", {}).get("Statement", []):
            found.update(text for text in _strings(statement.get("Resource")) if text.startswith(":"))
            found.update(text for text in _strings(statement.get("Condition")) if "wabacast" in text)
    return {text for text in found if "wabacast" in text.lower()}


def test_every_name_and_pattern_carries_the_environment(
    resources: dict[str, dict[str, Any]], stack: WabacastStack
) -> None:
    # GIVEN the dev stack (the default environment)
    # WHEN collecting its names and patterns
    names = _names_and_patterns(resources)
    # THEN there are some (queues, secrets, service, topic, alarms, dashboard) and each carries "dev"
    assert stack.stack_name == "Wabacast-dev"
    assert {"wabacast-dev", "wabacast-dev-alarms", "wabacast-dev-planner-heartbeat"} <= names
    assert ":sqs:" not in "".join(names)  # only the literal tails of ARNs, e.g. ":wabacast-dev-*"
    assert any(text.endswith(":wabacast-dev-*") for text in names)
    assert any(text.endswith(":secret:wabacast-dev/*") for text in names)
    assert all("wabacast-dev" in text or "Wabacast-dev" in text for text in names), sorted(names)


def test_two_environments_share_no_name_and_no_permission_pattern(
    resources: dict[str, dict[str, Any]], prod: WabacastStack
) -> None:
    # GIVEN the dev and prod stacks
    prod_resources = Template.from_stack(prod).to_json()["Resources"]
    # WHEN collecting their names and patterns
    dev_names, prod_names = _names_and_patterns(resources), _names_and_patterns(prod_resources)
    # THEN prod's all carry prod, and none is also dev's; neither environment's wildcards match the other's names
    assert prod.stack_name == "Wabacast-prod"
    assert all("wabacast-prod" in text.lower() for text in prod_names), sorted(prod_names)
    assert dev_names.isdisjoint(prod_names)
    for pattern in (text.rsplit(":", 1)[-1] for text in dev_names | prod_names if text.endswith("*")):
        stem = pattern.rstrip("*").split("*")[0]
        assert not ("wabacast-dev-x".startswith(stem) and "wabacast-prod-x".startswith(stem)), pattern


def test_functions_get_the_environment_s_prefixes_and_service(prod: WabacastStack) -> None:
    # GIVEN the prod stack's own functions (not CDK's BucketDeployment helper)
    resources = Template.from_stack(prod).to_json()["Resources"]
    functions = (
        prod.api.function,
        prod.api.authorizer_function,
        prod.delivery.planner,
        prod.delivery.plan_worker,
        prod.delivery.sender,
        prod.delivery.dead_letter_function,
        prod.scheduling.function,
    )
    variables = [
        resources[logical_id(prod, function)]["Properties"]["Environment"]["Variables"] for function in functions
    ]
    # WHEN / THEN each logs and counts metrics as wabacast-prod, and creates queues and secrets under wabacast-prod
    assert {v["POWERTOOLS_SERVICE_NAME"] for v in variables} == {"wabacast-prod"}
    assert {v["QUEUE_NAME_PREFIX"] for v in variables if "QUEUE_NAME_PREFIX" in v} == {"wabacast-prod"}
    assert {v["SECRETS_PREFIX"] for v in variables if "SECRETS_PREFIX" in v} == {"wabacast-prod"}


@pytest.mark.parametrize("value", ["staging", "Prod", "dev "])
def test_an_unknown_environment_is_refused_naming_the_choices(
    stub_inputs: tuple[Path, Path], tmp_path: Path, value: str
) -> None:
    # GIVEN / WHEN building the app with an environment that is not dev or prod
    layer_dir, functions_dir = stub_inputs
    with pytest.raises(ValueError, match="must be one of dev, prod") as raised:
        build_app(layer_dir=layer_dir, functions_dir=functions_dir, outdir=tmp_path, context={"env": value})
    # THEN the message names the context value
    assert "'env'" in str(raised.value)


def test_names_default_to_dev() -> None:
    # GIVEN / WHEN / THEN no env in the context is dev
    assert Names.from_context({}) == Names("dev")
    assert Names.from_context({"env": "prod"}).queue_name_prefix == "wabacast-prod"


# --- sender reserved concurrency -------------------------------------------------------------------------------
def test_the_sender_has_the_default_reserved_concurrency(
    resources: dict[str, dict[str, Any]], function_ids: dict[str, str]
) -> None:
    # GIVEN the stack built without senderReservedConcurrency
    # WHEN / THEN the sender reserves the documented default, the account sync 1 (one pass at a time); no other
    # function reserves anything
    assert DEFAULT_SENDER_RESERVED_CONCURRENCY == 100
    expected = {"sender": 100, "account_sync": 1}
    for role, function_id in function_ids.items():
        reserved = resources[function_id]["Properties"].get("ReservedConcurrentExecutions")
        assert reserved == expected.get(role), role


def test_the_sender_reserved_concurrency_comes_from_the_context(prod: WabacastStack) -> None:
    # GIVEN the stack built with -c senderReservedConcurrency=250
    resources = Template.from_stack(prod).to_json()["Resources"]
    # WHEN / THEN the sender reserves 250
    sender = resources[logical_id(prod, prod.delivery.sender)]["Properties"]
    assert sender["ReservedConcurrentExecutions"] == 250


def test_zero_means_not_reserved() -> None:
    # GIVEN / WHEN settings with 0 (an account whose concurrency quota is still 10)
    settings = DeliverySettings(sender_reserved_concurrency=0, lambda_concurrency_quota=10)
    # THEN the property is left out rather than set to 0 (which would stop every sender)
    assert settings.sender_reservation is None
    assert DeliverySettings(sender_reserved_concurrency=40).sender_reservation == 40


@pytest.mark.parametrize(("reserved", "quota"), [(1, 10), (100, 100), (991, 1000)])
def test_a_reservation_leaving_fewer_than_10_unreserved_is_refused(reserved: int, quota: int) -> None:
    # GIVEN / WHEN / THEN Lambda keeps 10 executions of the quota unreserved: the synth refuses what it would refuse
    with pytest.raises(ValueError, match="senderReservedConcurrency=0") as raised:
        DeliverySettings(sender_reserved_concurrency=reserved, lambda_concurrency_quota=quota)
    assert f"at most {quota - 10}" in str(raised.value)


@pytest.mark.parametrize("value", ["-1", "ten", "2.5", True])
def test_a_reserved_concurrency_that_is_not_a_whole_number_is_refused(
    stub_inputs: tuple[Path, Path], tmp_path: Path, value: Any
) -> None:
    # GIVEN / WHEN / THEN
    layer_dir, functions_dir = stub_inputs
    with pytest.raises(ValueError, match="senderReservedConcurrency"):
        build_app(
            layer_dir=layer_dir,
            functions_dir=functions_dir,
            outdir=tmp_path,
            context={"senderReservedConcurrency": value},
        )


def test_json_dump_of_names_is_stable() -> None:
    # GIVEN / WHEN / THEN the names an operator types are the documented ones
    names = Names("prod")
    assert json.dumps(
        [names.stack_name, names.queue_name_prefix, names.secrets_prefix, names.service, names.prefix]
    ) == json.dumps(["Wabacast-prod", "wabacast-prod", "wabacast-prod", "wabacast-prod", "wabacast-prod"])


# --- the newer pieces: scheduling, the console, the run-time resources command --------------------------------
def test_the_schedule_group_and_the_scheduler_function_carry_the_environment(prod: WabacastStack) -> None:
    # GIVEN the prod stack
    resources = Template.from_stack(prod).to_json()["Resources"]
    # WHEN reading the schedule group, the scheduler function and what the functions are told about them
    (group,) = of_type(resources, "AWS::Scheduler::ScheduleGroup").values()
    scheduler = resources[logical_id(prod, prod.scheduling.function)]["Properties"]
    # THEN both are named after the environment's stack, so dev and prod never share schedules or their grants
    assert group["Properties"]["Name"] == "Wabacast-prod"
    assert scheduler["FunctionName"] == "Wabacast-prod-scheduler"
    assert scheduler["Environment"]["Variables"]["QUEUE_NAME_PREFIX"] == "wabacast-prod"


def test_the_console_is_labelled_with_the_environment(prod: WabacastStack) -> None:
    # GIVEN the prod stack (its buckets get names generated from the stack's, Wabacast-prod)
    resources = Template.from_stack(prod).to_json()["Resources"]
    # WHEN reading the distribution and its headers policy
    (distribution,) = of_type(resources, "AWS::CloudFront::Distribution").values()
    (headers,) = of_type(resources, "AWS::CloudFront::ResponseHeadersPolicy").values()
    # THEN their comments (how CloudFront's console lists them) name the environment
    assert distribution["Properties"]["DistributionConfig"]["Comment"].startswith("wabacast-prod ")
    assert headers["Properties"]["ResponseHeadersPolicyConfig"]["Comment"].startswith("wabacast-prod ")


def test_the_run_time_resources_command_reads_the_environment_s_prefixes(prod: WabacastStack) -> None:
    # GIVEN the prod stack's outputs (what `make destroy ENV=prod` reads through wabacast_ops.resources)
    outputs = Template.from_stack(prod).find_outputs("*")
    # WHEN / THEN the prefixes are prod's, and the stack says which environment it is
    assert outputs["QueueNamePrefix"]["Value"] == "wabacast-prod"
    assert outputs["SecretsPrefix"]["Value"] == "wabacast-prod"
    assert outputs["Environment"]["Value"] == "prod"
