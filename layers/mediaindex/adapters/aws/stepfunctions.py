"""Orchestrator on AWS Step Functions: one execution of the pipeline state machine per task.

The execution is named after the task id. Step Functions keeps execution names unique per state
machine (90 days for standard workflows), so a second start of the same task - a duplicate S3 event,
a retried Lambda - is refused with ExecutionAlreadyExists and the task runs exactly once.
Input, as adapters.aws.state_machine expects: {"tenant_id", "task_id", "asset_id", "features",
"source_url"?}."""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mediaindex.domain.errors import UnavailableError
from mediaindex.domain.models import ALL_FEATURES, Asset, Task, TaskKind
from mediaindex.ports.orchestrator import Orchestrator

log = logging.getLogger(__name__)

# Step Functions' cause field holds at most 32768 characters.
_MAX_CAUSE = 32_768


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:aws:states:R:A:stateMachine:M -> arn:aws:states:R:A:execution:M:name."""
    head, sep, machine = state_machine_arn.rpartition(":stateMachine:")
    if not sep:
        raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
    return f"{head}:execution:{machine}:{name}"


class StepFunctionsOrchestrator(Orchestrator):
    def __init__(self, state_machine_arn: str, client: Any) -> None:
        execution_arn(state_machine_arn, "check")  # fail fast on a malformed ARN
        self._arn = state_machine_arn
        self._sfn = client

    def __repr__(self) -> str:
        return f"StepFunctionsOrchestrator({self._arn!r})"

    def execution_input(self, task: Task, asset: Asset) -> dict[str, Any]:
        order = {f: i for i, f in enumerate(ALL_FEATURES)}
        body: dict[str, Any] = {
            "tenant_id": task.tenant_id,
            "task_id": task.id,
            "asset_id": task.asset_id,
            "features": [str(f) for f in sorted(task.features, key=lambda f: order.get(f, len(order)))],
        }
        # A re-run reads what the ingest stored; only an ingest of an asset_url fetches.
        if task.kind == TaskKind.INGEST and asset.source_url:
            body["source_url"] = asset.source_url
        return body

    def start(self, task: Task, asset: Asset) -> None:
        try:
            resp = self._sfn.start_execution(
                stateMachineArn=self._arn, name=task.id, input=json.dumps(self.execution_input(task, asset))
            )
        except ClientError as e:
            if _code(e) == "ExecutionAlreadyExists":
                log.info("execution already started", extra={"task_id": task.id})
                return
            raise UnavailableError(f"could not start the pipeline: {_code(e) or 'error'}") from e
        except BotoCoreError as e:
            raise UnavailableError(f"could not start the pipeline: {type(e).__name__}") from e
        log.info("execution started", extra={"task_id": task.id, "execution_arn": resp.get("executionArn")})

    def cancel(self, task: Task) -> None:
        try:
            self._sfn.stop_execution(
                executionArn=execution_arn(self._arn, task.id),
                error="TaskCancelled",
                cause=f"task {task.id} was cancelled"[:_MAX_CAUSE],
            )
        except ClientError as e:
            # Never started (or long gone): nothing is running, which is what cancel wants.
            if _code(e) == "ExecutionDoesNotExist":
                return
            raise UnavailableError(f"could not stop the pipeline: {_code(e) or 'error'}") from e
        except BotoCoreError as e:
            raise UnavailableError(f"could not stop the pipeline: {type(e).__name__}") from e
