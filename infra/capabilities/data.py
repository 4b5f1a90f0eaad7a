"""Data capability: the single DynamoDB table, built from the definition the local stack uses too."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from wabacast.storage.table import GLOBAL_INDEXES, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

# The table's CloudFormation logical id, pinned so that moving the construct in the tree can never make
# CloudFormation replace (and, with RETAIN, orphan) the table holding every tenant's data.
TABLE_LOGICAL_ID = "Table"

# What a function that reads and writes items needs. Transactions have no IAM action of their own:
# TransactWriteItems is authorized item by item against PutItem / UpdateItem / DeleteItem / ConditionCheckItem,
# TransactGetItems against GetItem.
READ_WRITE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)


def _string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class DataStore(Construct):
    """The table: on-demand, point-in-time recovery, AWS-managed encryption, deletion protection, retained."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)

        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=_string_key(PARTITION_KEY),
            sort_key=_string_key(SORT_KEY),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            time_to_live_attribute=TTL_ATTRIBUTE,
        )
        for index in GLOBAL_INDEXES:
            self.table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_string_key(index.partition_key),
                sort_key=_string_key(index.sort_key),
                projection_type=(
                    dynamodb.ProjectionType.INCLUDE if index.included else dynamodb.ProjectionType.KEYS_ONLY
                ),
                non_key_attributes=list(index.included) or None,
            )
        cfn_table = self.table.node.default_child
        assert isinstance(cfn_table, dynamodb.CfnTable)
        cfn_table.override_logical_id(TABLE_LOGICAL_ID)

    @property
    def index_arns(self) -> list[str]:
        """ARNs of the table's global secondary indexes (what a Query on an index is authorized against)."""
        return [f"{self.table.table_arn}/index/{index.name}" for index in GLOBAL_INDEXES]

    def read_write_statement(self, sid: str = "TableReadWrite") -> iam.PolicyStatement:
        """Item reads/writes, batches, queries and transactions on the table and its indexes, nothing else."""
        return iam.PolicyStatement(
            sid=sid,
            actions=list(READ_WRITE_ACTIONS),
            resources=[self.table.table_arn, *self.index_arns],
        )
