"""The DynamoDB single table's keys, shared by the adapter, `mediaindex aws init` and the CDK
storage construct so the three can never disagree."""

from __future__ import annotations

PK = "pk"
SK = "sk"
# GSI1: listings by parent (assets by index, tasks by tenant/asset), sorted by id (= creation time).
GSI1 = "gsi1"
GSI1_PK = "gsi1pk"
GSI1_SK = "gsi1sk"
# GSI2: lookups by a unique secondary value (API key hash, index name per tenant).
GSI2 = "gsi2"
GSI2_PK = "gsi2pk"
GSI2_SK = "gsi2sk"
TTL_ATTRIBUTE = "expires_at_epoch"

KEY_ATTRIBUTES = (PK, SK, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK)


def table_definition(table_name: str) -> dict[str, object]:
    """Arguments for `create_table` (on-demand), as used by `mediaindex aws init` and the tests."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in KEY_ATTRIBUTES],
        "KeySchema": [{"AttributeName": PK, "KeyType": "HASH"}, {"AttributeName": SK, "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": h, "KeyType": "HASH"},
                    {"AttributeName": r, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for name, h, r in ((GSI1, GSI1_PK, GSI1_SK), (GSI2, GSI2_PK, GSI2_SK))
        ],
    }
