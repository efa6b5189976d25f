"""The reconciler on each runtime: every stuck kind is found and settled per the policy, a settled
task is left alone, and a sweep reports what it did. Local: the worker pool's job plans (the
process "dies" between ending a plan's jobs and settling its task). AWS: Step Functions under moto
(an execution aborted without a callback, one running too long) and Batch (RUNNABLE too long)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from starlette.testclient import TestClient

from mediaindex.adapters.aws.clients import make_client
from mediaindex.adapters.aws.executions import BatchWaitingJobs, StepFunctionsExecutions
from mediaindex.adapters.local.plan_executions import PlanExecutions
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import DATABASE_FILE, build_local
from mediaindex.bootstrap.reconcile import build_aws_reconciler, build_local_reconciler
from mediaindex.domain.models import Task, TaskState
from mediaindex.ports.executions import Execution, Executions, ExecutionState
from mediaindex.services.reconcile import Reconciler, ReconcileSettings
from tests.apiclient import Api
from tests.functional.conftest import BASE_URL, make_settings

MP3 = b"ID3" + b"\0" * 61
LATER = datetime.now(UTC) + timedelta(days=30)
POLICY = ReconcileSettings(max_execution_s=3600)


def _upload(runtime: Runtime) -> tuple[str, str]:
    """An uploaded asset with its ingest task started: (tenant id, task id)."""
    tenant, _, raw = runtime.services.keys.create_key("acme")
    with TestClient(build_app(runtime, close_on_shutdown=False), base_url=BASE_URL) as client:
        api = Api(client, raw)
        asset = api.upload(api.index("clips")["id"], "a.mp3", MP3)
    (task,) = runtime.stores.tasks.list(tenant.id, asset_id=asset["id"], limit=5, cursor=None).data
    assert task.state == TaskState.QUEUED
    return tenant.id, task.id


def _task(runtime: Runtime, tenant_id: str, task_id: str) -> Task:
    task = runtime.stores.tasks.get(tenant_id, task_id)
    assert task is not None
    return task


def _errors(task: Task) -> set[str | None]:
    return {fs.error for fs in task.features.values()}


# ---- local ------------------------------------------------------------------------------------------
@pytest.fixture
def local(data_dir: Path) -> Iterator[tuple[Runtime, Database]]:
    runtime = build_local(make_settings(data_dir))
    db = Database(data_dir / DATABASE_FILE)
    yield runtime, db
    db.close()
    runtime.close()


def _end_every_job(runtime: Runtime, *, fail: bool) -> None:
    """The pool's queue side only: jobs end, the runner is never told (the process died)."""
    assert runtime.executor is not None
    queue = runtime.executor.queue
    while (job := queue.claim()) is not None:
        if fail:
            queue.fail(job, "boom", stop_plan=True)
        else:
            queue.complete(job)


def test_local_plan_that_ended_without_settling_its_task_is_finished(local: tuple[Runtime, Database]) -> None:
    runtime, db = local
    tenant_id, task_id = _upload(runtime)
    _end_every_job(runtime, fail=False)
    reconciler = build_local_reconciler(runtime, db, POLICY)

    report = reconciler.sweep()

    assert report.counts == {"finished": 1, "failed": 0, "stopped": 0, "released": 0}
    assert report.tasks == [task_id]
    assert _task(runtime, tenant_id, task_id).state not in (TaskState.QUEUED, TaskState.PROCESSING)
    # A settled task is left alone: the next sweep does nothing
    assert reconciler.sweep().counts == {"finished": 0, "failed": 0, "stopped": 0, "released": 0}


def test_local_plan_that_failed_without_settling_its_task_fails_it(local: tuple[Runtime, Database]) -> None:
    runtime, db = local
    tenant_id, task_id = _upload(runtime)
    _end_every_job(runtime, fail=True)

    report = build_local_reconciler(runtime, db, POLICY).sweep()

    assert report.counts["failed"] == 1
    task = _task(runtime, tenant_id, task_id)
    assert task.state == TaskState.FAILED and _errors(task) == {"execution_failed"}


def test_local_plan_running_too_long_is_stopped_and_its_task_failed(local: tuple[Runtime, Database]) -> None:
    runtime, db = local
    tenant_id, task_id = _upload(runtime)
    assert runtime.runner is not None and runtime.executor is not None
    executions = PlanExecutions(db, runtime.executor.queue)
    reconciler = Reconciler(
        runtime.stores.tasks, runtime.runner, executions, policy=POLICY, clock=lambda: LATER
    )

    report = reconciler.sweep()

    assert report.counts == {"finished": 0, "failed": 0, "stopped": 1, "released": 0}
    task = _task(runtime, tenant_id, task_id)
    assert task.state == TaskState.FAILED and _errors(task) == {"execution_timeout"}
    assert runtime.executor.queue.claim() is None  # its jobs were cancelled
    assert executions.running_started_before(LATER) == []


def test_local_fresh_plan_is_left_running(local: tuple[Runtime, Database]) -> None:
    runtime, db = local
    tenant_id, task_id = _upload(runtime)

    assert build_local_reconciler(runtime, db, POLICY).sweep().tasks == []
    assert _task(runtime, tenant_id, task_id).state == TaskState.QUEUED


# ---- AWS ---------------------------------------------------------------------------------------------
@pytest.fixture
def aws(data_dir: Path) -> Iterator[Runtime]:
    from tests.aws_runtime import build_aws_test_services

    runtime = build_aws_test_services(data_dir)
    yield runtime
    runtime.close()


pytest_aws = pytest.mark.aws


