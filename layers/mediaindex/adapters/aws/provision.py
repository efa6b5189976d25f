"""Creating the table and the bucket outside CDK: `mediaindex aws init` against moto or LocalStack,
and the test runtime. A deployment gets both from infra (storage construct), with the same table
definition (dynamo_schema) and the same CORS rules (below)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mediaindex.adapters.aws.dynamo_schema import TTL_ATTRIBUTE, table_definition
from mediaindex.errors import UnavailableError


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def cors_rules(origins: list[str]) -> list[dict[str, Any]]:
    """Browsers PUT originals and parts straight to S3 with presigned URLs and must read each part's
    ETag to complete a multipart upload."""
    return [
        {
            "AllowedOrigins": origins or ["*"],
            "AllowedMethods": ["GET", "PUT", "HEAD"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3600,
        }
    ]


def ensure_table(client: Any, table_name: str) -> bool:
    """Creates the single table (on demand, TTL on) unless it exists. Returns whether it created it."""
    try:
        client.create_table(**table_definition(table_name))
    except ClientError as e:
        if _code(e) == "ResourceInUseException":
            return False
        raise UnavailableError(f"could not create table {table_name}: {_code(e)}") from e
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    client.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )
    return True


def ensure_bucket(client: Any, bucket: str, *, region: str | None, cors_origins: list[str]) -> bool:
    """Creates the media bucket (private, SSE-S3 by default) with CORS for browser uploads unless it
    exists. Returns whether it created it. CORS is (re)applied either way."""
    created = True
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region and region != "us-east-1":  # us-east-1 refuses an explicit location constraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
    except ClientError as e:
        if _code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise UnavailableError(f"could not create bucket {bucket}: {_code(e)}") from e
        created = False
    try:
        client.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        client.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": cors_rules(cors_origins)})
    except ClientError as e:
        raise UnavailableError(f"could not configure bucket {bucket}: {_code(e)}") from e
    return created
