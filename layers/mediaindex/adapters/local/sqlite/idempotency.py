"""IdempotencyRepository on SQLite: table `idempotency`, keyed by (tenant_id, key), with
`expires_at` in unix seconds; expired rows are swept a few at a time by each put."""

from __future__ import annotations

from datetime import UTC, datetime

from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import IdempotencyRecord
from mediaindex.ports.idempotency import IdempotencyRepository

_SWEEP = 20  # expired rows removed per put, so the table stays as large as the live keys


def _epoch(dt: datetime) -> float:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


class SqliteIdempotencyRepository(IdempotencyRepository):
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        row = (
            self._db.connection()
            .execute(
                "SELECT doc FROM idempotency WHERE tenant_id = ? AND key = ? AND expires_at > ?",
                (tenant_id, key, datetime.now(UTC).timestamp()),
            )
            .fetchone()
        )
        return IdempotencyRecord.model_validate_json(row[0]) if row else None

    def put(self, record: IdempotencyRecord) -> None:
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
            tx.execute(
                "DELETE FROM idempotency WHERE rowid IN"
                " (SELECT rowid FROM idempotency WHERE expires_at <= ? LIMIT ?)",
                (now, _SWEEP),
            )
