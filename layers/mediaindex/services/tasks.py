"""Tasks: re-running features on an asset, reading and cancelling work."""

from __future__ import annotations

import logging

from mediaindex.domain.errors import ConflictError, NotFoundError, ValidationError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import (
    ACTIVE_STATES,
    Asset,
    AssetStatus,
    ErrorInfo,
    Feature,
    Page,
    Task,
    TaskKind,
    TaskState,
)
from mediaindex.domain.rules import RERUNNABLE, initial_feature_states
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.tasks import TaskRepository
from mediaindex.services import progress

log = logging.getLogger(__name__)
NOT_STARTED = "execution_not_started"


def start_or_settle(
    tasks: TaskRepository, orchestrator: Orchestrator, task: Task, asset: Asset, *, asset_error: bool
) -> None:
    """Hands a task the API just saved to the executor. If the executor refuses it (a throttled or
    unreachable Step Functions), the caller answers the error, and nothing would ever start the task:
    its features fail (`execution_not_started`) before the error goes on, so none stays queued and
    busy for good. `asset_error`: the asset fails with it (a new asset that never got going)."""
    try:
        orchestrator.start(task, asset)
    except Exception:
        # The exception's text stays out of the stored error: a cloud error can name an account or ARN.
        error = ErrorInfo(code=NOT_STARTED, message="the pipeline could not be started; ask again")
        try:
            tasks.mutate_with_asset(
                task.tenant_id, task.id, lambda t, a: progress.fail_all(t, a, error, asset_error=asset_error)
            )
        except Exception:  # the store is down too: the refusal is what the caller must hear
            log.exception("settling a task that never started failed", extra={"task_id": task.id})
        raise


class TaskService:
    def __init__(self, assets: AssetRepository, tasks: TaskRepository, orchestrator: Orchestrator) -> None:
        self._assets = assets
        self._tasks = tasks
        self._orchestrator = orchestrator

    def rerun(self, tenant_id: str, asset_id: str, features: list[Feature]) -> Task:
        if not features:
            raise ValidationError("feature_types must name at least one feature", field="feature_types")
        fixed = [f for f in features if f not in RERUNNABLE]
        if fixed:
            raise ValidationError(
                f"{', '.join(fixed)} run at ingest and cannot be re-requested",
                code="feature_not_rerunnable",
                field="feature_types",
            )
        asset = self._assets.get(tenant_id, asset_id)
        if asset is None:
            raise NotFoundError(f"asset {asset_id} not found", code="asset_not_found")
        if asset.status == AssetStatus.AWAITING_UPLOAD:
            raise ConflictError("the asset has not been uploaded yet", code="asset_not_uploaded")
        if asset.error is not None:
            raise ConflictError(
                f"the asset failed ({asset.error.code}); upload it again", code="asset_failed"
            )
        busy = [f for f in features if f in asset.features and asset.features[f].state in ACTIVE_STATES]
        if busy:
            raise ConflictError(f"{', '.join(busy)} is already queued or processing", code="feature_busy")
        task = Task(
            id=new_id("tsk"),
            tenant_id=tenant_id,
            asset_id=asset.id,
            index_id=asset.index_id,
            kind=TaskKind.RERUN,
            features=initial_feature_states(features),
        )
        asset.features = {**asset.features, **task.features}
        asset.status = AssetStatus.PROCESSING
        task, asset = self._tasks.create_with_asset(task, asset)
        start_or_settle(self._tasks, self._orchestrator, task, asset, asset_error=False)
        return task

    def get(self, tenant_id: str, task_id: str) -> Task:
        task = self._tasks.get(tenant_id, task_id)
        if task is None:
            raise NotFoundError(f"task {task_id} not found", code="task_not_found")
        return task

    def list_tasks(
        self, tenant_id: str, *, asset_id: str | None, active_only: bool, limit: int, cursor: str | None
    ) -> Page[Task]:
        return self._tasks.list(
            tenant_id, asset_id=asset_id, active_only=active_only, limit=limit, cursor=cursor
        )

    def cancel(self, tenant_id: str, task_id: str) -> Task:
        task = self.get(tenant_id, task_id)
        if task.state not in (TaskState.QUEUED, TaskState.PROCESSING):
            raise ConflictError(f"the task is already {task.state}", code="task_not_active")
        task, _ = self._tasks.mutate_with_asset(tenant_id, task_id, progress.cancel)
        self._orchestrator.cancel(task)
        return task
