"""OutputRepository on SQLite: tables `derivatives` and `segments`. Their rows carry no tenant (the
stored format predates tenant-scoped calls), so every call goes through the asset's row: writes
check it in their transaction, reads join it, and another tenant's asset has no outputs. Replacing
derivatives changes the tenant's derivative-bytes counter (usage.py) in the same transaction."""

from __future__ import annotations

import sqlite3
from typing import Any

from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.adapters.local.sqlite.rows import (
    check_limit,
    cursor_invalid,
    decode_cursor,
    encode_cursor,
    load_asset,
)
from mediaindex.adapters.local.sqlite.usage import add_usage, stored_derivative_bytes
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import Derivative, Page, Segment
from mediaindex.ports.assets import DERIVATIVE_BYTES
from mediaindex.ports.outputs import OutputRepository

_OF_TENANT_ASSET = "o.asset_id = ? AND EXISTS (SELECT 1 FROM assets WHERE id = ? AND tenant_id = ?)"


class SqliteOutputRepository(OutputRepository):
    def __init__(self, db: Database) -> None:
        self._db = db

    def replace_derivatives(
        self, tenant_id: str, asset_id: str, kinds: list[str], derivatives: list[Derivative]
    ) -> None:
        with self._db.transaction() as tx:
            asset = load_asset(tx, tenant_id, asset_id)
            before = stored_derivative_bytes(tx, asset_id)
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
            change = stored_derivative_bytes(tx, asset_id) - before
            add_usage(tx, tenant_id, asset.index_id, {DERIVATIVE_BYTES: change})

    def list_derivatives(self, tenant_id: str, asset_id: str) -> list[Derivative]:
        rows = (
            self._db.connection()
            .execute(
                f"SELECT o.doc FROM derivatives o WHERE {_OF_TENANT_ASSET} ORDER BY o.kind, o.idx",  # noqa: S608
                (asset_id, asset_id, tenant_id),
            )
            .fetchall()
        )
        return [Derivative.model_validate_json(r[0]) for r in rows]

    def replace_segments(self, tenant_id: str, asset_id: str, segments: list[Segment]) -> None:
        with self._db.transaction() as tx:
            load_asset(tx, tenant_id, asset_id)
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

    def list_segments(
        self, tenant_id: str, asset_id: str, *, limit: int, cursor: str | None
    ) -> Page[Segment]:
        """In time order (start, then id), the order a player wants, not newest first; the cursor is
        the (start, id) of the last segment served."""
        check_limit(limit)
        after = decode_cursor(cursor)
        where = _OF_TENANT_ASSET
        args: list[Any] = [asset_id, asset_id, tenant_id]
        if after is not None:
            start = after.get("start")
            if not isinstance(start, int | float):
                raise cursor_invalid()
            where += " AND (o.start > ? OR (o.start = ? AND o.id > ?))"
            args += [start, start, after["id"]]
        rows = (
            self._db.connection()
            .execute(
                f"SELECT o.doc FROM segments o WHERE {where} ORDER BY o.start, o.id LIMIT ?",  # noqa: S608
                (*args, limit + 1),
            )
            .fetchall()
        )
        segs = [Segment.model_validate_json(r[0]) for r in rows[:limit]]
        nxt = encode_cursor({"start": segs[-1].start, "id": segs[-1].id}) if len(rows) > limit else None
        return Page[Segment](data=segs, next_cursor=nxt)
