"""The DynamoDB table: same definition as the local stack, and protected against loss."""

from __future__ import annotations

from typing import Any

from infra_helpers import only

from wabacast.storage.table import GLOBAL_INDEXES, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE, create_table_request

Resources = dict[str, dict[str, Any]]


def test_table_keys_and_indexes_equal_the_shared_definition(resources: Resources) -> None:
    # GIVEN the boto3 create_table request the local stack and the integration tests build their table from
    expected = create_table_request("any-name")

    # WHEN the stack is synthesized
    _, table = only(resources, "AWS::DynamoDB::Table")
    properties = table["Properties"]

    # THEN the cloud table has the same keys, attribute types, indexes and projections
    assert properties["KeySchema"] == expected["KeySchema"]
    by_name = sorted(properties["AttributeDefinitions"], key=lambda attribute: attribute["AttributeName"])
    assert by_name == expected["AttributeDefinitions"]
    assert properties["GlobalSecondaryIndexes"] == expected["GlobalSecondaryIndexes"]
    assert properties["BillingMode"] == expected["BillingMode"] == "PAY_PER_REQUEST"


def test_table_is_built_from_the_shared_constants(resources: Resources) -> None:
    # GIVEN the constants of wabacast.storage.table
    expected_indexes = {index.name: (index.partition_key, index.sort_key) for index in GLOBAL_INDEXES}

    # WHEN the stack is synthesized
    _, table = only(resources, "AWS::DynamoDB::Table")
    properties = table["Properties"]

    # THEN PK/SK, both GSIs and the TTL attribute come from them
    assert [key["AttributeName"] for key in properties["KeySchema"]] == [PARTITION_KEY, SORT_KEY]
    indexes = {
        index["IndexName"]: tuple(key["AttributeName"] for key in index["KeySchema"])
        for index in properties["GlobalSecondaryIndexes"]
    }
    assert indexes == expected_indexes == {"GSI1": ("GSI1PK", "GSI1SK"), "GSI2": ("GSI2PK", "GSI2SK")}
    assert {index["IndexName"]: index["Projection"] for index in properties["GlobalSecondaryIndexes"]} == {
        index.name: index.projection() for index in GLOBAL_INDEXES
    }
    assert properties["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}


def test_indexes_project_only_what_their_queries_read(resources: Resources) -> None:
    # GIVEN / WHEN the synthesized table's indexes
    _, table = only(resources, "AWS::DynamoDB::Table")
    projections = {index["IndexName"]: index["Projection"] for index in table["Properties"]["GlobalSecondaryIndexes"]}

    # THEN GSI1 carries the keys, phone_number and recipient_zone (feeding reads a queue's open jobs from it without
    # item reads),
    # GSI2 the keys only: no index copies whole items (every write to a projected attribute is billed again)
    assert projections == {
        "GSI1": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["phone_number", "recipient_zone"]},
        "GSI2": {"ProjectionType": "KEYS_ONLY"},
    }


def test_table_has_point_in_time_recovery_encryption_and_deletion_protection(resources: Resources) -> None:
    # GIVEN / WHEN the synthesized table
    _, table = only(resources, "AWS::DynamoDB::Table")
    properties = table["Properties"]

    # THEN it can be restored to any second of the last 35 days, is encrypted with the AWS-managed key
    # (SSEEnabled without a customer key) and cannot be deleted by accident
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["DeletionProtectionEnabled"] is True


def test_table_is_retained_when_the_stack_goes_and_keeps_a_stable_logical_id(resources: Resources) -> None:
    # GIVEN / WHEN the synthesized table
    logical_id, table = only(resources, "AWS::DynamoDB::Table")

    # THEN deleting the stack or replacing the resource leaves the data in place
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    # AND refactoring the construct tree cannot change its logical id (which would mean a new, empty table)
    assert logical_id == "Table"
