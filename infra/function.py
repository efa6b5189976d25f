"""A Python Lambda the way every mediaindex function is built: its own role (no managed policies),
its own log group with retention, the core layer, ARM64, X-Ray tracing, and a DLQ for async calls."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import names
from infra.layer import ARCHITECTURE, RUNTIME


class ServiceFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        folder: str,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        timeout: Duration,
        memory_mb: int = 512,
        dead_letter: bool = False,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"mediaindex {folder}",
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays[names.LOG_RETENTION],
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.dlq = dead_letter_queue(self) if dead_letter else None
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=names.HANDLER,
            code=lambda_.Code.from_asset(
                str(names.FUNCTIONS / folder), exclude=["__pycache__", "*.pyc", "tests"]
            ),
            layers=[layer],
            role=self.role,
            log_group=self.log_group,
            environment=environment,
            timeout=timeout,
            memory_size=memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            dead_letter_queue=self.dlq,
            reserved_concurrent_executions=reserved_concurrency,
        )


def dead_letter_queue(scope: Construct, id: str = "Dlq") -> sqs.Queue:
    """Where failed events wait 14 days for a look (TLS only, SQS-managed encryption)."""
    return sqs.Queue(
        scope,
        id,
        retention_period=Duration.days(14),
        enforce_ssl=True,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
    )
