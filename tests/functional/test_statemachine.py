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

from mediaindex.adapters.aws.state_machine import definition
from mediaindex.pipeline.spec import STEPS

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
        machine = sfn.create_state_machine(
            name="pipeline",
            roleArn=role,
            definition=json.dumps(
                definition(
                    STEPS,
                    cpu_queue_arn=queues["cpu"],
                    gpu_queue_arn=queues["gpu"],
                    job_definitions=job_definitions,
                    events_function_arn=events_fn,
                    retry_interval_s=1,
                )
            ),
        )["stateMachineArn"]
        yield {"sfn": sfn, "batch": batch, "machine": machine, "queues": queues}


def _run(aws: dict[str, Any], execution_input: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    sfn = aws["sfn"]
    arn = sfn.start_execution(
        stateMachineArn=aws["machine"], name=execution_input["task_id"], input=json.dumps(execution_input)
    )["executionArn"]
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
