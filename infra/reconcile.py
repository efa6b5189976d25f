"""The reconciler's schedule (services/reconcile.py, docs/tenants.md "Reconciliation"): an
EventBridge rule runs functions/reconcile every RATE. Its role may list the state machine's
executions, read and stop them, list and end jobs (Batch has no resource-level permission for
ListJobs), and settle tasks as the pipeline-events Lambda does: read and write the table, drop an
original asked not to be kept, and queue webhook deliveries. It is also the index purge job
(`{"purge": true}` from the API, and every run): it lists a deleted index's assets (gsi1), reads
their partitions and tasks, deletes their rows in batches and their objects under both prefixes,
stops their running executions, and removes the index row and its purge ledger item."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import names, policies
from infra import webhooks as webhooks_env
from infra.compute import Compute
from infra.function import ServiceFunction
from infra.nag import OBJECTS, TABLE_INDEXES, XRAY, ref
from infra.pipeline import Pipeline
from infra.webhooks import Webhooks

FUNCTION_FOLDER = "reconcile"  # functions/reconcile
RATE = Duration.minutes(5)
ENV_QUEUES = "MEDIAINDEX_RECONCILE_BATCH_QUEUE_ARNS"  # read by services.reconcile.ReconcileSettings


class Reconcile(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        table: ddb.ITableV2,
        bucket: s3.IBucket,
        pipeline: Pipeline,
        compute: Compute,
        webhooks: Webhooks,
    ) -> None:
        super().__init__(scope, id)
        queues = [compute.cpu_queue.job_queue_arn, compute.gpu_queue.job_queue_arn]
        self.fn = ServiceFunction(
            self,
            "Fn",
            folder=FUNCTION_FOLDER,
            layer=layer,
            environment={
                **environment,
                names.ENV_STATE_MACHINE: pipeline.state_machine.state_machine_arn,
                ENV_QUEUES: f'["{queues[0]}","{queues[1]}"]',  # pydantic-settings reads a list as JSON
            },
            timeout=Duration.minutes(5),
            reserved_concurrency=1,  # one sweep at a time
        )
        role = self.fn.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["states:ListExecutions"], resources=[pipeline.state_machine.state_machine_arn]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[pipeline.executions_arn],
            )
        )
        # ListJobs has no resource-level permissions (IAM service authorization reference).
        role.add_to_principal_policy(iam.PolicyStatement(actions=["batch:ListJobs"], resources=["*"]))
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["batch:TerminateJob"],
                resources=[Stack.of(self).format_arn(service="batch", resource="job", resource_name="*")],
            )
        )
        policies.table(
            role,
            table,
            [
                *policies.TABLE_READ,
                *policies.TABLE_PUT,
                "dynamodb:BatchGetItem",  # a purged page's tasks, read at once
                *policies.TABLE_BATCH_WRITE,  # a purged page's rows
                "dynamodb:DeleteItem",  # the index row, its name guards, its ledger item
                "dynamodb:UpdateItem",  # the usage counters a stuck task's failed features move
            ],
            index_queries=True,  # the deleted index's assets (gsi1)
        )
        policies.objects(role, bucket, [names.ORIGINALS], policies.OBJECT_DELETE)
        policies.objects(role, bucket, [names.DERIVED], policies.OBJECT_DELETE)
        policies.listing(role, bucket, [names.ORIGINALS, names.DERIVED])
        # Settled tasks are reported to webhooks, as the pipeline-events Lambda reports them.
        self.fn.function.add_environment(webhooks_env.ENV_QUEUE, webhooks.queue.queue_url)
        self.fn.function.add_environment(webhooks_env.ENV_KEY, webhooks.key.key_arn)
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[webhooks.queue.queue_arn])
        )
        self._acknowledge(pipeline, bucket, table)
        self.rule = events.Rule(
            self,
            "Schedule",
            schedule=events.Schedule.rate(RATE),
            targets=[targets.LambdaFunction(self.fn.function, retry_attempts=0)],
        )

    def _acknowledge(self, pipeline: Pipeline, bucket: s3.IBucket, table: ddb.ITableV2) -> None:
        """cdk-nag findings of this role, each with why the wildcard is the narrowest grant."""
        stack = Stack.of(self)
        partition = f"arn:<AWS::Partition>:%s:{stack.region}:{stack.account}"
        machine = ref(stack, pipeline.state_machine, "Name")
        for rule, reason in {
            "IAM5[Resource::*]": f"{XRAY} batch:ListJobs has none either.",
            f"IAM5[Resource::{partition % 'states'}:execution:{machine}:*]": "Describe and stop executions "
            "of this deployment's one state machine (execution names are task ids).",
            f"IAM5[Resource::{partition % 'batch'}:job/*]": "TerminateJob takes job ARNs, which carry no "
            "queue: a job RUNNABLE too long on this deployment's queues (the only ones listed) is ended.",
            f"IAM5[Resource::{ref(stack, bucket)}/originals/*]": OBJECTS,
            f"IAM5[Resource::{ref(stack, bucket)}/derived/*]": OBJECTS,
            f"IAM5[Resource::{ref(stack, table)}/index/*]": TABLE_INDEXES,
        }.items():
            Validations.of(self.fn.role).acknowledge(Acknowledgment(id=f"AwsSolutions-{rule}", reason=reason))
        Validations.of(self.fn.function).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="The core package targets Python 3.11 (pyproject requires-python, tested on it).",
            )
        )
