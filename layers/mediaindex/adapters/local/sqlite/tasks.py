"""TaskRepository on SQLite: table `tasks`. The two writes that change a task with its asset run in
one transaction over both rows; reads and writes name the tenant, and another tenant's task (or
a task whose asset is another tenant's) is not found."""

from __future__ import annotations

import sqlite3

from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.adapters.local.sqlite.rows import Row, load_asset, newest_first, write_asset
from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.models import Asset, Page, Task
from mediaindex.ports.assets import next_asset
from mediaindex.ports.tasks import TaskAssetFn, TaskRepository, media_counted, next_task


def _task(row: Row) -> Task:
    return Task.model_validate_json(row[0])


class SqliteTaskRepository(TaskRepository):
    def __init__(self, db: Database) -> None:
        self._db = db

    def create_with_asset(self, task: Task, asset: Asset) -> tuple[Task, Asset]:
        stored_task = task.model_copy(update={"version": task.version + 1})
        with self._db.transaction() as tx:
            current = load_asset(tx, asset.tenant_id, asset.id)
            if current.version != asset.version:
                raise ConflictError(f"asset {asset.id} changed meanwhile", code="version_conflict")
            stored_asset = write_asset(tx, asset, current)
            try:
                tx.execute(
                    "INSERT INTO tasks (id, tenant_id, asset_id, state, version, doc)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        stored_task.id,
                        stored_task.tenant_id,
                        stored_task.asset_id,
                        stored_task.state.value,
                        stored_task.version,
                        stored_task.model_dump_json(),
                    ),
                )
            except sqlite3.IntegrityError as e:
                raise ConflictError(f"task {task.id} exists", code="task_already_exists") from e
            _count_media(tx, stored_task, None, stored_asset)
        return stored_task, stored_asset

    def _find(self, conn: sqlite3.Connection, tenant_id: str, task_id: str) -> Task | None:
        row = conn.execute(
            "SELECT doc FROM tasks WHERE id = ? AND tenant_id = ?", (task_id, tenant_id)
        ).fetchone()
        return _task(row) if row else None

    def get(self, tenant_id: str, task_id: str) -> Task | None:
        return self._find(self._db.connection(), tenant_id, task_id)

    def list(
        self,
        tenant_id: str,
        *,
        asset_id: str | None = None,
        active_only: bool = False,
        limit: int,
        cursor: str | None,
    ) -> Page[Task]:
        # Spelled as the partial index `tasks_active`'s WHERE, so the active listing uses it.
        active = ["state IN ('queued', 'processing')"] if active_only else []
        return newest_first(
            self._db.connection(),
            "doc FROM tasks",
            _task,
            equal={"tenant_id": tenant_id, "asset_id": asset_id},
            also=active,
            limit=limit,
            cursor=cursor,
        )

    def mutate_with_asset(self, tenant_id: str, task_id: str, fn: TaskAssetFn) -> tuple[Task, Asset]:
        with self._db.transaction() as tx:
            task = self._find(tx, tenant_id, task_id)
            if task is None:
                raise NotFoundError(f"task {task_id} not found", code="task_not_found")
            asset = load_asset(tx, tenant_id, task.asset_id)
            # Copies: a fn that changes what it is given in place (progress.set_feature does) must
            # not change `asset`, the before of the counters' change.
            changed_task, changed_asset = fn(task.model_copy(deep=True), asset.model_copy(deep=True))
            new_task, new_asset = next_task(task, changed_task), next_asset(asset, changed_asset)
            cur = tx.execute(
                "UPDATE tasks SET state = ?, version = ?, doc = ? WHERE id = ? AND version = ?",
                (new_task.state.value, new_task.version, new_task.model_dump_json(), task.id, task.version),
            )
            if cur.rowcount != 1:
                raise ConflictError(f"task {task_id} changed meanwhile", code="version_conflict")
            stored_asset = write_asset(tx, new_asset, asset)
            _count_media(tx, new_task, asset, stored_asset)
        return new_task, stored_asset

    def media_ms_on(self, tenant_id: str, day: str) -> int:
        row = (
            self._db.connection()
            .execute("SELECT media_ms FROM media_days WHERE tenant_id = ? AND day = ?", (tenant_id, day))
            .fetchone()
        )
        return int(row[0]) if row else 0


def _count_media(tx: sqlite3.Connection, task: Task, before: Asset | None, after: Asset) -> None:
    counted = media_counted(task, before, after)
    if counted is not None:
        tx.execute(
            "INSERT INTO media_days (tenant_id, day, media_ms) VALUES (?, ?, ?)"
            " ON CONFLICT (tenant_id, day) DO UPDATE SET media_ms = media_ms + excluded.media_ms",
            (task.tenant_id, *counted),
        )
