"""The executor's own record of the tasks it runs, for the reconciler (services/reconcile.py):
Step Functions executions on AWS, the job plans of the local worker pool. An execution is named
by its task; it ends on its own, but the callback that settles the task can be lost."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ExecutionState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # failed, timed out or aborted


@dataclass(frozen=True)
class Execution:
    tenant_id: str
    task_id: str
    state: ExecutionState
    started_at: datetime
    detail: str = ""  # why it failed, when the executor says


@dataclass(frozen=True)
class WaitingJob:
    """A unit of compute still waiting for capacity (an AWS Batch job in RUNNABLE)."""

    job_id: str
    name: str
    queued_at: datetime


class Executions(ABC):
    @abstractmethod
    def ended_since(self, since: datetime) -> list[Execution]:
        """Executions that ended (any way) at or after `since`."""

    @abstractmethod
    def running_started_before(self, before: datetime) -> list[Execution]: ...

    @abstractmethod
    def stop(self, execution: Execution, cause: str) -> None:
        """Stops it; nothing when it has ended meanwhile."""


class WaitingJobs(ABC):
    @abstractmethod
    def waiting_since_before(self, before: datetime) -> list[WaitingJob]: ...

    @abstractmethod
    def release(self, job: WaitingJob, reason: str) -> None:
        """Ends the job (its step then fails through the executor's own error path)."""
