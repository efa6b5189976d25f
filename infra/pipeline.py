"""Upload event -> Step Functions -> Batch. The EventBridge rule sends S3 "Object Created" events
under originals/ to the upload Lambda, which starts the execution; the state machine is generated
from the pipeline spec (mediaindex.adapters.aws.state_machine) and reports to the events Lambda."""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import names, policies
from infra.compute import Compute
from infra.function import ServiceFunction
from mediaindex.adapters.aws import state_machine
from mediaindex.pipeline.spec import STEPS


class Pipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket: s3.IBucket,
        table: ddb.ITableV2,
        compute: Compute,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)

        self.events_fn = ServiceFunction(
            self,
            "EventsFn",
            folder=names.PIPELINE_EVENTS_FUNCTION,
            layer=layer,
            environment=environment,
            timeout=Duration.seconds(30),
        )
        # Settling tasks; moving a re-index on: its index row, its assets (gsi1) and next tasks.
        policies.table(
            self.events_fn.role,
            table,
            [*policies.TABLE_READ, *policies.TABLE_PUT, "dynamodb:UpdateItem"],  # counters
            index_queries=True,
        )
        # task_finished drops the original of an asset uploaded with save_original=false.
        policies.objects(self.events_fn.role, bucket, [names.ORIGINALS], policies.OBJECT_DELETE)

        self.definition = state_machine.definition(
            STEPS,
            cpu_queue_arn=compute.cpu_queue.job_queue_arn,
            gpu_queue_arn=compute.gpu_queue.job_queue_arn,
            job_definitions={i: d.job_definition_arn for i, d in compute.job_definitions.items()},
            events_function_arn=self.events_fn.function.function_arn,
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays[names.LOG_RETENTION],
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("states.amazonaws.com"))
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            # json.dumps, not Stack.to_json_string: that drops nulls, and "ResultPath": null (keep
            # the input, discard the result) means something else than no ResultPath at all.
            definition_body=sfn.DefinitionBody.from_string(json.dumps(self.definition)),
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
        )
        self._grant_batch(compute, stack)
        # The events Lambda starts a re-index's next tasks on this machine. A policy of its own:
        # the function's default policy may not name the machine, whose definition names the
        # function (the function waits for its default policy: that would be a cycle).
        iam.Policy(
            self,
            "EventsStartReindexTasks",
            statements=[
                iam.PolicyStatement(
                    actions=["states:StartExecution"], resources=[self.state_machine.state_machine_arn]
                )
            ],
            roles=[self.events_fn.role],
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[self.events_fn.function.function_arn],
            )
        )

        self.upload_fn = ServiceFunction(
            self,
            "UploadFn",
            folder=names.UPLOAD_EVENT_FUNCTION,
            layer=layer,
            environment={**environment, names.ENV_STATE_MACHINE: self.state_machine.state_machine_arn},
            timeout=Duration.seconds(30),
            dead_letter=True,
        )
        # The asset and its task (tasks are found through gsi2); no object is read, but an original
        # that lands for an asset no longer awaiting it (deleted, failed) is deleted.
        policies.table(
            self.upload_fn.role, table, ["dynamodb:GetItem", *policies.TABLE_PUT], index_queries=True
        )
        policies.start_executions(self.upload_fn.role, self.state_machine.state_machine_arn)
        policies.objects(self.upload_fn.role, bucket, [names.ORIGINALS], policies.OBJECT_DELETE)

        self.rule = events.Rule(
            self,
            "OriginalCreated",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [bucket.bucket_name]},
                    "object": {"key": [{"prefix": names.ORIGINALS}]},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.upload_fn.function,
                    dead_letter_queue=self.upload_fn.dlq,
                    retry_attempts=4,
                    max_event_age=Duration.hours(2),
                )
            ],
        )

    def _grant_batch(self, compute: Compute, stack: Stack) -> None:
        """What `submitJob.sync` needs: submit to our queues and definitions, watch and stop jobs, and
        the managed EventBridge rule Step Functions uses to learn a job finished."""
        definition_arns = [
            stack.format_arn(
                service="batch", resource="job-definition", resource_name=f"{d.job_definition_name}:*"
            )
            for d in compute.job_definitions.values()
        ]
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["batch:SubmitJob"],
                resources=[
                    compute.cpu_queue.job_queue_arn,
                    compute.gpu_queue.job_queue_arn,
                    *definition_arns,
                ],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["batch:TerminateJob"],
                resources=[stack.format_arn(service="batch", resource="job", resource_name="*")],
            )
        )
        # DescribeJobs has no resource-level permissions (IAM service authorization reference).
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["batch:DescribeJobs"], resources=["*"])
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    stack.format_arn(
                        service="events",
                        resource="rule",
                        resource_name="StepFunctionsGetEventsForBatchJobsRule",
                    )
                ],
            )
        )

    @property
    def executions_arn(self) -> str:
        """Every execution of this state machine (the API stops them on cancel)."""
        return Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
