"""The Step Functions orchestrator under moto: one execution per task, named after it; cancel stops it.
(The local orchestrator's behaviour is covered with its worker pool.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from mediaindex.adapters.aws.clients import make_client
from mediaindex.adapters.aws.stepfunctions import StepFunctionsOrchestrator, execution_arn
from mediaindex.domain.errors import UnavailableError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import Asset, Feature, Task, TaskKind
from mediaindex.domain.rules import initial_feature_states

pytestmark = pytest.mark.aws

ROLE = "arn:aws:iam::123456789012:role/pipeline"
WAIT = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}})


@pytest.fixture(scope="session")
def sfn_client() -> Any:
    import boto3

    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return make_client("stepfunctions", region="us-east-1", session=session)


@pytest.fixture
def machine_arn(sfn_client: Any) -> Iterator[str]:
    with mock_aws():
        yield sfn_client.create_state_machine(name="pipeline", definition=WAIT, roleArn=ROLE)[
            "stateMachineArn"
        ]


def a_task(kind: TaskKind = TaskKind.INGEST, features: tuple[Feature, ...] = tuple(Feature)) -> Task:
    return Task(
        id=new_id("tsk"),
        tenant_id=new_id("ten"),
        asset_id=new_id("ast"),
        index_id=new_id("idx"),
        kind=kind,
        features=initial_feature_states(list(features)),
    )


def asset_of(task: Task, source_url: str | None = None) -> Asset:
    return Asset(
        id=task.asset_id,
        tenant_id=task.tenant_id,
        index_id=task.index_id,
        name="a.mp4",
        source_url=source_url,
    )


def runs(client: Any, arn: str) -> list[dict[str, Any]]:
    return list(client.list_executions(stateMachineArn=arn)["executions"])


def test_starting_a_task_twice_runs_one_execution_named_after_it(sfn_client: Any, machine_arn: str) -> None:
    # Given the orchestrator over a state machine
    orchestrator = StepFunctionsOrchestrator(machine_arn, sfn_client)
    task = a_task(features=(Feature.TRANSCRIPTION, Feature.PROXY))
    # When the same task is started twice (a duplicate event, a retried Lambda)
    orchestrator.start(task, asset_of(task))
    orchestrator.start(task, asset_of(task))
    # Then one execution runs, with the input the state machine reads
    [execution] = runs(sfn_client, machine_arn)
    assert execution["name"] == task.id
    assert execution["status"] == "RUNNING"
    described = sfn_client.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {
        "tenant_id": task.tenant_id,
        "task_id": task.id,
        "asset_id": task.asset_id,
        "features": ["proxy", "transcription"],  # pipeline order, whatever order the task holds
    }


def test_a_restart_after_the_execution_ended_is_still_one_execution(
    sfn_client: Any, machine_arn: str
) -> None:
    orchestrator = StepFunctionsOrchestrator(machine_arn, sfn_client)
    task = a_task()
    orchestrator.start(task, asset_of(task))
    orchestrator.cancel(task)
    orchestrator.start(task, asset_of(task))  # ExecutionAlreadyExists for a closed execution: still success
    assert [r["status"] for r in runs(sfn_client, machine_arn)] == ["ABORTED"]


def test_an_url_ingest_carries_its_source_url_and_a_rerun_does_not(sfn_client: Any, machine_arn: str) -> None:
    orchestrator = StepFunctionsOrchestrator(machine_arn, sfn_client)
    url = "https://media.example.com/talk.mp4"
    ingest, rerun = a_task(), a_task(TaskKind.RERUN, (Feature.EMBEDDING,))
    orchestrator.start(ingest, asset_of(ingest, url))
    orchestrator.start(rerun, asset_of(rerun, url))
    inputs = {
        r["name"]: json.loads(sfn_client.describe_execution(executionArn=r["executionArn"])["input"])
        for r in runs(sfn_client, machine_arn)
    }
    assert inputs[ingest.id]["source_url"] == "https://media.example.com/talk.mp4"
    assert "source_url" not in inputs[rerun.id]
    assert inputs[rerun.id]["features"] == ["embedding"]


def test_cancel_stops_the_execution(sfn_client: Any, machine_arn: str) -> None:
    orchestrator = StepFunctionsOrchestrator(machine_arn, sfn_client)
    task, other = a_task(), a_task()
    orchestrator.start(task, asset_of(task))
    orchestrator.start(other, asset_of(other))
    orchestrator.cancel(task)
    status = {r["name"]: r["status"] for r in runs(sfn_client, machine_arn)}
    assert status == {task.id: "ABORTED", other.id: "RUNNING"}
    described = sfn_client.describe_execution(executionArn=execution_arn(machine_arn, task.id))
    assert described["status"] == "ABORTED"  # (moto does not keep the stop's error and cause)


def test_cancelling_a_task_that_never_started_is_a_no_op(sfn_client: Any, machine_arn: str) -> None:
    StepFunctionsOrchestrator(machine_arn, sfn_client).cancel(a_task())
    assert runs(sfn_client, machine_arn) == []


def test_a_missing_state_machine_is_unavailable_not_a_crash(sfn_client: Any, machine_arn: str) -> None:
    missing = machine_arn.replace(":pipeline", ":nope")
    with pytest.raises(UnavailableError) as info:
        task = a_task()
        StepFunctionsOrchestrator(missing, sfn_client).start(task, asset_of(task))
    assert info.value.code == "service_unavailable"
    assert "StateMachineDoesNotExist" in info.value.message


def test_execution_arns_follow_the_state_machine_arn() -> None:
    arn = "arn:aws:states:eu-west-1:111111111111:stateMachine:mediaindex-pipeline"
    assert (
        execution_arn(arn, "tsk_1")
        == "arn:aws:states:eu-west-1:111111111111:execution:mediaindex-pipeline:tsk_1"
    )
    with pytest.raises(ValueError):
        StepFunctionsOrchestrator("arn:aws:lambda:eu-west-1:111111111111:function:x", object())
