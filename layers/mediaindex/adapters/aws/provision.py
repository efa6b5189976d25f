"""Creating the table and the bucket outside CDK: `mediaindex aws init` against moto or LocalStack,
and the test runtime. A deployment gets both from infra (storage construct), with the same table
definition (dynamo_schema) and the same CORS rules (below).

`aws init` also makes an SQS queue the bucket notifies of new originals: without the stack there is
no EventBridge rule and upload Lambda, so `serve --runtime aws` reads that queue instead
(adapters/aws/upload_queue.py). A deployment does not use it."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from mediaindex.adapters.aws.dynamo.schema import TTL_ATTRIBUTE, table_definition
from mediaindex.domain.blob_keys import ORIGINALS_PREFIX
from mediaindex.domain.errors import UnavailableError


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
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region and region != "us-east-1":  # us-east-1 refuses an explicit location constraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        # us-east-1 answers 200 to creating a bucket you already own: ask first.
        client.head_bucket(Bucket=bucket)
        created = False
    except ClientError:
        created = True
    if created:
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


# The id of the one notification rule `aws init` owns on the bucket; other rules are left as they are.
UPLOAD_NOTIFICATION_ID = "mediaindex-uploads"
# Handling one notification takes a few DynamoDB calls; a message that failed comes back after this.
UPLOAD_QUEUE_VISIBILITY_S = 30


def ensure_upload_queue(sqs: Any, queue_name: str, *, bucket: str) -> tuple[str, str, bool]:
    """The SQS queue S3 notifies of new originals when no state machine (and no EventBridge rule)
    is deployed. Creates it unless it exists, and (re)applies the policy that lets the bucket send to
    it (AWS refuses the bucket notification without it). Returns (url, arn, created)."""
    created = False
    try:
        try:
            url = str(sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])
        except ClientError as e:
            if _code(e) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                raise
            attrs = {"VisibilityTimeout": str(UPLOAD_QUEUE_VISIBILITY_S), "SqsManagedSseEnabled": "true"}
            url = str(sqs.create_queue(QueueName=queue_name, Attributes=attrs)["QueueUrl"])
            created = True
        arn = str(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(_queue_policy(arn, bucket))})
    except ClientError as e:
        raise UnavailableError(f"could not create queue {queue_name}: {_code(e)}") from e
    return url, arn, created


def _queue_policy(queue_arn: str, bucket: str) -> dict[str, Any]:
    partition = queue_arn.split(":")[1]  # aws, aws-cn, aws-us-gov: the bucket lives in the same one
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3UploadNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:{partition}:s3:::{bucket}"}},
            }
        ],
    }


def ensure_upload_notification(s3: Any, bucket: str, queue_arn: str) -> bool:
    """Points the bucket's ObjectCreated events under `originals/` at the queue. Rewrites only the
    rule with our id (the call replaces the whole configuration, so the others are sent back as
    they are). Returns whether it changed anything."""
    rule = {
        "Id": UPLOAD_NOTIFICATION_ID,
        "QueueArn": queue_arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": ORIGINALS_PREFIX}]}},
    }
    try:
        current = s3.get_bucket_notification_configuration(Bucket=bucket)
        current.pop("ResponseMetadata", None)
        queues = current.get("QueueConfigurations", [])
        ours = [q for q in queues if q.get("Id") == UPLOAD_NOTIFICATION_ID]
        if len(ours) == 1 and _same_rule(ours[0], rule):
            return False
        current["QueueConfigurations"] = [q for q in queues if q.get("Id") != UPLOAD_NOTIFICATION_ID] + [rule]
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=current)
    except ClientError as e:
        raise UnavailableError(f"could not set the upload notification of {bucket}: {_code(e)}") from e
    return True


def _same_rule(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def norm(r: dict[str, Any]) -> tuple[Any, ...]:
        # S3 answers filter rule names capitalised ("Prefix") whatever case they were sent in.
        rules = (r.get("Filter") or {}).get("Key", {}).get("FilterRules", [])
        return (
            r.get("QueueArn"),
            sorted(r.get("Events", [])),
            sorted((f["Name"].lower(), f["Value"]) for f in rules),
        )

    return norm(a) == norm(b)


def provision(
    clients: Any, *, table: str, bucket: str, queue_name: str, cors_origins: list[str]
) -> dict[str, Any]:
    """Everything `mediaindex aws init` makes, idempotently: the table, the bucket, and the upload
    queue with the bucket's notification to it. `clients` is an AwsClients. Returns what it found
    and made."""
    made_table = ensure_table(clients.dynamodb, table)
    made_bucket = ensure_bucket(
        clients.s3, bucket, region=clients.s3.meta.region_name, cors_origins=cors_origins
    )
    url, arn, made_queue = ensure_upload_queue(clients.get("sqs"), queue_name, bucket=bucket)
    changed = ensure_upload_notification(clients.s3, bucket, arn)
    return {
        "table": {"name": table, "created": made_table},
        "bucket": {"name": bucket, "created": made_bucket},
        "upload_queue": {"name": queue_name, "url": url, "created": made_queue, "notification_set": changed},
    }