@pytest_aws
def test_aws_execution_aborted_without_callback_fails_its_task(aws: Runtime) -> None:
    from tests.aws_runtime import shared_clients

    tenant_id, task_id = _upload(aws)
    sfn = shared_clients().get("stepfunctions")
    arn = aws.settings.state_machine_arn
    assert arn is not None
    execution_arn = arn.replace(":stateMachine:", ":execution:") + ":" + task_id
    sfn.stop_execution(executionArn=execution_arn, error="Lost", cause="the events Lambda never ran")

    report = build_aws_reconciler(aws.settings, clients=shared_clients(), policy=POLICY).sweep()

    assert report.counts == {"finished": 0, "failed": 1, "stopped": 0, "released": 0}
    task = _task(aws, tenant_id, task_id)
    assert task.state == TaskState.FAILED and _errors(task) == {"execution_failed"}


@pytest_aws
def test_aws_execution_running_too_long_is_stopped(aws: Runtime) -> None:
    from tests.aws_runtime import shared_clients

    tenant_id, task_id = _upload(aws)
    reconciler = build_aws_reconciler(aws.settings, clients=shared_clients(), policy=POLICY)
    assert reconciler.sweep().tasks == []  # young: left alone
    sfn = shared_clients().get("stepfunctions")
    assert aws.settings.state_machine_arn is not None
    executions = StepFunctionsExecutions(aws.settings.state_machine_arn, sfn, horizon_s=3600)
    (running,) = executions.running_started_before(LATER)
    assert (running.tenant_id, running.task_id, running.state) == (tenant_id, task_id, ExecutionState.RUNNING)
    assert aws.runner is None
    from mediaindex.bootstrap.aws import build_aws_runner

    late = Reconciler(
        aws.stores.tasks,
        build_aws_runner(aws.settings, clients=shared_clients()),
        executions,
        policy=POLICY,
        clock=lambda: LATER,
    )

    report = late.sweep()

    assert report.counts["stopped"] == 1
    status = sfn.describe_execution(executionArn=running_arn(aws, task_id))["status"]
    assert status == "ABORTED"
    task = _task(aws, tenant_id, task_id)
    assert task.state == TaskState.FAILED and _errors(task) == {"execution_timeout"}
    # The aborted execution is then seen ended, with its task settled already: nothing more
    assert late.sweep().counts == {"finished": 0, "failed": 0, "stopped": 0, "released": 0}


def running_arn(runtime: Runtime, task_id: str) -> str:
    arn = runtime.settings.state_machine_arn
    assert arn is not None
    return arn.replace(":stateMachine:", ":execution:") + ":" + task_id


def test_batch_jobs_runnable_too_long_are_terminated() -> None:
    # Stubbed (moto's Batch would run containers): the calls and their arguments are checked.
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    batch = make_client("batch", region="us-east-1", session=session)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    old, young = now - timedelta(seconds=1801), now - timedelta(seconds=60)
    queue = "arn:aws:batch:us-east-1:123456789012:job-queue/mediaindex-gpu"
    listed: dict[str, Any] = {
        "jobSummaryList": [
            {"jobId": "j-old", "jobName": "tsk_1-transcription", "createdAt": int(old.timestamp() * 1000)},
            {"jobId": "j-new", "jobName": "tsk_2-transcription", "createdAt": int(young.timestamp() * 1000)},
        ]
    }
    with Stubber(batch) as stub:
        stub.add_response("list_jobs", listed, {"jobQueue": queue, "jobStatus": "RUNNABLE"})
        stub.add_response(
            "terminate_job", {}, {"jobId": "j-old", "reason": "waited over 1800 s for compute capacity"}
        )
        waiting = BatchWaitingJobs([queue], batch)

        class NoExecutions(Executions):
            """Only the Batch side is under test here."""

            def stop(self, execution: Execution, cause: str) -> None:
                raise AssertionError("nothing to stop")

            def ended_since(self, since: datetime) -> list[Execution]:
                return []

            def running_started_before(self, before: datetime) -> list[Execution]:
                return []

        report = Reconciler(
            tasks=None,  # type: ignore[arg-type]
            runner=None,  # type: ignore[arg-type]
            executions=NoExecutions(),
            waiting=waiting,
            clock=lambda: now,
        ).sweep()
        stub.assert_no_pending_responses()

    assert report.counts == {"finished": 0, "failed": 0, "stopped": 0, "released": 1}
    assert report.tasks == ["tsk_1-transcription"]


@pytest_aws
def test_the_lambda_publishes_what_a_sweep_did_as_metrics(
    aws: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    from functions.reconcile import handler as reconcile_handler
    from tests.aws_runtime import shared_clients
    from tests.functional.test_lambda_handlers import CTX

    _, task_id = _upload(aws)
    sfn = shared_clients().get("stepfunctions")
    sfn.stop_execution(executionArn=running_arn(aws, task_id), error="Lost", cause="no callback")
    reconcile_handler.configure(build_aws_reconciler(aws.settings, clients=shared_clients(), policy=POLICY))
    capsys.readouterr()

    result = reconcile_handler.handler({"source": "aws.events"}, CTX)

    assert result == {"counts": {"finished": 0, "failed": 1, "stopped": 0, "released": 0}, "tasks": [task_id]}
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (metrics,) = emf
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "mediaindex"
    assert metrics["service"] == "reconcile"
    assert {k: v for k, v in metrics.items() if k.startswith("Reconciled_")} == {
        "Reconciled_finished": [0.0],
        "Reconciled_failed": [1.0],
        "Reconciled_stopped": [0.0],
        "Reconciled_released": [0.0],
    }
