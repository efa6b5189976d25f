"""Tasks: one run of the pipeline over an asset. A task's feature states are mirrored on its asset,
so the writes that change them change both, atomically: these are the repository's two
cross-aggregate writes (a SQLite transaction; a DynamoDB TransactWriteItems)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

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
