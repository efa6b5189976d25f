"""HTTP API -> the API Lambda (FastAPI through Mangum), throttled, with access logs and CORS."""

from __future__ import annotations

import json

import jsii
from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_apigateway as apigw_v1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import names, policies
from infra.function import ServiceFunction

ENV_PURGE_FUNCTION = "MEDIAINDEX_PURGE_FUNCTION"  # settings.purge_function

_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "time": "$context.requestTime",
        "method": "$context.httpMethod",
        "path": "$context.path",
        "status": "$context.status",
        "latencyMs": "$context.responseLatency",
        "integrationError": "$context.integrationErrorMessage",
    }
)


# The stage's throttle, shared by every tenant. Sized for the scale the design is modelled at
# (docs/scale.md: about 3 API requests per upload, 10,000 uploads a minute = 500 requests/s) with
# room for status reads and searches; one tenant's flood meets its own per-minute quota in the API
# first (429 in a few ms, no work done). A stage cannot exceed the account's regional API Gateway
# throttle (10,000 requests/s, burst 5,000), which every API of the account shares.
DEFAULT_RATE_LIMIT = 1000
DEFAULT_BURST_LIMIT = 2000
ACCOUNT_RATE_LIMIT = 10_000
ACCOUNT_BURST_LIMIT = 5_000


@jsii.implements(apigw.IAccessLogSettings)
class _AccessLogs:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigw.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw_v1.AccessLogFormat:
        return apigw_v1.AccessLogFormat.custom(_ACCESS_LOG_FORMAT)


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        table: ddb.ITableV2,
        bucket: s3.IBucket,
        state_machine_arn: str,
        executions_arn: str,
        cors_origins: list[str],
        rate_limit: int = DEFAULT_RATE_LIMIT,
        burst_limit: int = DEFAULT_BURST_LIMIT,
    ) -> None:
        super().__init__(scope, id)
        if not (0 < rate_limit <= burst_limit <= ACCOUNT_BURST_LIMIT and rate_limit <= ACCOUNT_RATE_LIMIT):
            raise ValueError(
                f"context {names.CTX_API_RATE_LIMIT} and {names.CTX_API_BURST_LIMIT}: 0 < rate <= burst, "
                f"rate <= {ACCOUNT_RATE_LIMIT} and burst <= {ACCOUNT_BURST_LIMIT} (the account's own "
                f"API Gateway limits), not {rate_limit} and {burst_limit}"
            )
        self.handler = ServiceFunction(
            self,
            "ApiFn",
            folder=names.API_FUNCTION,
            layer=layer,
            environment={**environment, names.ENV_STATE_MACHINE: state_machine_arn},
            timeout=Duration.seconds(29),  # API Gateway's own integration limit
            memory_mb=1024,
        )
        role = self.handler.role
        policies.table(
            role,
            table,
            [
                *policies.TABLE_READ,
                "dynamodb:BatchGetItem",  # a search's hits checked against their assets at once
                *policies.TABLE_PUT,
                *policies.TABLE_BATCH_WRITE,
                *policies.TABLE_CHANGE,
            ],
            index_queries=True,
        )
        # The API signs upload URLs and runs multipart uploads (originals/), signs download URLs and
        # reads transcripts (derived/, originals/), and deletes assets (both).
        policies.objects(
            role,
            bucket,
            [names.ORIGINALS],
            [*policies.OBJECT_READ, *policies.OBJECT_WRITE, *policies.OBJECT_DELETE],
        )
        policies.objects(role, bucket, [names.DERIVED], [*policies.OBJECT_READ, *policies.OBJECT_DELETE])
        policies.listing(role, bucket, [names.ORIGINALS, names.DERIVED])
        policies.start_executions(role, state_machine_arn)
        policies.stop_executions(role, executions_arn)

        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=logs.RetentionDays[names.LOG_RETENTION]
        )
        self.http_api = apigw.HttpApi(
            self,
            "HttpApi",
            description="mediaindex API",
            create_default_stage=False,
            default_integration=integrations.HttpLambdaIntegration("Api", self.handler.function),
            cors_preflight=apigw.CorsPreflightOptions(
                allow_origins=cors_origins or ["*"],
                allow_methods=[apigw.CorsHttpMethod.ANY],
                allow_headers=["authorization", "content-type", "idempotency-key", "x-api-key"],
                expose_headers=["etag", "location", "retry-after"],
                max_age=Duration.hours(1),
            ),
        )
        self.stage = self.http_api.add_stage(
            "Stage",
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
            access_log_settings=_AccessLogs(self.access_logs),
        )
        self.url = self.stage.url
        CfnOutput(self, "Url", value=self.url, description="Base URL of the mediaindex API")

    def hand_purges_to(self, job: lambda_.IFunction) -> None:
        """DELETE /v1/indexes hands the purge to `job` (the reconcile function) with an
        asynchronous invoke of it, and of nothing else."""
        self.handler.function.add_environment(ENV_PURGE_FUNCTION, job.function_name)
        self.handler.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[job.function_arn])
        )
