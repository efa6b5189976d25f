"""Tasks: one run of the pipeline over an asset. A task's feature states are mirrored on its asset,
so the writes that change them change both, atomically: these are the repository's two
cross-aggregate writes (a SQLite transaction; a DynamoDB TransactWriteItems). The same writes keep
the tenant's media time per UTC day (`media_counted`, read by `media_ms_on`): the media-hours
quota reads one counter, not every task of the day and its asset."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC

from mediaindex.domain.models import Asset, Page, Task

TaskAssetFn = Callable[[Task, Asset], tuple[Task, Asset]]


def next_task(current: Task, new: Task) -> Task:
    """What a mutation stores: fn's result with the stored identity fields and the next version."""
    return new.model_copy(
        update={
            "id": current.id,
            "tenant_id": current.tenant_id,
            "asset_id": current.asset_id,
            "version": current.version + 1,
        }
    )


def media_counted(task: Task, before: Asset | None, after: Asset) -> tuple[str, int] | None:
    """What a write of `task` with its asset adds to the tenant's media time: (the task's UTC day,
    milliseconds). The asset's duration counts when its task is created knowing it (a re-run, a
    re-index: `before` None) or when the task's probe first learns it (an ingest); nothing
    otherwise, so each task counts once."""
    if after.duration_s is None or (before is not None and before.duration_s is not None):
        return None
    return task.created_at.astimezone(UTC).date().isoformat(), round(after.duration_s * 1000)


class TaskRepository(ABC):
    @abstractmethod
    def create_with_asset(self, task: Task, asset: Asset) -> tuple[Task, Asset]:
        """Inserts `task` and writes `asset` if its stored version is still `asset.version`, in one
        transaction; ConflictError otherwise (so a duplicate upload event starts nothing)."""

    @abstractmethod
    def get(self, tenant_id: str, task_id: str) -> Task | None: ...

    @abstractmethod
    def list(
        self,
        tenant_id: str,
        *,
        asset_id: str | None = None,
        active_only: bool = False,
        limit: int,
        cursor: str | None,
    ) -> Page[Task]:
        """Newest first, paged by an opaque cursor."""

    @abstractmethod
    def mutate_with_asset(self, tenant_id: str, task_id: str, fn: TaskAssetFn) -> tuple[Task, Asset]:
        """Atomically applies `fn` to a task and its asset and bumps both versions. `fn` may run more
        than once, so it must be pure. NotFoundError when either is gone."""

    @abstractmethod
    def media_ms_on(self, tenant_id: str, day: str) -> int:
        """Milliseconds of media the tenant's tasks of that UTC day (YYYY-MM-DD) counted."""
