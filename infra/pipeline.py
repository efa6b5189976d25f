"""Upload event -> Step Functions -> Batch. The EventBridge rule sends S3 "Object Created" events
under originals/ to the upload Lambda, which starts the execution; the state machine is generated
from the pipeline spec (mediaindex.adapters.aws.state_machine) and reports to the events Lambda.

GPU steps run in batches (mediaindex.adapters.aws.gpu_batches): each GPU state sends its work to
the GPU work queue and waits on its task token; the batcher Lambda gathers the queue's messages,
submits one job per tenant's batch on the GPU queue, and fails the tokens of a batch job that
fails as a whole (Batch's "Job State Change" event); the job settles the tokens it runs."""

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
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import names, policies
from infra.compute import Compute
from infra.function import ServiceFunction, dead_letter_queue
from mediaindex.adapters.aws import state_machine
from mediaindex.adapters.aws.state_machine_tasks import GpuBatching
from mediaindex.pipeline.spec import STEPS

BATCHER_TIMEOUT = Duration.seconds(60)  # a group's manifests, submissions and heartbeats: seconds
GPU_MAX_RECEIVES = 5  # a group the batcher keeps failing to submit then waits in the DLQ
DEFAULT_GPU_BATCH_MAX_ITEMS = 16
DEFAULT_GPU_BATCH_WINDOW_S = 20
# Messages per invoke: a few batches' worth, so one invoke's group can serve several tenants.
BATCHES_PER_INVOKE = 4
# Concurrent batcher invokes. One invoke of a few batches takes about a second or two (a manifest
# and a SubmitJob per batch, a heartbeat per item): ten keep up with ~300 GPU messages a second
# (10,000 uploads a minute), while a quiet queue still hands over one window's group at a time.
BATCHER_MAX_CONCURRENCY = 10
# Lambda's limits: a batching window of 0 to 300 s, and batches over 10 messages need a window.
_MAX_WINDOW_S = 300
_MAX_SQS_BATCH = 10_000
# The steps the state machine submits itself; GPU steps go through the batcher.
DIRECT_STEPS = [s for s in STEPS if s.compute != "gpu"]
GPU_STEPS = [s for s in STEPS if s.compute == "gpu"]
# What a batch job does with its manifest and its items' task tokens.
TOKEN_ACTIONS = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]
# The Lambda service polls the GPU work queue for the batcher with the batcher's role.
CONSUME = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]


def gpu_batching_context(max_items: object, window_s: object) -> tuple[int, int]:
    """(max items a batch, gather window in seconds) from the context values (None: the default)."""
    items = DEFAULT_GPU_BATCH_MAX_ITEMS if max_items is None else int(str(max_items))
    window = DEFAULT_GPU_BATCH_WINDOW_S if window_s is None else int(str(window_s))
    if not 1 <= items * BATCHES_PER_INVOKE <= _MAX_SQS_BATCH:
        raise ValueError(
            f"context {names.CTX_GPU_BATCH_MAX_ITEMS} must be 1 to {_MAX_SQS_BATCH // BATCHES_PER_INVOKE}"
        )
    if not 0 <= window <= _MAX_WINDOW_S:
        raise ValueError(f"context {names.CTX_GPU_BATCH_WINDOW_S} must be 0 to {_MAX_WINDOW_S} (seconds)")
    return items, window


