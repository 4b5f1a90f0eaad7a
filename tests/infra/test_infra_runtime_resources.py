"""The stack tells the run-time resources command (wabacast_ops.resources) what its functions were told."""

from __future__ import annotations

from aws_cdk.assertions import Template
from infra_helpers import get_att_arn

from wabacast_ops.resources import STACK_OUTPUTS


def test_the_stack_outputs_every_value_the_resources_command_reads(
    template: Template, function_ids: dict[str, str]
) -> None:
    # GIVEN the synthesized outputs, and the API function's environment (it provisions the run-time resources)
    outputs = template.find_outputs("*")
    resources = template.to_json()["Resources"]
    api_environment = resources[function_ids["api"]]["Properties"]["Environment"]["Variables"]

    # THEN every output the command reads exists
    assert set(STACK_OUTPUTS) <= set(outputs)
    # AND each carries what the API creates names and mappings from, so the command finds exactly those
    assert outputs["QueueNamePrefix"]["Value"] == api_environment["QUEUE_NAME_PREFIX"]
    assert outputs["SecretsPrefix"]["Value"] == api_environment["SECRETS_PREFIX"]
    assert outputs["SenderBatchSeconds"]["Value"] == api_environment["SENDER_BATCH_S"]
    assert outputs["TableName"]["Value"] == api_environment["TABLE_NAME"]
    assert outputs["SenderFunctionArn"]["Value"] == get_att_arn(function_ids["sender"])
    assert outputs["DeadLetterFunctionArn"]["Value"] == get_att_arn(function_ids["dead_letter"])
    assert api_environment["SENDER_FUNCTION_ARN"] == get_att_arn(function_ids["sender"])
    assert api_environment["DEAD_LETTER_FUNCTION_ARN"] == get_att_arn(function_ids["dead_letter"])
