"""`Idempotency-Key` on POST: the same key and body replay the first response and do nothing
twice; the same key with another body is 409 `idempotency_key_reused`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from mediaindex.domain.errors import ConflictError, ValidationError
from mediaindex.domain.models import IdempotencyRecord, utcnow
from mediaindex.ports.idempotency import IdempotencyRepository

MAX_KEY_LEN = 255


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        h.update(part)
    return h.hexdigest()


class IdempotencyService:
    def __init__(self, records: IdempotencyRepository, ttl_s: int) -> None:
        self._records = records
        self._ttl = timedelta(seconds=ttl_s)

    def run(
        self, tenant_id: str, key: str, fingerprint: str, execute: Callable[[], tuple[int, Any]]
    ) -> tuple[int, Any, bool]:
        """Returns (status, body, replayed). Only successful (2xx) responses are remembered, so a
        client can retry a request that failed validation or hit an outage with the same key."""
        if not key or len(key) > MAX_KEY_LEN:
            raise ValidationError(
                f"Idempotency-Key must be 1 to {MAX_KEY_LEN} characters", field="Idempotency-Key"
            )
        scoped = f"{tenant_id}:{key}"
        existing = self._records.get(tenant_id, scoped)
        if existing is not None:
            return self._replay(existing, fingerprint)
        status, body = execute()
        if 200 <= status < 300:
            record = IdempotencyRecord(
                tenant_id=tenant_id,
                key=scoped,
                request_hash=fingerprint,
                status_code=status,
                body=body,
                expires_at=utcnow() + self._ttl,
            )
            try:
                self._records.put(record)
            except ConflictError:
                # A concurrent twin stored first: answer as it did.
                winner = self._records.get(tenant_id, scoped)
                if winner is not None:
                    return self._replay(winner, fingerprint)
        return status, body, False

    @staticmethod
    def _replay(record: IdempotencyRecord, fingerprint: str) -> tuple[int, Any, bool]:
        if record.request_hash != fingerprint:
            raise ConflictError(
                "this Idempotency-Key was used with another request", code="idempotency_key_reused"
            )
        return record.status_code, record.body, True
