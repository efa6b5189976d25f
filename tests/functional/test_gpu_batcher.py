"""The GPU batcher Lambda (functions/gpu_batcher) under moto: real executions wait on their task
tokens in GPU states made by the state machine's own `queued_task`, whose messages moto's Step
Functions interpreter sends to moto's SQS. The test hands those messages to the handler as the
Lambda event source mapping would, and reads back what it did: moto Batch's jobs, their manifests
in moto S3, the SubmitJob requests (moto keeps no shareIdentifier, so the requests are read from
botocore's own parameter event), and the executions the tokens settle."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from functions.gpu_batcher import handler as batcher
from mediaindex.adapters.aws import gpu_batches
from mediaindex.adapters.aws.clients import AwsClients
from mediaindex.adapters.aws.state_machine_tasks import GpuBatching, queued_task
from mediaindex.bootstrap.gpu_batches import build_gpu_batching
from mediaindex.pipeline.spec import STEP_BY_NAME
from mediaindex.settings import Settings
from tests.aws_runtime import REGION
from tests.functional.test_lambda_handlers import CTX

pytestmark = pytest.mark.aws

BUCKET = "mediaindex-gpu-test"
ITEM_TIMEOUT_S = 600


@dataclass
class World:
    sfn: Any
    sqs: Any
    s3: Any
    batch: Any
    queue_url: str
    queue_arn: str
    job_queue: str
    job_definition: str
    machine: str
    submitted: list[dict[str, Any]]  # SubmitJob requests, as the handler made them
    clients: AwsClients  # the handler's

    def refuse_jobs(self, when: Any) -> None:
        """Batch answers an error to each SubmitJob whose request `when` picks."""

        def refuse(params: dict[str, Any], **_: Any) -> None:
            if when(params):
                raise ClientError({"Error": {"Code": "ClientException", "Message": "refused"}}, "SubmitJob")

        self.clients.get("batch").meta.events.register("provide-client-params.batch.SubmitJob", refuse)

    def settings(self) -> Settings:
        return Settings(
            runtime="aws",
            aws_region=REGION,
            bucket_name=BUCKET,
            gpu_queue_arn=self.job_queue,
            gpu_job_definition_arn=self.job_definition,
            gpu_batch_item_timeout_s=ITEM_TIMEOUT_S,
        )

    def start(self, tenant_id: str, task_id: str, step: str) -> str:
        payload = {"tenant_id": tenant_id, "task_id": task_id, "gpu_step": step}
        arn = self.sfn.start_execution(stateMachineArn=self.machine, name=task_id, input=json.dumps(payload))
        return str(arn["executionArn"])

    def messages(self, count: int) -> list[dict[str, Any]]:
        """`count` messages of the GPU work queue, as SQS event records (received, as Lambda does)."""
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(records) < count:
            assert time.monotonic() < deadline, f"{len(records)} of {count} messages arrived"
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            records += [record(m, self.queue_arn) for m in got]
            if not got:
                time.sleep(0.1)
        return records

    def status(self, execution_arn: str) -> dict[str, Any]:
        described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
        return described

    def settled(self, execution_arn: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while (described := self.status(execution_arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "the execution did not settle"
            time.sleep(0.1)
        return described

    def manifest(self, request: dict[str, Any]) -> list[gpu_batches.GpuWork]:
        (key,) = request["containerOverrides"]["command"][1:]
        return gpu_batches.load_manifest(self.s3, BUCKET, key, STEP_BY_NAME)


def record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message as the event source mapping hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def machine(queue_url: str) -> dict[str, Any]:
    """One GPU state per GPU step, chosen by the input's `gpu_step`, each as the pipeline's state
    machine makes it (`queued_task`), without retries so a failed token ends in the Catch."""
    batching = GpuBatching(queue_url, max_items=2, window_s=20)
    gpu = [name for name in batcher.GPU_STEPS]
    states: dict[str, Any] = {
        "which step": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.gpu_step", "StringEquals": s, "Next": s} for s in gpu],
        },
        "done": {"Type": "Succeed"},
        "failed": {"Type": "Fail", "Error": "StepFailed"},
    }
    for name in gpu:
        step = replace(STEP_BY_NAME[name], max_attempts=1)
        states[name] = queued_task(
            step,
            batching=batching,
            retry_interval_s=1,
            queue_wait_s=600,
            next_state="done",
            catch_state="failed",
        )
    return {"StartAt": "which step", "States": states}


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "batch": {"use_docker": False}}):
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="gpu-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="gpu-work")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        batch = boto3.client("batch", region_name=REGION)
        env = batch.create_compute_environment(
            computeEnvironmentName="gpu-test", type="UNMANAGED", state="ENABLED", serviceRole=role
        )["computeEnvironmentArn"]
        job_queue = batch.create_job_queue(
            jobQueueName="gpu-test",
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}],
        )["jobQueueArn"]
        job_definition = batch.register_job_definition(
            jobDefinitionName="gpu-test-ml",
            type="container",
            containerProperties={"image": "mediaindex-ml", "vcpus": 1, "memory": 512},
        )["jobDefinitionArn"]
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(
            name="gpu-test", roleArn=role, definition=json.dumps(machine(queue_url))
        )
        # The handler's own clients, the way its cold start makes them, its SubmitJob requests read.
        clients = AwsClients(region=REGION)
        submitted: list[dict[str, Any]] = []
        w = World(sfn, sqs, s3, batch, queue_url, queue_arn, job_queue, job_definition,
                  arn["stateMachineArn"], submitted, clients)  # fmt: skip
        clients.get("batch").meta.events.register(
            "provide-client-params.batch.SubmitJob", lambda params, **_: submitted.append(dict(params))
        )
        batcher.configure(build_gpu_batching(w.settings(), clients=clients), max_items=2)
        try:
            yield w
        finally:
            batcher._state.clear()
            # Executions a test left waiting on their tokens: their interpreter threads end here.
            listed = sfn.list_executions(stateMachineArn=arn["stateMachineArn"], statusFilter="RUNNING")
            for execution in listed["executions"]:
                sfn.stop_execution(executionArn=execution["executionArn"])


def failed_event(detail: dict[str, Any], reason: str) -> dict[str, Any]:
    """EventBridge's "Batch Job State Change" for a job that failed: its detail is the job's description."""
    return {
        "version": "0",
        "id": "7e4b1ea2-0000-0000-0000-000000000000",
        "detail-type": "Batch Job State Change",
        "source": "aws.batch",
        "account": "123456789012",
        "time": "2026-11-28T01:00:00Z",
        "region": REGION,
        "resources": [detail["jobArn"]],
        "detail": {**detail, "status": "FAILED", "statusReason": reason},
    }


def job_detail(w: World, request: dict[str, Any]) -> dict[str, Any]:
    (summary,) = [
        j for j in w.batch.list_jobs(jobQueue=w.job_queue, jobStatus="SUCCEEDED")["jobSummaryList"]
        if j["jobName"] == request["jobName"]
    ]  # fmt: skip
    (job,) = w.batch.describe_jobs(jobs=[summary["jobId"]])["jobs"]
    return json.loads(json.dumps(job, default=str))  # as EventBridge carries it: JSON


def test_batches_hold_one_tenant_each_and_submit_one_job_each(world: World) -> None:
    # Given three tasks of tenant a (two steps each for one of them) and two of tenant b waiting
    started = {
        (t, task, step): world.start(t, task, step)
        for t, task, step in [
            ("acme", "tsk_a1", "transcription"),
            ("acme", "tsk_a2", "transcription"),
            ("acme", "tsk_a3", "embedding"),
            ("globex", "tsk_b1", "transcription"),
            ("globex", "tsk_b2", "embedding"),
        ]
    }
    records = world.messages(len(started))
    # When the handler gets their messages (batches of at most two)
    answer = batcher.handler({"Records": records}, CTX)
    # Then every message was taken, and acme, globex, acme's rest were submitted as one job each
    assert answer == {"batchItemFailures": []}
    assert [r["shareIdentifier"] for r in world.submitted] == ["acme", "globex", "acme"]
    manifests = [world.manifest(r) for r in world.submitted]
    assert [len(m) for m in manifests] == [2, 2, 1]
    for request, items in zip(world.submitted, manifests, strict=True):
        # each batch is its share's work alone, run by the ml image with the manifest's key
        assert {w.tenant_id for w in items} == {request["shareIdentifier"]}
        assert request["jobQueue"] == world.job_queue and request["jobDefinition"] == world.job_definition
        flag, key = request["containerOverrides"]["command"]
        assert flag == "--batch-manifest" and key.startswith("tmp/gpu-batches/")
        assert request["retryStrategy"] == {"attempts": 1}
        assert request["timeout"] == {"attemptDurationSeconds": ITEM_TIMEOUT_S * len(items)}
    tokens = {json.loads(r["body"])["token"]: json.loads(r["body"]) for r in records}
    assert {w.token: (w.tenant_id, w.task_id, w.step) for m in manifests for w in m} == {
        t: (b["tenant_id"], b["task_id"], b["step"]) for t, b in tokens.items()
    }
    # moto Batch holds the three jobs on the GPU queue, and the states still wait for the jobs
    assert len(world.batch.list_jobs(jobQueue=world.job_queue, jobStatus="SUCCEEDED")["jobSummaryList"]) == 3
    assert {world.status(arn)["status"] for arn in started.values()} == {"RUNNING"}


def test_a_batch_that_cannot_be_submitted_returns_its_messages_alone(world: World) -> None:
    # Given Batch refusing globex's job, and one message of acme delivered twice
    world.refuse_jobs(lambda params: params["shareIdentifier"] == "globex")
    for t, task in [("acme", "tsk_a1"), ("globex", "tsk_b1"), ("globex", "tsk_b2")]:
        world.start(t, task, "transcription")
    records = world.messages(3)
    acme = next(r for r in records if json.loads(r["body"])["tenant_id"] == "acme")
    again = {**acme, "messageId": "redelivered-" + acme["messageId"]}
    # When the handler gets them
    answer = batcher.handler({"Records": [*records, again]}, CTX)
    # Then globex's two messages come back to the queue, acme's job went out once
    globex = {r["messageId"] for r in records if json.loads(r["body"])["tenant_id"] == "globex"}
    assert {f["itemIdentifier"] for f in answer["batchItemFailures"]} == globex
    accepted = [r for r in world.submitted if r["shareIdentifier"] == "acme"]
    assert len(accepted) == 1 and len(world.manifest(accepted[0])) == 1


def test_a_failed_submission_returns_the_messages_of_a_duplicate_too(world: World) -> None:
    # Given Batch refusing every job, and one message delivered twice
    world.refuse_jobs(lambda params: True)
    world.start("acme", "tsk_a1", "embedding")
    (first,) = world.messages(1)
    again = {**first, "messageId": "redelivered"}
    # When the handler gets both
    answer = batcher.handler({"Records": [first, again]}, CTX)
    # Then both deliveries come back (the next delivery submits it once)
    assert {f["itemIdentifier"] for f in answer["batchItemFailures"]} == {first["messageId"], "redelivered"}


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps(["a list"]),
        json.dumps({"tenant_id": "acme", "task_id": "tsk_1", "step": "probe", "token": "t"}),  # a CPU step
        json.dumps({"tenant_id": "acme", "task_id": "../x", "step": "embedding", "token": "t"}),
        json.dumps({"tenant_id": "acme", "task_id": "tsk_1", "step": "embedding"}),  # no token
    ],
)
def test_a_body_that_is_not_gpu_work_is_dropped_not_retried(world: World, body: str) -> None:
    # Given a real message beside one that is not GPU work
    arn = world.start("acme", "tsk_a1", "transcription")
    (good,) = world.messages(1)
    bad = {**good, "messageId": "bad", "body": body}
    # When the handler gets both
    answer = batcher.handler({"Records": [bad, good]}, CTX)
    # Then the bad one is neither retried nor submitted; the good one is
    assert answer == {"batchItemFailures": []}
    (request,) = world.submitted
    assert [w.task_id for w in world.manifest(request)] == ["tsk_a1"]
    assert world.status(arn)["status"] == "RUNNING"


def test_a_failed_batch_job_fails_the_tokens_of_its_manifest_alone(world: World) -> None:
    # Given two batches submitted: acme's two tasks and globex's one
    arns = {task: world.start(t, task, "transcription") for t, task in
            [("acme", "tsk_a1"), ("acme", "tsk_a2"), ("globex", "tsk_b1")]}  # fmt: skip
    assert batcher.handler({"Records": world.messages(3)}, CTX) == {"batchItemFailures": []}
    acme_request = next(r for r in world.submitted if r["shareIdentifier"] == "acme")
    # When Batch reports acme's job FAILED (the Spot instance was reclaimed)
    event = failed_event(job_detail(world, acme_request), "Host EC2 (instance i-0abc) terminated.")
    answer = batcher.handler(event, CTX)
    # Then each state of that batch ends in its Catch with the batch job's error; globex's waits on
    assert answer == {"status": "failed", "tokens": 2}
    for task in ("tsk_a1", "tsk_a2"):
        assert world.settled(arns[task])["status"] == "FAILED"
        history = world.sfn.get_execution_history(executionArn=arns[task])["events"]
        failures = [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"]
        assert [f["error"] for f in failures] == [gpu_batches.ERROR_JOB_FAILED]
    assert world.status(arns["tsk_b1"])["status"] == "RUNNING"


def test_a_failed_job_of_another_kind_is_ignored(world: World) -> None:
    # Given a waiting state, and a one-step job (the command of a job the state machine submits)
    arn = world.start("acme", "tsk_a1", "transcription")
    assert batcher.handler({"Records": world.messages(1)}, CTX) == {"batchItemFailures": []}
    detail = job_detail(world, world.submitted[0])
    detail["container"]["command"] = ["--tenant-id", "acme", "--task-id", "tsk_a1", "--step", "probe"]
    # When its FAILED event arrives, or another kind of event
    assert batcher.handler(failed_event(detail, "Essential container exited"), CTX) == {"status": "ignored"}
    other = {"source": "aws.batch", "detail-type": "Batch Job State Change", "detail": {"status": "RUNNING"}}
    assert batcher.handler(other, CTX) == {"status": "ignored"}
    # Then no token was failed
    assert world.status(arn)["status"] == "RUNNING"


def test_a_failed_job_whose_manifest_expired_fails_nothing(world: World) -> None:
    arn = world.start("acme", "tsk_a1", "embedding")
    assert batcher.handler({"Records": world.messages(1)}, CTX) == {"batchItemFailures": []}
    detail = job_detail(world, world.submitted[0])
    world.s3.delete_object(Bucket=BUCKET, Key=detail["container"]["command"][1])
    assert batcher.handler(failed_event(detail, "timeout"), CTX) == {"status": "manifest_missing"}
    assert world.status(arn)["status"] == "RUNNING"


def test_an_unreadable_manifest_or_a_bucket_error_raises_for_eventbridge_to_retry(world: World) -> None:
    world.start("acme", "tsk_a1", "embedding")
    assert batcher.handler({"Records": world.messages(1)}, CTX) == {"batchItemFailures": []}
    detail = job_detail(world, world.submitted[0])
    key = detail["container"]["command"][1]
    world.s3.put_object(Bucket=BUCKET, Key=key, Body=b'{"version": 99, "items": []}')
    with pytest.raises(ValueError, match="manifest"):
        batcher.handler(failed_event(detail, "timeout"), CTX)
    world.s3.delete_object(Bucket=BUCKET, Key=key)
    world.s3.delete_bucket(Bucket=BUCKET)
    with pytest.raises(ClientError, match="NoSuchBucket"):
        batcher.handler(failed_event(detail, "timeout"), CTX)


def test_records_of_another_source_are_refused(world: World) -> None:
    with pytest.raises(ValueError, match="SQS"):
        batcher.handler({"Records": [{"eventSource": "aws:s3", "messageId": "x", "body": "{}"}]}, CTX)


def test_the_first_invoke_configures_from_the_environment(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cold start: the function's environment as the stack sets it
    batcher._state.clear()
    for name, value in {
        "MEDIAINDEX_RUNTIME": "aws",
        "MEDIAINDEX_AWS_REGION": REGION,
        "MEDIAINDEX_BUCKET_NAME": BUCKET,
        "MEDIAINDEX_GPU_QUEUE_ARN": world.job_queue,
        "MEDIAINDEX_GPU_JOB_DEFINITION_ARN": world.job_definition,
        "MEDIAINDEX_GPU_BATCH_MAX_ITEMS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    for task in ("tsk_a1", "tsk_a2"):
        world.start("acme", task, "transcription")
    # When it gets two messages of one tenant
    assert batcher.handler({"Records": world.messages(2)}, CTX) == {"batchItemFailures": []}
    # Then it submitted one job per message (at most one item a batch)
    jobs = world.batch.list_jobs(jobQueue=world.job_queue, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert len(jobs) == 2


def test_a_batch_size_below_one_or_a_missing_target_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        batcher.configure(batcher._state["batching"], max_items=0)
    with pytest.raises(ValueError, match="GPU queue"):
        build_gpu_batching(world.settings().model_copy(update={"gpu_queue_arn": None}))
    monkeypatch.setenv("MEDIAINDEX_GPU_BATCH_MAX_ITEMS", "0")
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        batcher.configure(batcher._state["batching"])
