"""The reconciler: finds tasks whose executor ended, or is stuck, without settling them, and
settles them per a fixed policy (docs/tenants.md, "Reconciliation"):

- an execution that succeeded while its task is still active lost its last callback: the task is
  finished now (`finished`), as the callback would have;
- an execution that failed, timed out or was aborted while its task is still active (the failure
  never reached the task): the task's unfinished features fail with `execution_failed`, and the
  task is finished (`failed`);
- an execution still running past `max_execution_s` (longer than every step's timeouts and retries
  allow) is stopped, and its task failed the same way, code `execution_timeout` (`stopped`);
- a compute job waiting for capacity past `max_waiting_s` (AWS Batch RUNNABLE) is ended; the
  executor then fails its step through its normal error path (`released`).

Each action is logged; `sweep` returns the counts for the caller to publish as metrics. Every
action is idempotent, so an overlapping or repeated sweep does no harm."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mediaindex.domain.models import ACTIVE_STATES, ErrorInfo, TaskState, utcnow
from mediaindex.pipeline.spec import STEP_FOR_FEATURE, STEPS
from mediaindex.ports.executions import Execution, Executions, ExecutionState, WaitingJobs
from mediaindex.ports.step_runner import StepRunner
from mediaindex.ports.tasks import TaskRepository

log = logging.getLogger(__name__)

ACTIONS = ("finished", "failed", "stopped", "released")
# Every step run to its timeout on every attempt, one after another: no execution can take longer.
PIPELINE_BOUND_S = sum(s.timeout_s * s.max_attempts for s in STEPS)


class ReconcileSettings(BaseSettings):
    """`MEDIAINDEX_RECONCILE_*`: the policy, how often it runs, and (AWS) the Batch queues."""

    model_config = SettingsConfigDict(env_prefix="MEDIAINDEX_RECONCILE_", extra="ignore")

    interval_s: float = Field(300.0, gt=0)  # local sweeps; on AWS the EventBridge rule's rate
    lookback_s: int = Field(3600, gt=0)  # ended executions checked: several sweep periods back
    max_execution_s: int = Field(PIPELINE_BOUND_S + 3600, gt=0)
    max_waiting_s: int = Field(1800, gt=0)  # a Batch job RUNNABLE this long finds no capacity
    batch_queue_arns: list[str] = Field(default_factory=list)


@dataclass
class ReconcileReport:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    tasks: list[str] = field(default_factory=list)

    def note(self, action: str, what: str) -> None:
        self.counts[action] += 1
        self.tasks.append(what)


class Reconciler:
    def __init__(
        self,
        tasks: TaskRepository,
        runner: StepRunner,
        executions: Executions,
        waiting: WaitingJobs | None = None,
        *,
        policy: ReconcileSettings | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._tasks = tasks
        self._runner = runner
        self._executions = executions
        self._waiting = waiting
        self._policy = policy or ReconcileSettings()
        self._now = clock

    def sweep(self) -> ReconcileReport:
        report = ReconcileReport()
        now = self._now()
        for execution in self._executions.ended_since(now - timedelta(seconds=self._policy.lookback_s)):
            if not self._active(execution):
                continue
            if execution.state is ExecutionState.SUCCEEDED:
                self._runner.finish_task(execution.tenant_id, execution.task_id)
                self._log(report, "finished", execution, "its execution succeeded; the callback was lost")
            else:
                why = execution.detail or "the execution failed"
                self._fail(execution, "execution_failed", f"{why}; the task was never told")
                self._log(report, "failed", execution, why)
        too_old = now - timedelta(seconds=self._policy.max_execution_s)
        for execution in self._executions.running_started_before(too_old):
            cause = f"ran past {self._policy.max_execution_s} s, longer than any pipeline can take"
            self._executions.stop(execution, cause)
            if self._active(execution):
                self._fail(execution, "execution_timeout", f"the execution {cause}")
            self._log(report, "stopped", execution, cause)
        if self._waiting is not None:
            waited = now - timedelta(seconds=self._policy.max_waiting_s)
            for job in self._waiting.waiting_since_before(waited):
                reason = f"waited over {self._policy.max_waiting_s} s for compute capacity"
                self._waiting.release(job, reason)
                report.note("released", job.name)
                log.warning(
                    "reconcile: released a waiting job", extra={"job_id": job.job_id, "job": job.name}
                )
        if any(report.counts.values()):
            log.info("reconcile: swept", extra={"counts": report.counts})
        return report

    def _active(self, execution: Execution) -> bool:
        task = self._tasks.get(execution.tenant_id, execution.task_id)
        return task is not None and task.state in (TaskState.QUEUED, TaskState.PROCESSING)

    def _fail(self, execution: Execution, code: str, message: str) -> None:
        task = self._tasks.get(execution.tenant_id, execution.task_id)
        if task is None:
            return
        error = ErrorInfo(code=code, message=message[:500])
        steps = {STEP_FOR_FEATURE[f].name for f, fs in task.features.items() if fs.state in ACTIVE_STATES}
        for step in sorted(steps):
            self._runner.fail_step(task.tenant_id, task.id, step, error)
        self._runner.finish_task(task.tenant_id, task.id)

    @staticmethod
    def _log(report: ReconcileReport, action: str, execution: Execution, why: str) -> None:
        report.note(action, execution.task_id)
        log.warning(
            f"reconcile: {action} a stuck task",
            extra={"task_id": execution.task_id, "tenant_id": execution.tenant_id, "why": why},
        )
