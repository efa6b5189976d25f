"""KeyRepository on SQLite: tables `tenants`, `api_keys` and `tenant_quotas`; request windows in
memory (adapters/local/request_windows.py)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from mediaindex.adapters.local.request_windows import RequestWindows
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import ApiKey, Tenant
from mediaindex.domain.quotas import Quotas
from mediaindex.ports.keys import KeyRepository, key_document


class SqliteKeyRepository(KeyRepository):
    def __init__(self, db: Database) -> None:
        self._db = db
        self._windows = RequestWindows()

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
        row = self._db.connection().execute("SELECT doc FROM tenants WHERE name = ?", (name,)).fetchone()
        return Tenant.model_validate_json(row[0]) if row else None

    def put_key(self, key: ApiKey) -> None:
        with self._db.transaction() as tx:
            try:
                tx.execute(
                    "INSERT INTO api_keys (id, tenant_id, key_hash, doc) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id,"
                    " key_hash = excluded.key_hash, doc = excluded.doc",
                    (key.id, key.tenant_id, key.key_hash, key_document(key)),
                )
            except sqlite3.IntegrityError as e:  # the hash belongs to another key id
                raise ConflictError("an API key with that hash exists", code="api_key_already_exists") from e

    def get_key_by_hash(self, key_hash: str) -> ApiKey | None:
        # One writer per file and reads see every commit: a revoked key is refused at once.
        row = (
            self._db.connection()
            .execute("SELECT doc FROM api_keys WHERE key_hash = ?", (key_hash,))
            .fetchone()
        )
        return ApiKey.model_validate_json(row[0]) if row else None

    def list_keys(self, tenant_id: str) -> list[ApiKey]:
        rows = (
            self._db.connection()
            .execute("SELECT doc FROM api_keys WHERE tenant_id = ? ORDER BY id DESC", (tenant_id,))
            .fetchall()
        )
        return [ApiKey.model_validate_json(r[0]) for r in rows]

    def touch_key(self, key: ApiKey, at: datetime) -> None:
        # One field of the stored document, in place: a revocation written since it was read stays.
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE api_keys SET doc = json_set(doc, '$.last_used_at', ?) WHERE id = ?",
                (at.isoformat(), key.id),
            )

    def get_quotas(self, tenant_id: str) -> Quotas | None:
        row = (
            self._db.connection()
            .execute("SELECT doc FROM tenant_quotas WHERE tenant_id = ?", (tenant_id,))
            .fetchone()
        )
        return Quotas.model_validate_json(row[0]) if row else None

    def put_quotas(self, tenant_id: str, quotas: Quotas) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO tenant_quotas (tenant_id, doc) VALUES (?, ?)"
                " ON CONFLICT (tenant_id) DO UPDATE SET doc = excluded.doc",
                (tenant_id, quotas.model_dump_json()),
            )

    def count_request(self, tenant_id: str, window_start: int, limit: int) -> bool:
        return self._windows.count(tenant_id, window_start, limit)

    def requests_counted(self, tenant_id: str, window_start: int) -> int:
        return self._windows.counted(tenant_id, window_start)
