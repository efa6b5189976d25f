"""The generated state machine, executed by moto's Step Functions interpreter against moto's Batch
and Lambda (no Docker).

Two test-only patches, both to moto, none to the definition under test:
- moto 5.2.5's Batch integration leaves request/response normalisation empty, so `submitJob.sync`
  fails with cause 'JobName' (it passes `JobName` where boto3 wants `jobName`). `_normalise_batch`
  fills in the normalisation from botocore's Batch model, as real Step Functions does.
- moto's Docker-free Batch marks every job succeeded (or, with MOTO_SIMPLE_BATCH_FAIL_AFTER, every
  job failed). `_fail_step` marks failed only the jobs whose command runs one chosen step, so a single
  feature's job fails while the others succeed.
The events Lambda is moto's Docker-free one (it answers without running code), so what it was asked
is read from the execution history: the Payload each of its Task states was scheduled with.

moto's interpreter is lenient (a Choice on a missing path passes, for one): the strict run of the
same definition, against the real entrypoints, is tests/infra/test_state_machine_faithful.py.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from moto import mock_aws
from moto.batch_simple.models import BatchSimpleBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch import (
    StateTaskServiceBatch,
)

from mediaindex.adapters.aws import gpu_batches
from mediaindex.adapters.aws.state_machine import definition
from mediaindex.adapters.aws.state_machine_tasks import GpuBatching
from mediaindex.pipeline.spec import STEP_BY_NAME, STEPS

pytestmark = pytest.mark.aws

REGION = "us-east-1"
_BATCH_MODEL = botocore.session.get_session().get_service_model("batch")


def _normalise_parameters(
    self: StateTaskServiceBatch,
    parameters: dict[str, Any],
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    operation = _BATCH_MODEL.operation_model(
        self.resource.api_action[0].upper() + self.resource.api_action[1:]
    )
    assert operation.input_shape is not None
    self._to_boto_request(parameters, operation.input_shape)


def _normalise_response(
    self: StateTaskServiceBatch,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    action = service_action_name or self.resource.api_action
    name = "".join(part.capitalize() for part in action.split("_")) if "_" in action else action
    operation = _BATCH_MODEL.operation_model(name[0].upper() + name[1:])
    assert operation.output_shape is not None
    self._from_boto_response(response, operation.output_shape)


def _fail_step(step: str) -> Any:
    original = BatchSimpleBackend._mark_job_as_finished

    def mark(self: BatchSimpleBackend, include_start_attempt: bool, job: Any) -> None:
        command = job.container_overrides.get("command", [])
        if command[-2:] == ["--step", step]:
            self.backend._jobs[job.job_id] = job
            job._start_attempt()
            job._mark_stopped(success=False)
            return
        original(self, include_start_attempt, job)

    return mark


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, Any]]:
    with (
        pytest.MonkeyPatch.context() as mp,
        mock_aws(
            config={
                "stepfunctions": {"execute_state_machine": True},
                "lambda": {"use_docker": False},
                "batch": {"use_docker": False},
            }
        ),
    ):
        mp.setattr(StateTaskServiceBatch, "_normalise_parameters", _normalise_parameters)
        mp.setattr(StateTaskServiceBatch, "_normalise_response", _normalise_response)
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(
            RoleName="pipeline-role",
            AssumeRolePolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
            ),
        )["Role"]["Arn"]
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w") as z:
            z.writestr("handler.py", "def handler(event, context):\n    return {}\n")
        events_fn = boto3.client("lambda", region_name=REGION).create_function(
            FunctionName="pipeline-events",
            Runtime="python3.11",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": zipped.getvalue()},
        )["FunctionArn"]
        batch = boto3.client("batch", region_name=REGION)
        env = batch.create_compute_environment(
            computeEnvironmentName="pipeline-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
        )["computeEnvironmentArn"]
        queues = {
            kind: batch.create_job_queue(
                jobQueueName=f"pipeline-{kind}",
                state="ENABLED",
                priority=1,
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}],
            )["jobQueueArn"]
            for kind in ("cpu", "gpu")
        }
        job_definitions = {
            image: batch.register_job_definition(
                jobDefinitionName=f"pipeline-{image}",
                type="container",
                containerProperties={"image": f"mediaindex-{image}", "vcpus": 1, "memory": 512},
            )["jobDefinitionArn"]
            for image in ("media", "ml")
        }
        sfn = boto3.client("stepfunctions", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="pipeline-media")
        work_queue = sqs.create_queue(QueueName="pipeline-gpu-work")["QueueUrl"]
        machines = {
            name: sfn.create_state_machine(
                name=f"pipeline-{name}",
                roleArn=role,
                definition=json.dumps(
                    definition(
                        STEPS,
                        cpu_queue_arn=queues["cpu"],
                        gpu_queue_arn=queues["gpu"],
                        job_definitions=job_definitions,
                        events_function_arn=events_fn,
                        retry_interval_s=1,
                        gpu_batching=batching,
                    )
                ),
            )["stateMachineArn"]
            for name, batching in (("jobs", None), ("batched", GpuBatching(work_queue, 2, 1)))
        }
        yield {
            "sfn": sfn,
            "batch": batch,
            "sqs": sqs,
            "s3": s3,
            "machine": machines["jobs"],
            "batched_machine": machines["batched"],
            "work_queue": work_queue,
            "queues": queues,
            "job_definitions": job_definitions,
        }


def _run(aws: dict[str, Any], execution_input: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    arn = _start(aws, execution_input, aws["machine"])
    return _wait(aws, arn)


def _start(aws: dict[str, Any], execution_input: dict[str, Any], machine: str) -> str:
    return str(
        aws["sfn"].start_execution(
            stateMachineArn=machine, name=execution_input["task_id"], input=json.dumps(execution_input)
        )["executionArn"]
    )


def _wait(aws: dict[str, Any], arn: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    sfn = aws["sfn"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution did not finish"
        time.sleep(0.2)
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return described, history


def _lambda_payloads(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    scheduled = [e["taskScheduledEventDetails"] for e in history if e["type"] == "TaskScheduled"]
    return [json.loads(d["parameters"])["Payload"] for d in scheduled if d["resourceType"] == "lambda"]


def _batch_commands(history: list[dict[str, Any]]) -> list[list[str]]:
    scheduled = [e["taskScheduledEventDetails"] for e in history if e["type"] == "TaskScheduled"]
    return [
        json.loads(d["parameters"])["ContainerOverrides"]["Command"]
        for d in scheduled
        if d["resourceType"] == "batch"
    ]


def test_all_requested_features_run_on_their_queues_and_the_task_finishes(aws: dict[str, Any]) -> None:
    # Given an uploaded asset (no source_url) asking for every feature
    features = ["proxy", "preview", "transcription", "embedding"]

    # When the pipeline runs
    described, history = _run(
        aws, {"tenant_id": "ten_1", "task_id": "tsk_ok", "asset_id": "ast_1", "features": features}
    )

    # Then it succeeds, ran probe and every feature step once, but not fetch
    assert described["status"] == "SUCCEEDED"
    commands = _batch_commands(history)
    assert sorted(c[5] for c in commands) == ["embedding", "probe", "render", "transcription"]
    assert all(c[:4] == ["--tenant-id", "ten_1", "--task-id", "tsk_ok"] for c in commands)
    # and embedding ran after both transcription and render, which it joins
    steps_in_order = [c[5] for c in commands]
    assert steps_in_order.index("transcription") < steps_in_order.index("embedding")
    assert steps_in_order.index("render") < steps_in_order.index("embedding")
    # and GPU steps went to the GPU queue
    jobs = aws["batch"].list_jobs(jobQueue=aws["queues"]["gpu"])["jobSummaryList"]
    assert {j["jobName"] for j in jobs} >= {"transcription-tsk_ok", "embedding-tsk_ok"}
    # and the events Lambda heard only task_finished, with the machine it ran on (a re-index's next
    # tasks start there)
    assert _lambda_payloads(history) == [
        {
            "action": "task_finished",
            "tenant_id": "ten_1",
            "task_id": "tsk_ok",
            "state_machine_arn": aws["machine"],
        }
    ]
    output = json.loads(described["output"])
    assert output["task_id"] == "tsk_ok"
    statuses = {step: o["status"] for step, o in output["outcome"].items()}
    assert statuses == dict.fromkeys(["render", "transcription", "embedding"], "completed")


def test_fetch_runs_only_with_a_source_url_and_unrequested_features_are_skipped(aws: dict[str, Any]) -> None:
    # Given a URL asset asking for the proxy alone
    # When the pipeline runs
    described, history = _run(
        aws,
        {
            "tenant_id": "ten_1",
            "task_id": "tsk_url",
            "asset_id": "ast_2",
            "features": ["proxy"],
            "source_url": "https://x/y.mp4",
        },
    )

    # Then fetch, probe and render ran, nothing else
    assert described["status"] == "SUCCEEDED"
    assert [c[5] for c in _batch_commands(history)] == ["fetch", "probe", "render"]
    # and every other step's outcome says it was skipped
    output = json.loads(described["output"])
    statuses = {step: o["status"] for step, o in output["outcome"].items()}
    assert statuses == {
        "render": "completed",
        "transcription": "skipped",
        "embedding": "skipped",
    }


def test_a_failed_feature_job_reports_that_feature_alone_and_the_others_complete(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given transcription jobs that fail on Batch every time
    monkeypatch.setattr(BatchSimpleBackend, "_mark_job_as_finished", _fail_step("transcription"))

    # When the pipeline runs for every feature
    described, history = _run(
        aws,
        {
            "tenant_id": "ten_1",
            "task_id": "tsk_bad",
            "asset_id": "ast_3",
            "features": ["proxy", "preview", "transcription", "embedding"],
        },
    )

    # Then the execution still succeeds and the task finishes
    assert described["status"] == "SUCCEEDED"
    commands = [c[5] for c in _batch_commands(history)]
    # transcription was tried max_attempts times; embedding, which needs it, never started
    assert commands.count("transcription") == 3
    assert "embedding" not in commands
    assert commands.count("render") == 1
    # and only the transcription chain was reported failed, then the task finished
    payloads = _lambda_payloads(history)
    failed = {p["feature"]: p["error"] for p in payloads if p["action"] == "feature_failed"}
    assert set(failed) == {"transcription", "embedding"}
    assert failed["transcription"]["Error"] == "States.TaskFailed"
    assert failed["embedding"] == {
        "Error": "UpstreamFailed",
        "Cause": "embedding needs transcription and render: one failed",
    }
    assert payloads[-1] == {
        "action": "task_finished",
        "tenant_id": "ten_1",
        "task_id": "tsk_bad",
        "state_machine_arn": aws["machine"],
    }
    output = json.loads(described["output"])
    statuses = {step: o["status"] for step, o in output["outcome"].items()}
    assert statuses == {
        "render": "completed",
        "transcription": "failed",
        "embedding": "failed",
    }


def test_a_failed_probe_marks_every_requested_feature_failed_and_finishes(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given probe jobs that fail
    monkeypatch.setattr(BatchSimpleBackend, "_mark_job_as_finished", _fail_step("probe"))

    # When the pipeline runs for two features
    described, history = _run(
        aws,
        {"tenant_id": "ten_1", "task_id": "tsk_probe", "asset_id": "ast_4", "features": ["proxy", "preview"]},
    )

    # Then no feature step ran, both features were reported failed, the task finished, the execution failed
    assert [c[5] for c in _batch_commands(history)] == ["probe", "probe"]
    payloads = _lambda_payloads(history)
    assert sorted(p["feature"] for p in payloads if p["action"] == "feature_failed") == ["preview", "proxy"]
    assert payloads[-1] == {
        "action": "task_finished",
        "tenant_id": "ten_1",
        "task_id": "tsk_probe",
        "state_machine_arn": aws["machine"],
    }
    assert described["status"] == "FAILED"
    assert described["error"] == "SharedStepFailed"
    assert described["cause"] == "task tsk_probe failed: States.TaskFailed"


# ---- GPU steps in batches ------------------------------------------------------------------------


class GpuFleet:
    """The batcher and the GPU batch jobs, over moto: receives the work queue's messages, cuts them
    into batches (gpu_batches.plan_batches), submits each (manifest to S3, a job to moto's Batch),
    then runs each job as the ml image would: the manifest read back, every item through
    `run_item`, each token settled by the real TokenReporter. `die` names task ids whose batch job
    dies as a whole (its FAILED event then fails every token of the batch, once per task)."""

    def __init__(self, aws: dict[str, Any], run_item: Any, die: set[str] | None = None) -> None:
        self.aws = aws
        self.run_item = run_item
        self.die = set(die or ())
        self.batches: list[list[gpu_batches.GpuWork]] = []
        self.jobs: list[str] = []
        self.submitted: list[dict[str, Any]] = []  # SubmitJob's parameters (moto keeps no share)
        aws["batch"].meta.events.register(
            "provide-client-params.batch.SubmitJob", lambda params, **_: self.submitted.append(dict(params))
        )
        target = gpu_batches.BatchTarget(aws["queues"]["gpu"], aws["job_definitions"]["ml"], 3600)
        self.reporter = gpu_batches.TokenReporter(aws["sfn"])
        self.batcher = gpu_batches.GpuBatcher(aws["s3"], aws["batch"], "pipeline-media", target, aws["sfn"])

    def pump_until_done(self, arns: list[str]) -> None:
        sfn, sqs = self.aws["sfn"], self.aws["sqs"]
        deadline = time.monotonic() + 90
        while any(sfn.describe_execution(executionArn=a)["status"] == "RUNNING" for a in arns):
            assert time.monotonic() < deadline, "executions did not finish"
            messages = self._gather(sqs)
            work = [gpu_batches.parse_work(m["Body"], STEP_BY_NAME) for m in messages]
            for batch in gpu_batches.plan_batches([w for w in work if w is not None], 2):
                self.batches.append(batch)
                job_id = self.batcher.submit(batch)
                self.jobs.append(job_id)
                self._run_job(job_id)
            for m in messages:
                sqs.delete_message(QueueUrl=self.aws["work_queue"], ReceiptHandle=m["ReceiptHandle"])

    def _gather(self, sqs: Any, window_s: float = 1.5) -> list[dict[str, Any]]:
        """What the event source mapping hands the batcher: the messages of one batching window
        from the first that arrives."""
        messages: list[dict[str, Any]] = []
        first = None
        while first is None or time.monotonic() - first < window_s:
            got = sqs.receive_message(
                QueueUrl=self.aws["work_queue"], MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if got and first is None:
                first = time.monotonic()
            messages += got
            if first is None:
                break
        return messages

    def _run_job(self, job_id: str) -> None:
        job = self.aws["batch"].describe_jobs(jobs=[job_id])["jobs"][0]
        key = gpu_batches.manifest_key_of(job["container"]["command"])
        assert key is not None
        items = gpu_batches.load_manifest(self.aws["s3"], "pipeline-media", key, STEP_BY_NAME)
        dying = {w.task_id for w in items} & self.die
        if dying:
            self.die -= dying
            gpu_batches.fail_batch(items, self.reporter, "Host EC2 (instance i-0) terminated.")
            return
        gpu_batches.run_batch(items, self.run_item, self.reporter)


def _features_input(tenant: str, task: str) -> dict[str, Any]:
    features = ["proxy", "preview", "transcription", "embedding"]
    return {"tenant_id": tenant, "task_id": task, "asset_id": f"ast_{task}", "features": features}


def test_batched_gpu_steps_run_in_jobs_of_one_tenant_and_every_task_finishes(aws: dict[str, Any]) -> None:
    # Given three uploads of two tenants, on the machine whose GPU steps are batched (2 per job)
    ran: list[tuple[str, str]] = []
    fleet = GpuFleet(aws, lambda w: ran.append((w.task_id, w.step)) or True)
    inputs = [
        _features_input("ten_a", "tsk_b1"),
        _features_input("ten_a", "tsk_b2"),
        _features_input("ten_b", "tsk_b3"),
    ]
    arns = [_start(aws, i, aws["batched_machine"]) for i in inputs]

    # When the batcher and the GPU jobs work the queue
    fleet.pump_until_done(arns)

    # Then every execution succeeded with every step completed
    for arn in arns:
        described, history = _wait(aws, arn)
        assert described["status"] == "SUCCEEDED"
        statuses = {step: o["status"] for step, o in json.loads(described["output"])["outcome"].items()}
        assert statuses == dict.fromkeys(["render", "transcription", "embedding"], "completed")
        # and only the CPU steps were jobs of their own
        assert sorted(c[5] for c in _batch_commands(history)) == ["probe", "render"]
        assert [p["action"] for p in _lambda_payloads(history)] == ["task_finished"]
    # and each task's transcription ran before its embedding, each once
    assert sorted(ran) == sorted(
        (t, s) for t in ("tsk_b1", "tsk_b2", "tsk_b3") for s in ("transcription", "embedding")
    )
    for task in ("tsk_b1", "tsk_b2", "tsk_b3"):
        assert ran.index((task, "transcription")) < ran.index((task, "embedding"))
    # and every batch held one tenant's work, at most 2 items, in a job shared by that tenant
    assert all(len({w.tenant_id for w in b}) == 1 and len(b) <= 2 for b in fleet.batches)
    mine = [
        p
        for p in fleet.submitted
        if p["jobQueue"] == aws["queues"]["gpu"] and p["jobName"].startswith("gpu-")
    ]
    assert [p["shareIdentifier"] for p in mine] == [b[0].tenant_id for b in fleet.batches]
    assert all(
        p["timeout"]["attemptDurationSeconds"] == 3600 * len(b)
        for p, b in zip(mine, fleet.batches, strict=True)
    )
    assert len(fleet.jobs) < len(ran)  # fewer jobs than GPU steps: some batch held two


def test_a_crashing_item_fails_alone_and_its_task_reports_that_feature(aws: dict[str, Any]) -> None:
    # Given a transcription that crashes on every attempt, for one of two tasks of a tenant
    def run_item(work: gpu_batches.GpuWork) -> bool:
        if work.task_id == "tsk_c1" and work.step == "transcription":
            raise RuntimeError("CUDA error: an illegal memory access")
        return True

    fleet = GpuFleet(aws, run_item)
    arns = [_start(aws, _features_input("ten_c", t), aws["batched_machine"]) for t in ("tsk_c1", "tsk_c2")]

    # When the fleet works the queue
    fleet.pump_until_done(arns)

    # Then the crashing task was tried max_attempts times, its transcription and embedding reported failed,
    described, history = _wait(aws, arns[0])
    assert described["status"] == "SUCCEEDED"
    tries = [w for b in fleet.batches for w in b if w.task_id == "tsk_c1" and w.step == "transcription"]
    assert len(tries) == STEP_BY_NAME["transcription"].max_attempts
    failed = {p["feature"]: p["error"] for p in _lambda_payloads(history) if p["action"] == "feature_failed"}
    assert set(failed) == {"transcription", "embedding"}
    assert failed["transcription"]["Error"] == gpu_batches.ERROR_CRASHED
    # (the cause the item's failure carries is checked in tests/unit/test_gpu_batches.py: moto
    # passes only the error name on to the Catch)
    # and the other task, batched beside it, completed everything
    described, _ = _wait(aws, arns[1])
    statuses = {step: o["status"] for step, o in json.loads(described["output"])["outcome"].items()}
    assert statuses == dict.fromkeys(["render", "transcription", "embedding"], "completed")


def test_a_batch_job_that_dies_fails_its_tokens_and_the_items_run_again_in_a_later_batch(
    aws: dict[str, Any],
) -> None:
    # Given a GPU job that dies as a whole (a Spot reclaim) the first time it holds task tsk_d1
    ran: list[tuple[str, str]] = []
    fleet = GpuFleet(aws, lambda w: ran.append((w.task_id, w.step)) or True, die={"tsk_d1"})
    arns = [_start(aws, _features_input("ten_d", t), aws["batched_machine"]) for t in ("tsk_d1", "tsk_d2")]

    # When the fleet works the queue
    fleet.pump_until_done(arns)

    # Then both tasks completed: the dead batch's items were retried into later batches
    for arn in arns:
        described, history = _wait(aws, arn)
        statuses = {step: o["status"] for step, o in json.loads(described["output"])["outcome"].items()}
        assert statuses == dict.fromkeys(["render", "transcription", "embedding"], "completed")
        assert [p["action"] for p in _lambda_payloads(history)] == ["task_finished"]
    first = next(b for b in fleet.batches if any(w.task_id == "tsk_d1" for w in b))
    assert all((w.task_id, w.step) in ran for w in first)  # each item of the dead batch ran later
    assert len(fleet.batches) > len({(t, s) for t, s in ran}) / 2  # at least one batch more
