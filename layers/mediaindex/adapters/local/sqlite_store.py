"""MetadataStore on SQLite (the local runtime). Schema: migrations/001_init.sql.

Entities are stored as JSON documents plus the columns that queries use. Every write runs in one
`BEGIN IMMEDIATE` transaction, which takes the write lock before reading, so a read-check-write is
atomic without retries and `mutate_*` calls `fn` exactly once. Versions go up by one on every write
(an insert stores version+1 too); the index's `asset_count` is a separate counter column that
asset inserts and deletes change without bumping the index version, and `update_index` never
overwrites it."""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from datetime import UTC, datetime
from typing import Any, TypeVar

from mediaindex.adapters.local.sqlite_db import Database
from mediaindex.domain.models import (
    ApiKey,
    Asset,
    AssetStatus,
    Derivative,
    IdempotencyRecord,
    Index,
    MediaType,
    Page,
    Segment,
    Task,
    Tenant,
)
from mediaindex.errors import ConflictError, NotFoundError, ValidationError
from mediaindex.ports.metadata import AssetFn, MetadataStore, TaskAssetFn, next_asset, next_task

E = TypeVar("E")


def _encode_cursor(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as e:
        raise ValidationError("cursor is not valid", code="cursor_invalid", field="cursor") from e
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise ValidationError("cursor is not valid", code="cursor_invalid", field="cursor")
    return data


def _epoch(dt: datetime) -> float:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValidationError("limit must be at least 1", field="limit")


class SqliteMetadataStore(MetadataStore):
    def __init__(self, db: Database) -> None:
        self._db = db
        db.migrate()  # idempotent: one SELECT per migration file when already applied

    def _conn(self) -> sqlite3.Connection:
        return self._db.connection()

    # Tenants and keys --------------------------------------------------------------------------
    def create_tenant(self, tenant: Tenant) -> Tenant:
        with self._db.transaction() as tx:
            if tx.execute("SELECT 1 FROM tenants WHERE name = ?", (tenant.name,)).fetchone():
                raise ConflictError(
                    f"tenant name {tenant.name!r} is taken", code="tenant_name_already_exists"
                )
            try:
                tx.execute(
                    "INSERT INTO tenants (id, name, doc) VALUES (?, ?, ?)",
                    (tenant.id, tenant.name, tenant.model_dump_json()),
                )
            except sqlite3.IntegrityError as e:
                raise ConflictError(f"tenant {tenant.id} exists", code="tenant_already_exists") from e
        return tenant

    def get_tenant_by_name(self, name: str) -> Tenant | None:
        row = self._conn().execute("SELECT doc FROM tenants WHERE name = ?", (name,)).fetchone()
        return Tenant.model_validate_json(row[0]) if row else None

    def put_api_key(self, key: ApiKey) -> None:
        with self._db.transaction() as tx:
            try:
                tx.execute(
                    "INSERT INTO api_keys (id, tenant_id, key_hash, doc) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id,"
                    " key_hash = excluded.key_hash, doc = excluded.doc",
                    (key.id, key.tenant_id, key.key_hash, key.model_dump_json()),
                )
            except sqlite3.IntegrityError as e:  # the hash belongs to another key id
                raise ConflictError("an API key with that hash exists", code="api_key_already_exists") from e

    def get_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = self._conn().execute("SELECT doc FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
        return ApiKey.model_validate_json(row[0]) if row else None

    # Indexes -----------------------------------------------------------------------------------
    @staticmethod
    def _index(doc: str, asset_count: int) -> Index:
        index = Index.model_validate_json(doc)
        index.asset_count = asset_count
        return index

    def create_index(self, index: Index) -> Index:
        stored = index.model_copy(update={"version": index.version + 1, "asset_count": 0})
        with self._db.transaction() as tx:
            taken = tx.execute(
                "SELECT 1 FROM indexes WHERE tenant_id = ? AND name = ?", (index.tenant_id, index.name)
            ).fetchone()
            if taken:
                raise ConflictError(
                    f"an index named {index.name!r} exists", code="index_name_already_exists", field="name"
                )
            try:
                tx.execute(
                    "INSERT INTO indexes (id, tenant_id, name, asset_count, version, doc)"
                    " VALUES (?, ?, ?, 0, ?, ?)",
                    (stored.id, stored.tenant_id, stored.name, stored.version, stored.model_dump_json()),
                )
            except sqlite3.IntegrityError as e:
                raise ConflictError(f"index {index.id} exists", code="index_already_exists") from e
        return stored

    def get_index(self, tenant_id: str, index_id: str) -> Index | None:
        row = (
            self._conn()
            .execute(
                "SELECT doc, asset_count FROM indexes WHERE id = ? AND tenant_id = ?", (index_id, tenant_id)
            )
            .fetchone()
        )
        return self._index(row[0], row[1]) if row else None

    def list_indexes(self, tenant_id: str, *, limit: int, cursor: str | None) -> Page[Index]:
        _check_limit(limit)
        after = _decode_cursor(cursor)
        rows = (
            self._conn()
            .execute(
                "SELECT id, doc, asset_count FROM indexes WHERE tenant_id = ? AND id < ?"
                " ORDER BY id DESC LIMIT ?",
                (tenant_id, after["id"] if after else "\U0010ffff", limit + 1),
            )
            .fetchall()
        )
        return self._page([self._index(r[1], r[2]) for r in rows], [r[0] for r in rows], limit)

    def update_index(self, index: Index) -> Index:
        with self._db.transaction() as tx:
            row = tx.execute(
                "SELECT version, name, asset_count FROM indexes WHERE id = ? AND tenant_id = ?",
                (index.id, index.tenant_id),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"index {index.id} not found", code="index_not_found")
            version, name, asset_count = row
            if version != index.version:
                raise ConflictError(f"index {index.id} changed meanwhile", code="version_conflict")
            if name != index.name:
                taken = tx.execute(
                    "SELECT 1 FROM indexes WHERE tenant_id = ? AND name = ? AND id != ?",
                    (index.tenant_id, index.name, index.id),
                ).fetchone()
                if taken:
                    raise ConflictError(
                        f"an index named {index.name!r} exists",
                        code="index_name_already_exists",
                        field="name",
                    )
            stored = index.model_copy(update={"version": version + 1, "asset_count": asset_count})
            tx.execute(
                "UPDATE indexes SET name = ?, version = ?, doc = ? WHERE id = ?",
                (stored.name, stored.version, stored.model_dump_json(), stored.id),
            )
        return stored

    def delete_index(self, tenant_id: str, index_id: str) -> bool:
        with self._db.transaction() as tx:
            cur = tx.execute("DELETE FROM indexes WHERE id = ? AND tenant_id = ?", (index_id, tenant_id))
            return cur.rowcount > 0

    # Assets ------------------------------------------------------------------------------------
    def create_asset(self, asset: Asset) -> Asset:
        stored = asset.model_copy(update={"version": asset.version + 1})
        with self._db.transaction() as tx:
            owner = tx.execute("SELECT tenant_id FROM indexes WHERE id = ?", (asset.index_id,)).fetchone()
            if owner is None or owner[0] != asset.tenant_id:
                raise NotFoundError(
                    f"index {asset.index_id} not found", code="index_not_found", field="index_id"
                )
            try:
                tx.execute(
                    "INSERT INTO assets (id, tenant_id, index_id, status, media_type, version, doc)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        stored.id,
                        stored.tenant_id,
                        stored.index_id,
                        stored.status.value,
                        stored.media_type.value if stored.media_type else None,
                        stored.version,
                        stored.model_dump_json(),
                    ),
                )
            except sqlite3.IntegrityError as e:
                raise ConflictError(f"asset {asset.id} exists", code="asset_already_exists") from e
            tx.execute("UPDATE indexes SET asset_count = asset_count + 1 WHERE id = ?", (asset.index_id,))
        return stored

    def get_asset(self, asset_id: str, tenant_id: str | None = None) -> Asset | None:
        # The API's hot path: one primary-key lookup on this thread's open connection.
        row = self._conn().execute("SELECT doc, tenant_id FROM assets WHERE id = ?", (asset_id,)).fetchone()
        if row is None or (tenant_id is not None and row[1] != tenant_id):
            return None
        return Asset.model_validate_json(row[0])

    def list_assets(
        self,
        tenant_id: str,
        *,
        index_id: str | None = None,
        status: AssetStatus | None = None,
        media_type: MediaType | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[Asset]:
        _check_limit(limit)
        after = _decode_cursor(cursor)
        where = ["tenant_id = ?"]
        args: list[Any] = [tenant_id]
        if index_id is not None:
            where.append("index_id = ?")
            args.append(index_id)
        if status is not None:
            where.append("status = ?")
            args.append(AssetStatus(status).value)
        if media_type is not None:
            where.append("media_type = ?")
            args.append(MediaType(media_type).value)
        if after:
            where.append("id < ?")
            args.append(after["id"])
        sql = f"SELECT id, doc FROM assets WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"  # noqa: S608
        rows = self._conn().execute(sql, (*args, limit + 1)).fetchall()
        return self._page([Asset.model_validate_json(r[1]) for r in rows], [r[0] for r in rows], limit)

    def _write_asset(self, tx: sqlite3.Connection, asset: Asset, expected_version: int) -> Asset:
        stored = asset.model_copy(update={"version": expected_version + 1})
        cur = tx.execute(
            "UPDATE assets SET status = ?, media_type = ?, version = ?, doc = ? WHERE id = ? AND version = ?",
            (
                stored.status.value,
                stored.media_type.value if stored.media_type else None,
                stored.version,
                stored.model_dump_json(),
                stored.id,
                expected_version,
            ),
        )
        if cur.rowcount != 1:
            raise ConflictError(f"asset {asset.id} changed meanwhile", code="version_conflict")
        return stored

    def _load_asset(self, tx: sqlite3.Connection, asset_id: str) -> Asset:
        row = tx.execute("SELECT doc FROM assets WHERE id = ?", (asset_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"asset {asset_id} not found", code="asset_not_found")
        return Asset.model_validate_json(row[0])

    def mutate_asset(self, asset_id: str, fn: AssetFn) -> Asset:
        with self._db.transaction() as tx:
            current = self._load_asset(tx, asset_id)
            return self._write_asset(tx, next_asset(current, fn(current)), current.version)

    def delete_asset(self, asset_id: str) -> Asset | None:
        with self._db.transaction() as tx:
            row = tx.execute("SELECT doc FROM assets WHERE id = ?", (asset_id,)).fetchone()
            if row is None:
                return None
            asset = Asset.model_validate_json(row[0])
            # ON DELETE CASCADE removes its tasks, derivatives and segments.
            tx.execute("DELETE FROM assets WHERE id = ?", (asset_id,))
            tx.execute("UPDATE indexes SET asset_count = asset_count - 1 WHERE id = ?", (asset.index_id,))
        return asset

    # Tasks -------------------------------------------------------------------------------------
    def save_task_and_asset(self, task: Task, asset: Asset) -> tuple[Task, Asset]:
        stored_task = task.model_copy(update={"version": task.version + 1})
        with self._db.transaction() as tx:
            current = self._load_asset(tx, asset.id)
            if current.version != asset.version:
                raise ConflictError(f"asset {asset.id} changed meanwhile", code="version_conflict")
            stored_asset = self._write_asset(tx, asset, asset.version)
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
        return stored_task, stored_asset

    def get_task(self, task_id: str, tenant_id: str | None = None) -> Task | None:
        row = self._conn().execute("SELECT doc, tenant_id FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None or (tenant_id is not None and row[1] != tenant_id):
            return None
        return Task.model_validate_json(row[0])

    def list_tasks(
        self,
        tenant_id: str,
        *,
        asset_id: str | None = None,
        active_only: bool = False,
        limit: int,
        cursor: str | None,
    ) -> Page[Task]:
        _check_limit(limit)
        after = _decode_cursor(cursor)
        where = ["tenant_id = ?"]
        args: list[Any] = [tenant_id]
        if asset_id is not None:
            where.append("asset_id = ?")
            args.append(asset_id)
        if active_only:
            where.append("state IN ('queued', 'processing')")  # spelled as the partial index's WHERE
        if after:
            where.append("id < ?")
            args.append(after["id"])
        sql = f"SELECT id, doc FROM tasks WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"  # noqa: S608
        rows = self._conn().execute(sql, (*args, limit + 1)).fetchall()
        return self._page([Task.model_validate_json(r[1]) for r in rows], [r[0] for r in rows], limit)

    def mutate_task_and_asset(self, task_id: str, fn: TaskAssetFn) -> tuple[Task, Asset]:
        with self._db.transaction() as tx:
            row = tx.execute("SELECT doc FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"task {task_id} not found", code="task_not_found")
            task = Task.model_validate_json(row[0])
            asset = self._load_asset(tx, task.asset_id)
            changed_task, changed_asset = fn(task, asset)
            new_task, new_asset = next_task(task, changed_task), next_asset(asset, changed_asset)
            cur = tx.execute(
                "UPDATE tasks SET state = ?, version = ?, doc = ? WHERE id = ? AND version = ?",
                (new_task.state.value, new_task.version, new_task.model_dump_json(), task.id, task.version),
            )
            if cur.rowcount != 1:
                raise ConflictError(f"task {task_id} changed meanwhile", code="version_conflict")
            stored_asset = self._write_asset(tx, new_asset, asset.version)
        return new_task, stored_asset

    # Outputs -----------------------------------------------------------------------------------
    def _require_asset(self, tx: sqlite3.Connection, asset_id: str) -> None:
        if tx.execute("SELECT 1 FROM assets WHERE id = ?", (asset_id,)).fetchone() is None:
            raise NotFoundError(f"asset {asset_id} not found", code="asset_not_found")

    def replace_derivatives(self, asset_id: str, kinds: list[str], derivatives: list[Derivative]) -> None:
        with self._db.transaction() as tx:
            self._require_asset(tx, asset_id)
            if kinds:
                marks = ",".join("?" * len(kinds))
                tx.execute(
                    f"DELETE FROM derivatives WHERE asset_id = ? AND kind IN ({marks})",  # noqa: S608
                    (asset_id, *kinds),
                )
            tx.executemany(
                "INSERT OR REPLACE INTO derivatives (asset_id, kind, idx, doc) VALUES (?, ?, ?, ?)",
                [
                    (asset_id, d.kind, d.index, d.model_copy(update={"asset_id": asset_id}).model_dump_json())
                    for d in derivatives
                ],
            )

    def list_derivatives(self, asset_id: str) -> list[Derivative]:
        rows = (
            self._conn()
            .execute("SELECT doc FROM derivatives WHERE asset_id = ? ORDER BY kind, idx", (asset_id,))
            .fetchall()
        )
        return [Derivative.model_validate_json(r[0]) for r in rows]

    def replace_segments(self, asset_id: str, segments: list[Segment]) -> None:
        with self._db.transaction() as tx:
            self._require_asset(tx, asset_id)
            tx.execute("DELETE FROM segments WHERE asset_id = ?", (asset_id,))
            try:
                tx.executemany(
                    "INSERT INTO segments (id, asset_id, start, doc) VALUES (?, ?, ?, ?)",
                    [
                        (
                            s.id,
                            asset_id,
                            s.start,
                            s.model_copy(update={"asset_id": asset_id}).model_dump_json(),
                        )
                        for s in segments
                    ],
                )
            except sqlite3.IntegrityError as e:
                raise ConflictError("a segment id is used twice", code="segment_already_exists") from e

    def list_segments(self, asset_id: str, *, limit: int, cursor: str | None) -> Page[Segment]:
        """In time order (start, then id), the order a player wants, not newest first."""
        _check_limit(limit)
        after = _decode_cursor(cursor)
        if after is not None:
            start = after.get("start")
            if not isinstance(start, int | float):
                raise ValidationError("cursor is not valid", code="cursor_invalid", field="cursor")
            rows = (
                self._conn()
                .execute(
                    "SELECT doc FROM segments WHERE asset_id = ? AND (start > ? OR (start = ? AND id > ?))"
                    " ORDER BY start, id LIMIT ?",
                    (asset_id, start, start, after["id"], limit + 1),
                )
                .fetchall()
            )
        else:
            rows = (
                self._conn()
                .execute(
                    "SELECT doc FROM segments WHERE asset_id = ? ORDER BY start, id LIMIT ?",
                    (asset_id, limit + 1),
                )
                .fetchall()
            )
        segs = [Segment.model_validate_json(r[0]) for r in rows]
        more = len(segs) > limit
        segs = segs[:limit]
        nxt = _encode_cursor({"start": segs[-1].start, "id": segs[-1].id}) if more else None
        return Page[Segment](data=segs, next_cursor=nxt)

    # Idempotency -------------------------------------------------------------------------------
    def get_idempotency(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        row = (
            self._conn()
            .execute(
                "SELECT doc FROM idempotency WHERE tenant_id = ? AND key = ? AND expires_at > ?",
                (tenant_id, key, datetime.now(UTC).timestamp()),
            )
            .fetchone()
        )
        return IdempotencyRecord.model_validate_json(row[0]) if row else None

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        now = datetime.now(UTC).timestamp()
        with self._db.transaction() as tx:
            # Replaces an expired record with the same key; a live one wins.
            cur = tx.execute(
                "INSERT INTO idempotency (tenant_id, key, expires_at, doc) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, key) DO UPDATE"
                " SET expires_at = excluded.expires_at, doc = excluded.doc"
                " WHERE idempotency.expires_at <= ?",
                (record.tenant_id, record.key, _epoch(record.expires_at), record.model_dump_json(), now),
            )
            if cur.rowcount == 0:
                raise ConflictError("the idempotency key is in use", code="idempotency_key_exists")
            # Housekeeping in small bites, so the table stays as large as the live keys.
            tx.execute(
                "DELETE FROM idempotency WHERE rowid IN"
                " (SELECT rowid FROM idempotency WHERE expires_at <= ? LIMIT 20)",
                (now,),
            )

    # Helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _page(items: list[E], ids: list[str], limit: int) -> Page[E]:
        more = len(items) > limit
        nxt = _encode_cursor({"id": ids[limit - 1]}) if more else None
        return Page[E](data=items[:limit], next_cursor=nxt)
