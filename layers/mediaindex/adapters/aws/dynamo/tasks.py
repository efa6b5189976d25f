"""TaskRepository on DynamoDB: the task item (its own partition; GSIs list it by tenant and by
asset) and a pointer in its asset's partition. The two writes that change a task with its asset
are one TransactWriteItems, conditional on both versions (and, for a new task, on the asset's
tenant); `mutate_with_asset` reads, applies and retries when it loses a race."""

from __future__ import annotations

from mediaindex.adapters.aws.dynamo.items import (
    ASSET_SK,
    TASK_SK,
    asset_item,
    asset_not_found,
    asset_pk,
    is_asset_of,
    task_from,
    task_item,
    task_pk,
    task_ref_item,
    tasks_of_asset,
    tasks_of_tenant,
    tenant_of,
)
from mediaindex.adapters.aws.dynamo.media_days import add_media, read_media
from mediaindex.adapters.aws.dynamo.table import ConditionFailed, Table, n, retrying, s
from mediaindex.adapters.aws.dynamo.usage import add_usage, read_counted
from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.models import Asset, Page, Task, TaskState
from mediaindex.ports.assets import next_asset, usage_change
from mediaindex.ports.tasks import TaskAssetFn, TaskRepository, media_counted, next_task


def _task_not_found(task_id: str) -> NotFoundError:
    return NotFoundError(f"task {task_id} not found", code="task_not_found")


class DynamoTaskRepository(TaskRepository):
    def __init__(self, table: Table) -> None:
        self._t = table

    def create_with_asset(self, task: Task, asset: Asset) -> tuple[Task, Asset]:
        stored_task = task.model_copy(update={"version": task.version + 1})
        stored_asset = asset.model_copy(update={"version": asset.version + 1})
        # The stored asset (the caller holds only its changed copy): what the counters change by.
        current = read_counted(self._t, asset.tenant_id, asset.id)
        if current is None:
            raise asset_not_found(asset.id)
        if current.version != asset.version:
            raise ConflictError(f"asset {asset.id} changed meanwhile", code="version_conflict")
        try:
            self._t.transact(
                [
                    # The tenant condition: a caller's copy never overwrites another tenant's asset.
                    self._t.tx_put(
                        asset_item(stored_asset),
                        "version = :expected AND tenant_id = :tenant",
                        {":expected": n(asset.version), ":tenant": s(asset.tenant_id)},
                    ),
                    self._t.tx_put(task_item(stored_task), "attribute_not_exists(pk)"),
                    self._t.tx_put(task_ref_item(asset.id, task.id)),
                    *add_usage(self._t, current, usage_change(current, stored_asset)),
                    *add_media(
                        self._t, asset.tenant_id, asset.id, media_counted(stored_task, None, stored_asset)
                    ),
                ]
            )
        except ConditionFailed as e:
            if e.at(0):
                if not is_asset_of(self._t.get(asset_pk(asset.id), ASSET_SK), asset.tenant_id):
                    raise asset_not_found(asset.id) from e
                raise ConflictError(f"asset {asset.id} changed meanwhile", code="version_conflict") from e
            raise ConflictError(f"task {task.id} exists", code="task_already_exists") from e
        return stored_task, stored_asset

    def get(self, tenant_id: str, task_id: str) -> Task | None:
        item = self._t.get(task_pk(task_id), TASK_SK)
        return task_from(item) if item is not None and tenant_of(item) == tenant_id else None

    def list(
        self,
        tenant_id: str,
        *,
        asset_id: str | None = None,
        active_only: bool = False,
        limit: int,
        cursor: str | None,
    ) -> Page[Task]:
        filters: list[tuple[str, list[str]]] = []
        if active_only:
            filters.append(("state", [TaskState.QUEUED.value, TaskState.PROCESSING.value]))
        if asset_id is None:
            listing = tasks_of_tenant(tenant_id)
        else:
            listing = tasks_of_asset(asset_id)
            filters.append(("tenant_id", [tenant_id]))
        return self._t.query_page(task_from, listing, filters=filters, limit=limit, cursor=cursor)

    def mutate_with_asset(self, tenant_id: str, task_id: str, fn: TaskAssetFn) -> tuple[Task, Asset]:
        def attempt() -> tuple[Task, Asset]:
            task = self.get(tenant_id, task_id)
            if task is None:
                raise _task_not_found(task_id)
            asset = read_counted(self._t, tenant_id, task.asset_id)
            if asset is None:
                raise asset_not_found(task.asset_id)
            # Copies: a fn that changes what it is given in place (progress.set_feature does) must
            # not change `asset`, the before of the counters' change.
            changed_task, changed_asset = fn(task.model_copy(deep=True), asset.model_copy(deep=True))
            new_task, new_asset = next_task(task, changed_task), next_asset(asset, changed_asset)
            self._t.transact(
                [
                    self._t.tx_put_versioned(task_item(new_task), task.version),
                    self._t.tx_put_versioned(asset_item(new_asset), asset.version),
                    *add_usage(self._t, asset, usage_change(asset, new_asset)),
                    *add_media(self._t, tenant_id, asset.id, media_counted(new_task, asset, new_asset)),
                ]
            )
            return new_task, new_asset

        return retrying(attempt, f"task {task_id}")

    def media_ms_on(self, tenant_id: str, day: str) -> int:
        return read_media(self._t, tenant_id, day)
