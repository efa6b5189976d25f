"""IdempotencyRepository on SQLite: table `idempotency`, keyed by (tenant_id, key), with
`expires_at` in unix seconds; expired rows are swept a few at a time by each write.

A reservation is a row of the same table whose doc is `{"pending": true, ...}` and whose
`expires_at` is its lease: so an expired record and a lapsed reservation are replaced alike by
one conditional upsert, and completing or releasing names the exact reservation doc it wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import IdempotencyRecord
from mediaindex.ports.idempotency import IdempotencyRepository, Pending

_SWEEP = 20  # expired rows removed per write, so the table stays as large as the live keys
# Replaces an expired record or a lapsed reservation with the same key; a live one wins.
_UPSERT = (
    "INSERT INTO idempotency (tenant_id, key, expires_at, doc) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (tenant_id, key) DO UPDATE"
    " SET expires_at = excluded.expires_at, doc = excluded.doc"
    " WHERE idempotency.expires_at <= ?"
)


def _epoch(dt: datetime) -> float:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def pending_doc(p: Pending) -> str:
    return json.dumps(
        {
            "pending": True,
            "tenant_id": p.tenant_id,
            "key": p.key,
            "request_hash": p.request_hash,
            "token": p.token,
            "lease_until": _epoch(p.lease_until),
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def _parse(raw: str) -> IdempotencyRecord | Pending:
    data: dict[str, Any] = json.loads(raw)
    if data.get("pending") is True:
        return Pending(
            tenant_id=str(data["tenant_id"]),
            key=str(data["key"]),
            request_hash=str(data["request_hash"]),
            token=str(data["token"]),
            lease_until=datetime.fromtimestamp(float(data["lease_until"]), UTC),
        )
    return IdempotencyRecord.model_validate(data)


def _pending_token(raw: str) -> str | None:
    parsed = _parse(raw)
    return parsed.token if isinstance(parsed, Pending) else None


class SqliteIdempotencyRepository(IdempotencyRepository):
    def __init__(self, db: Database) -> None:
        self._db = db

    def lookup(self, tenant_id: str, key: str) -> IdempotencyRecord | Pending | None:
        row = (
            self._db.connection()
            .execute(
                "SELECT doc FROM idempotency WHERE tenant_id = ? AND key = ? AND expires_at > ?",
                (tenant_id, key, datetime.now(UTC).timestamp()),
            )
            .fetchone()
        )
        return _parse(row[0]) if row else None

    def get(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        found = self.lookup(tenant_id, key)
        return found if isinstance(found, IdempotencyRecord) else None

    def _upsert(self, tenant_id: str, key: str, expires_at: float, doc: str) -> bool:
        now = datetime.now(UTC).timestamp()
        with self._db.transaction() as tx:
            cur = tx.execute(_UPSERT, (tenant_id, key, expires_at, doc, now))
            tx.execute(
                "DELETE FROM idempotency WHERE rowid IN"
                " (SELECT rowid FROM idempotency WHERE expires_at <= ? LIMIT ?)",
                (now, _SWEEP),
            )
            return cur.rowcount > 0

    def put(self, record: IdempotencyRecord) -> None:
        if not self._upsert(
            record.tenant_id, record.key, _epoch(record.expires_at), record.model_dump_json()
        ):
            raise ConflictError("the idempotency key is in use", code="idempotency_key_exists")

    def reserve(self, pending: Pending) -> bool:
        return self._upsert(pending.tenant_id, pending.key, _epoch(pending.lease_until), pending_doc(pending))

    def complete(self, record: IdempotencyRecord, token: str) -> bool:
        with self._db.transaction() as tx:
            row = tx.execute(
                "SELECT doc FROM idempotency WHERE tenant_id = ? AND key = ?", (record.tenant_id, record.key)
            ).fetchone()
            if row is None or _pending_token(row[0]) != token:
                return False
            tx.execute(
                "UPDATE idempotency SET expires_at = ?, doc = ? WHERE tenant_id = ? AND key = ?",
                (_epoch(record.expires_at), record.model_dump_json(), record.tenant_id, record.key),
            )
            return True

    def release(self, tenant_id: str, key: str, token: str) -> None:
        with self._db.transaction() as tx:
            row = tx.execute(
                "SELECT doc FROM idempotency WHERE tenant_id = ? AND key = ?", (tenant_id, key)
            ).fetchone()
            if row is not None and _pending_token(row[0]) == token:
                tx.execute("DELETE FROM idempotency WHERE tenant_id = ? AND key = ?", (tenant_id, key))
