"""The reconciler's view of AWS (ports/executions.py): Step Functions executions of the pipeline
state machine (named by task id, input holding the tenant), and AWS Batch jobs waiting in
RUNNABLE on the pipeline's queues."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from mediaindex.adapters.aws.stepfunctions import execution_arn
from mediaindex.ports.executions import Execution, Executions, ExecutionState, WaitingJob, WaitingJobs

log = logging.getLogger(__name__)

_ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
_MAX_DETAIL = 300


def _state(status: str) -> ExecutionState:
    if status == "RUNNING":
        return ExecutionState.RUNNING
    return ExecutionState.SUCCEEDED if status == "SUCCEEDED" else ExecutionState.FAILED


class StepFunctionsExecutions(Executions):
    """`horizon_s`: the longest an execution can run; ended executions are looked for among those
    started up to that long before `since` (the listing is newest first)."""

    def __init__(self, state_machine_arn: str, client: Any, *, horizon_s: int) -> None:
        self._arn = state_machine_arn
        self._sfn = client
        self._horizon = timedelta(seconds=horizon_s)

    def _listed(self, status: str, started_after: datetime | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"stateMachineArn": self._arn, "statusFilter": status, "maxResults": 100}
        while True:
            resp = self._sfn.list_executions(**kwargs)
            for e in resp.get("executions", []):
                if started_after is not None and e["startDate"] < started_after:
                    return out  # newest first: the rest started earlier still
                out.append(e)
            if not resp.get("nextToken"):
                return out
            kwargs["nextToken"] = resp["nextToken"]

    def _execution(self, listed: dict[str, Any]) -> Execution | None:
        described = self._sfn.describe_execution(executionArn=listed["executionArn"])
        try:
            tenant_id = str(json.loads(described.get("input") or "{}")["tenant_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("execution without a tenant in its input", extra={"name": listed["name"]})
            return None
        detail = " ".join(str(described.get(k) or "") for k in ("error", "cause")).strip()
        status = str(described.get("status") or listed["status"])
        return Execution(
            tenant_id=tenant_id,
            task_id=str(listed["name"]),
            state=_state(status),
            started_at=listed["startDate"],
            detail=(f"{status}: {detail}" if detail else status)[:_MAX_DETAIL],
        )

    def ended_since(self, since: datetime) -> list[Execution]:
        found = []
        for status in _ENDED:
            for listed in self._listed(status, since - self._horizon):
                stopped = listed.get("stopDate")
                if stopped is not None and stopped >= since:
                    execution = self._execution(listed)
                    if execution is not None:
                        found.append(execution)
        return found

    def running_started_before(self, before: datetime) -> list[Execution]:
        return [
            e
            for listed in self._listed("RUNNING", None)
            if listed["startDate"] < before and (e := self._execution(listed)) is not None
        ]

    def stop(self, execution: Execution, cause: str) -> None:
        try:
            self._sfn.stop_execution(
                executionArn=execution_arn(self._arn, execution.task_id), error="Reconciled", cause=cause
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
                raise


class BatchWaitingJobs(WaitingJobs):
    def __init__(self, queue_arns: list[str], client: Any) -> None:
        self._queues = queue_arns
        self._batch = client

    def waiting_since_before(self, before: datetime) -> list[WaitingJob]:
        found = []
        for queue in self._queues:
            kwargs: dict[str, Any] = {"jobQueue": queue, "jobStatus": "RUNNABLE"}
            while True:
                resp = self._batch.list_jobs(**kwargs)
                for j in resp.get("jobSummaryList", []):
                    queued_at = datetime.fromtimestamp(int(j["createdAt"]) / 1000, before.tzinfo)
                    if queued_at < before:
                        found.append(WaitingJob(job_id=j["jobId"], name=j["jobName"], queued_at=queued_at))
                if not resp.get("nextToken"):
                    break
                kwargs["nextToken"] = resp["nextToken"]
        return found

    def release(self, job: WaitingJob, reason: str) -> None:
        self._batch.terminate_job(jobId=job.job_id, reason=reason[:250])
