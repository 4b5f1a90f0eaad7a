"""The DynamoDB table definition, shared by the CDK stack and the local stack so both build the same table.

Key design (see docs/architecture.md):
  PK / SK               the item's home: everything of a business lives under "BIZ#<businessId>"
  GSI1PK / GSI1SK       queues by status per business; businesses for the admin listing; a queue's open jobs
                        in planning order (INCLUDE phone_number, recipient_zone: what feeding reads, so it needs
                        no item read)
  GSI2PK / GSI2SK       queues by account per business (sorted by status, then creation); a queue's handed-back
                        and retryable-failed jobs (KEYS_ONLY: readers fetch the items they need)

Indexes project only what their queries read: every write to an item that sits in an index is billed again for
the index entry unless neither its index keys nor a projected attribute changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PARTITION_KEY = "PK"
SORT_KEY = "SK"


@dataclass(frozen=True)
class GlobalIndex:
    name: str
    partition_key: str
    sort_key: str
    # Non-key attributes copied into the index; empty: KEYS_ONLY.
    included: tuple[str, ...] = ()

    def projection(self) -> dict[str, Any]:
        if self.included:
            return {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(self.included)}
        return {"ProjectionType": "KEYS_ONLY"}


GLOBAL_INDEXES: tuple[GlobalIndex, ...] = (
    GlobalIndex("GSI1", "GSI1PK", "GSI1SK", included=("phone_number", "recipient_zone")),
    GlobalIndex("GSI2", "GSI2PK", "GSI2SK"),
)
GSI1 = GLOBAL_INDEXES[0]
GSI2 = GLOBAL_INDEXES[1]

# Attribute holding an epoch-seconds expiry for items DynamoDB may delete by itself.
TTL_ATTRIBUTE = "expiresAt"


def create_table_request(table_name: str) -> dict[str, Any]:
    """Arguments for boto3 `create_table`, used by the local stack and the integration tests."""
    attributes = {PARTITION_KEY, SORT_KEY}
    for index in GLOBAL_INDEXES:
        attributes.update((index.partition_key, index.sort_key))
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in sorted(attributes)],
        "KeySchema": [
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": index.projection(),
            }
            for index in GLOBAL_INDEXES
        ],
    }
