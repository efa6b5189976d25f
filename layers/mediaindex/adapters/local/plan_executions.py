"""The reconciler's view of the local executor (ports/executions.py): a task's job plan is its
execution. A plan is running until every job in it ended (`finished`); it failed when one of its
jobs failed for good. Expired leases are the worker pool's own reaper's (WorkerPool.reap); what
is left here is a plan that ended without its task being settled (the process died between the
two) and a plan that never ends."""

from __future__ import annotations

from datetime import UTC, datetime

from mediaindex.adapters.local.job_queue import JobQueue
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.ports.executions import Execution, Executions, ExecutionState

# Plans that ended at or after :ended_since (when their last job did), and plans still running
# that started before :started_before; each method passes a bound that excludes the other kind.
_PLANS = (
    "SELECT p.tenant_id, p.task_id, p.created_at,"
    " (SELECT group_concat(step || ': ' || coalesce(last_error, 'failed'), '; ') FROM jobs j"
    "  WHERE j.task_id = p.task_id AND j.state = 'failed')"
    " FROM task_plans p"
    " WHERE (p.finished = 1"
    "  AND (SELECT max(updated_at) FROM jobs j WHERE j.task_id = p.task_id) >= :ended_since)"
    " OR (p.finished = 0 AND p.created_at < :started_before)"
)
_NEVER = 1e308  # a time no plan reaches


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def _execution(row: tuple[object, ...], running: bool) -> Execution:
    failed = str(row[3] or "")
    if running:
        state = ExecutionState.RUNNING
    else:
        state = ExecutionState.FAILED if failed else ExecutionState.SUCCEEDED
    return Execution(
        tenant_id=str(row[0] or ""),
        task_id=str(row[1]),
        state=state,
        started_at=_at(float(str(row[2]))),
        detail=failed[:300],
    )


class PlanExecutions(Executions):
    def __init__(self, db: Database, queue: JobQueue) -> None:
        self._db = db
        self._queue = queue

    def _plans(self, ended_since: float, started_before: float) -> list[tuple[object, ...]]:
        bounds = {"ended_since": ended_since, "started_before": started_before}
        return list(self._db.connection().execute(_PLANS, bounds).fetchall())

    def ended_since(self, since: datetime) -> list[Execution]:
        return [_execution(r, False) for r in self._plans(since.timestamp(), -_NEVER)]

    def running_started_before(self, before: datetime) -> list[Execution]:
        return [_execution(r, True) for r in self._plans(_NEVER, before.timestamp())]

    def stop(self, execution: Execution, cause: str) -> None:
        self._queue.cancel_task(execution.task_id)
