"""KeyRepository on SQLite: tables `tenants` and `api_keys`."""

from __future__ import annotations

import sqlite3

from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import ApiKey, Tenant
from mediaindex.ports.keys import KeyRepository


class SqliteKeyRepository(KeyRepository):
    def __init__(self, db: Database) -> None:
        self._db = db

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
                    (key.id, key.tenant_id, key.key_hash, key.model_dump_json()),
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
