"""IndexRepository on SQLite: table `indexes`. Names are unique per tenant as `index_name_key`
compares them (case and Unicode forms aside), checked in the write transaction; the table's own
UNIQUE (tenant_id, name) on the raw name stays, from the first release, and never fires first.

`asset_count` is a counter column beside the document: asset inserts and deletes change it (in
their own transactions) without bumping `version`, and `update` never writes it; reads put the
column's value into the returned Index."""

from __future__ import annotations

import sqlite3

from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.adapters.local.sqlite.rows import Row, newest_first
from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.models import Index, Page
from mediaindex.domain.rules import index_name_key
from mediaindex.ports.indexes import IndexRepository


def _index(row: Row) -> Index:
    """(doc, asset_count) -> Index."""
    index = Index.model_validate_json(row[0])
    index.asset_count = int(row[1])
    return index


def _name_taken(index: Index) -> ConflictError:
    return ConflictError(
        f"an index named {index.name!r} exists", code="index_name_already_exists", field="name"
    )


def _name_held(tx: sqlite3.Connection, index: Index) -> bool:
    """Whether another index of the tenant has this name as names compare (`index_name_key`:
    case and Unicode forms aside). The rows keep the names as written, this release's and the
    previous one's alike, so the keys are computed here, over the tenant's names, inside the write
    transaction (BEGIN IMMEDIATE): no other writer can add a name between this check and the write."""
    key = index_name_key(index.name)
    rows = tx.execute("SELECT id, name FROM indexes WHERE tenant_id = ?", (index.tenant_id,))
    return any(other_id != index.id and index_name_key(name) == key for other_id, name in rows)


class SqliteIndexRepository(IndexRepository):
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, index: Index) -> Index:
        stored = index.model_copy(update={"version": index.version + 1, "asset_count": 0})
        with self._db.transaction() as tx:
            if _name_held(tx, index):
                raise _name_taken(index)
            try:
                tx.execute(
                    "INSERT INTO indexes (id, tenant_id, name, asset_count, version, doc)"
                    " VALUES (?, ?, ?, 0, ?, ?)",
                    (stored.id, stored.tenant_id, stored.name, stored.version, stored.model_dump_json()),
                )
            except sqlite3.IntegrityError as e:
                raise ConflictError(f"index {index.id} exists", code="index_already_exists") from e
        return stored

    def get(self, tenant_id: str, index_id: str) -> Index | None:
        row = (
            self._db.connection()
            .execute(
                "SELECT doc, asset_count FROM indexes WHERE id = ? AND tenant_id = ?", (index_id, tenant_id)
            )
            .fetchone()
        )
        return _index(row) if row else None

    def list(self, tenant_id: str, *, limit: int, cursor: str | None) -> Page[Index]:
        return newest_first(
            self._db.connection(),
            "doc, asset_count FROM indexes",
            _index,
            equal={"tenant_id": tenant_id},
            limit=limit,
            cursor=cursor,
        )

    def update(self, index: Index) -> Index:
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
            if name != index.name and _name_held(tx, index):
                raise _name_taken(index)
            stored = index.model_copy(update={"version": version + 1, "asset_count": asset_count})
            tx.execute(
                "UPDATE indexes SET name = ?, version = ?, doc = ? WHERE id = ?",
                (stored.name, stored.version, stored.model_dump_json(), stored.id),
            )
        return stored

    def delete(self, tenant_id: str, index_id: str) -> bool:
        with self._db.transaction() as tx:
            cur = tx.execute("DELETE FROM indexes WHERE id = ? AND tenant_id = ?", (index_id, tenant_id))
            # Its usage counters go with it (a cascade, not asset deletes, may remove its assets).
            tx.execute(
                "DELETE FROM usage_counters WHERE tenant_id = ? AND index_id = ?", (tenant_id, index_id)
            )
            return cur.rowcount > 0
