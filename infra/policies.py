"""Least-privilege statements, written out action by action (no `*` actions, no CDK `grant*`
helpers, which add wildcard actions such as `s3:GetObject*`)."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

TABLE_READ = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem"]
TABLE_WRITE = [
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
]


def table_read_write(role: iam.IRole, table: ddb.ITableV2) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=[*TABLE_READ, *TABLE_WRITE],
            resources=[table.table_arn, f"{table.table_arn}/index/*"],
        )
    )


def objects(
    role: iam.IRole, bucket: s3.IBucket, prefixes: list[str], *, read: bool, write: bool, delete: bool = False
) -> None:
    actions = (["s3:GetObject"] if read else []) + (
        ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"] if write else []
    )
    actions += ["s3:DeleteObject"] if delete else []
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects(f"{p}*") for p in prefixes])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
        )
    )


def start_executions(role: iam.IRole, state_machine_arn: str) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["states:StartExecution"], resources=[state_machine_arn])
    )


def stop_executions(role: iam.IRole, executions_arn: str) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["states:StopExecution", "states:DescribeExecution"], resources=[executions_arn]
        )
    )
