"""Least-privilege statements, written out action by action (no `*` actions, no CDK `grant*`
helpers, which add wildcard actions such as `s3:GetObject*`). Which role gets which actions is
proven by the code itself: tests/infra/test_iam_from_calls.py records every AWS call each function
makes and fails on a call its role does not grant, and on a grant no call needs."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

# The table adapter (mediaindex.adapters.aws.dynamo.table) uses GetItem, PutItem, DeleteItem,
# TransactWriteItems (authorized per item as PutItem, UpdateItem, DeleteItem), Query and
# BatchWriteItem; a role gets the ones its function's code calls.
TABLE_READ = ["dynamodb:GetItem", "dynamodb:Query"]
TABLE_PUT = ["dynamodb:PutItem"]  # versioned writes, alone or in a transaction
TABLE_BATCH_WRITE = ["dynamodb:BatchWriteItem"]  # derivatives and segments replaced in batches
TABLE_CHANGE = ["dynamodb:UpdateItem", "dynamodb:DeleteItem"]  # counters, deletes
# The usage counters kept beside each write (adapters/aws/dynamo/usage.py): added in the write's own
# transaction, which checks the item it counts.
TABLE_COUNT = ["dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]

# Partition key prefixes (adapters/aws/dynamo/__init__.py): the items a pipeline role writes. API keys
# (APIKEY#), tenant names, webhooks, idempotency records and rate windows are none of its business.
PIPELINE_ITEMS = ["ASSET#", "TASK#", "TENANT#"]  # assets, tasks, usage counters (in TENANT#)
READS = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"}

OBJECT_READ = ["s3:GetObject"]
# Single PUT and multipart (create, parts, complete) are all s3:PutObject; aborting is its own.
OBJECT_WRITE = ["s3:PutObject", "s3:AbortMultipartUpload"]
OBJECT_DELETE = ["s3:DeleteObject"]


def table(
    role: iam.IRole,
    table: ddb.ITableV2,
    actions: list[str],
    *,
    index_queries: bool = False,
    writes_to: list[str] | None = None,
) -> None:
    """`actions` on the table's items; with `index_queries`, Query on its GSIs (gsi1, gsi2). With
    `writes_to` (partition key prefixes), the writes only to items whose partition key starts with one
    of them (dynamodb:LeadingKeys): a job that runs ffmpeg on a hostile file cannot mint an API key."""
    if writes_to is None:
        role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=[table.table_arn]))
    else:
        reads, writes = [a for a in actions if a in READS], [a for a in actions if a not in READS]
        if reads:
            role.add_to_principal_policy(iam.PolicyStatement(actions=reads, resources=[table.table_arn]))
        # ForAllValues over the one key an item request carries (every item request carries it).
        only = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{p}*" for p in writes_to]}}
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=writes, resources=[table.table_arn], conditions=only)
        )
    if index_queries:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["dynamodb:Query"], resources=[f"{table.table_arn}/index/*"])
        )


def objects(role: iam.IRole, bucket: s3.IBucket, prefixes: list[str], actions: list[str]) -> None:
    """`actions` on the objects under `prefixes`."""
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects(f"{p}*") for p in prefixes])
    )


def listing(role: iam.IRole, bucket: s3.IBucket, prefixes: list[str]) -> None:
    """s3:ListBucket, for listing under `prefixes` and for reading a missing key as missing: S3
    answers 404 to a GetObject/HeadObject of a missing key only when the caller may list the
    bucket (403 otherwise), and that check carries no s3:prefix, hence `IfExists`. The code relies
    on the 404 (BlobStore.head -> None, e.g. for an original dropped after ingest)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLikeIfExists": {"s3:prefix": [f"{p}*" for p in prefixes]}},
        )
    )


def start_executions(role: iam.IRole, state_machine_arn: str) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["states:StartExecution"], resources=[state_machine_arn])
    )


def stop_executions(role: iam.IRole, executions_arn: str) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["states:StopExecution"], resources=[executions_arn])
    )
