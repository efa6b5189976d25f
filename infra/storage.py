"""Media bucket and the single DynamoDB table (keys from the adapter's own schema module)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import names
from mediaindex.adapters.aws.dynamo import schema


class Storage(Construct):
    def __init__(
        self, scope: Construct, id: str, *, retain: bool, versioning: bool, cors_origins: list[str]
    ) -> None:
        super().__init__(scope, id)
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=removal,
            auto_delete_objects=False,
        )
        self.bucket = s3.Bucket(
            self,
            "Media",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=versioning,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="media/",
            cors=[
                s3.CorsRule(
                    # Browsers PUT straight to presigned URLs; multipart needs each part's ETag back.
                    allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                    allowed_origins=cors_origins or ["*"],
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=3600,
                )
            ],
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-multipart", abort_incomplete_multipart_upload_after=Duration.days(1)
                ),
                s3.LifecycleRule(id="expire-tmp", prefix=names.TMP_PREFIX, expiration=Duration.days(1)),
                *(
                    [s3.LifecycleRule(id="old-versions", noncurrent_version_expiration=Duration.days(30))]
                    if versioning
                    else []
                ),
            ],
            removal_policy=removal,
        )

        # The upload rule listens on EventBridge. Set on the bucket itself: `event_bridge_enabled=True`
        # would add a notifications custom resource (a Lambda) for the same effect.
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )

        def key(name: str) -> ddb.Attribute:
            return ddb.Attribute(name=name, type=ddb.AttributeType.STRING)

        self.table = ddb.TableV2(
            self,
            "Table",
            partition_key=key(schema.PK),
            sort_key=key(schema.SK),
            billing=ddb.Billing.on_demand(),
            point_in_time_recovery_specification=ddb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=schema.TTL_ATTRIBUTE,
            deletion_protection=retain,
            global_secondary_indexes=[
                ddb.GlobalSecondaryIndexPropsV2(
                    index_name=schema.GSI1, partition_key=key(schema.GSI1_PK), sort_key=key(schema.GSI1_SK)
                ),
                ddb.GlobalSecondaryIndexPropsV2(
                    index_name=schema.GSI2, partition_key=key(schema.GSI2_PK), sort_key=key(schema.GSI2_SK)
                ),
            ],
            removal_policy=removal,
        )