def consumer_batch_size(max_items: int, window_s: int) -> int:
    """Messages per batcher invoke: a few batches' worth; without a window Lambda hands over 10 at most."""
    return max_items * BATCHES_PER_INVOKE if window_s else min(max_items * BATCHES_PER_INVOKE, 10)


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
            writes_to=[*policies.PIPELINE_ITEMS, "WEBHOOK#"],  # and the deliveries of a settled task
        )
        # task_finished drops the original of an asset uploaded with save_original=false.
        policies.objects(self.events_fn.role, bucket, [names.ORIGINALS], policies.OBJECT_DELETE)

        ctx = self.node.try_get_context
        self.gpu_batch_max_items, self.gpu_batch_window_s = gpu_batching_context(
            ctx(names.CTX_GPU_BATCH_MAX_ITEMS), ctx(names.CTX_GPU_BATCH_WINDOW_S)
        )
        self.gpu_dlq = dead_letter_queue(self, "GpuWorkDlq")
        self.gpu_work = sqs.Queue(
            self,
            "GpuWork",
            # AWS's advice for a Lambda consumer: six times its timeout, plus the batching window.
            visibility_timeout=Duration.seconds(6 * BATCHER_TIMEOUT.to_seconds() + self.gpu_batch_window_s),
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=GPU_MAX_RECEIVES, queue=self.gpu_dlq),
        )
        self.definition = state_machine.definition(
            STEPS,
            cpu_queue_arn=compute.cpu_queue.job_queue_arn,
            gpu_queue_arn=compute.gpu_queue.job_queue_arn,
            job_definitions={i: d.job_definition_arn for i, d in compute.job_definitions.items()},
            events_function_arn=self.events_fn.function.function_arn,
            gpu_batching=GpuBatching(
                self.gpu_work.queue_url, self.gpu_batch_max_items, self.gpu_batch_window_s
            ),
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
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.gpu_work.queue_arn])
        )
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
            self.upload_fn.role,
            table,
            ["dynamodb:GetItem", *policies.TABLE_PUT],
            index_queries=True,
            writes_to=["ASSET#", "TASK#"],
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

        self._gpu_batcher(bucket, compute, layer, environment)

    def _gpu_batcher(
        self, bucket: s3.IBucket, compute: Compute, layer: lambda_.ILayerVersion, environment: dict[str, str]
    ) -> None:
        """The batcher Lambda: fed by the GPU work queue and by the GPU queue's failed jobs."""
        ml = compute.job_definitions["ml"]
        self.gpu_batcher = ServiceFunction(
            self,
            "GpuBatcherFn",
            folder=names.GPU_BATCHER_FUNCTION,
            layer=layer,
            environment={
                **environment,
                names.ENV_GPU_QUEUE: compute.gpu_queue.job_queue_arn,
                names.ENV_GPU_JOB_DEFINITION: ml.job_definition_arn,
                names.ENV_GPU_BATCH_MAX_ITEMS: str(self.gpu_batch_max_items),
                # A batch job may run this long per item: the longest GPU step's own timeout.
                names.ENV_GPU_ITEM_TIMEOUT: str(max(s.timeout_s for s in GPU_STEPS)),
            },
            timeout=BATCHER_TIMEOUT,
            dead_letter=True,  # the failed-job events it could not handle
        )
        role = self.gpu_batcher.role
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=CONSUME, resources=[self.gpu_work.queue_arn])
        )
        # Writes each batch's manifest, reads it back when the batch's job failed (a missing one as
        # missing: the listing check).
        policies.objects(role, bucket, [names.GPU_MANIFESTS], ["s3:PutObject", "s3:GetObject"])
        policies.listing(role, bucket, [names.GPU_MANIFESTS])
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["batch:SubmitJob"],
                resources=[compute.gpu_queue.job_queue_arn, ml.job_definition_arn],
            )
        )
        machine_arn = self.state_machine.state_machine_arn
        # Policies of their own naming the machine, as EventsStartReindexTasks does.
        iam.Policy(
            self,
            "GpuBatcherTokens",
            statements=[
                iam.PolicyStatement(
                    # Heartbeats when a batch is submitted, failures when its job failed.
                    actions=["states:SendTaskHeartbeat", "states:SendTaskFailure"],
                    resources=[machine_arn],
                )
            ],
            roles=[role],
        )
        self.gpu_jobs_policy = iam.Policy(
            self,
            "GpuJobsTokens",
            statements=[
                iam.PolicyStatement(actions=TOKEN_ACTIONS, resources=[machine_arn]),
                iam.PolicyStatement(
                    actions=policies.OBJECT_READ,
                    resources=[bucket.arn_for_objects(f"{names.GPU_MANIFESTS}*")],
                ),
            ],
            roles=[compute.job_roles["ml"]],
        )
        self.gpu_consumer = lambda_.EventSourceMapping(
            self,
            "GpuWorkConsumer",
            target=self.gpu_batcher.function,
            event_source_arn=self.gpu_work.queue_arn,
            batch_size=consumer_batch_size(self.gpu_batch_max_items, self.gpu_batch_window_s),
            max_batching_window=Duration.seconds(self.gpu_batch_window_s),
            report_batch_item_failures=True,
            max_concurrency=BATCHER_MAX_CONCURRENCY,
        )
        self.gpu_failed_rule = events.Rule(
            self,
            "GpuBatchJobFailed",
            event_pattern=events.EventPattern(
                source=["aws.batch"],
                detail_type=["Batch Job State Change"],
                detail={"status": ["FAILED"], "jobQueue": [compute.gpu_queue.job_queue_arn]},
            ),
            targets=[
                targets.LambdaFunction(
                    self.gpu_batcher.function,
                    dead_letter_queue=self.gpu_batcher.dlq,
                    retry_attempts=4,
                    max_event_age=Duration.hours(2),
                )
            ],
        )

    def _grant_batch(self, compute: Compute, stack: Stack) -> None:
        """What `submitJob.sync` needs: submit to the queues and definitions of the steps it submits
        itself, watch and stop jobs, and the managed EventBridge rule Step Functions uses to learn a
        job finished."""
        images = {s.image for s in DIRECT_STEPS}
        definition_arns = [
            stack.format_arn(
                service="batch", resource="job-definition", resource_name=f"{d.job_definition_name}:*"
            )
            for i, d in compute.job_definitions.items()
            if i in images
        ]
        queues = {s.compute: compute.queue_for[s.compute].job_queue_arn for s in DIRECT_STEPS}
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["batch:SubmitJob"], resources=[*queues.values(), *definition_arns])
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
