"""`Idempotency-Key` on POST: the same key and body replay the first response and do nothing
twice; the same key with another body is 409 `idempotency_key_reused`.

Check, run and record are made atomic by reserving the key first: a conditional write stores a
pending reservation with a short lease, and only the request that wrote it runs. A concurrent twin
waits a little for the winner's record and replays it, or answers 409
`idempotency_request_in_progress` when the winner takes longer. The winner then replaces its
reservation with the record (2xx), or releases the key (a failure, so the client may retry).

A response too big to keep whole is kept by reference: a multipart create answers up to 100 signed
part URLs (~1.7 KB each on S3), enough to pass DynamoDB's 400 KB item limit and fail the write
after the asset exists. Its route passes a `Rebuild`: the record keeps only the ids it names, and a
replay makes the body again from them (fresh signatures). Records written whole, by earlier
releases or for small responses, replay their body as stored."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mediaindex.domain.errors import ConflictError, ValidationError
from mediaindex.domain.models import IdempotencyRecord, utcnow
from mediaindex.ports.idempotency import IdempotencyRepository, Pending

log = logging.getLogger(__name__)

MAX_KEY_LEN = 255
_POLL_FIRST_S = 0.02
_POLL_MAX_S = 0.25
# The one key of a record body kept by reference: no API response has it at its top level.
REFERENCE_KEY = "$idempotency_ref"


@dataclass(frozen=True)
class Rebuild:
    """How a route keeps its response by reference. `ids(body)` names the response in a few small
    fields (None: keep this one whole); `body(ids)` makes it again on replay, and may raise (the
    thing it names was deleted, or moved on) like any request."""

    ids: Callable[[Any], dict[str, Any] | None]
    body: Callable[[dict[str, Any]], Any]


def _reference(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict) and len(body) == 1 and isinstance(body.get(REFERENCE_KEY), dict):
        return dict(body[REFERENCE_KEY])
    return None


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        h.update(part)
    return h.hexdigest()


def _in_progress() -> ConflictError:
    return ConflictError(
        "a request with this Idempotency-Key is still running; retry shortly",
        code="idempotency_request_in_progress",
    )


def _reused() -> ConflictError:
    return ConflictError("this Idempotency-Key was used with another request", code="idempotency_key_reused")


class IdempotencyService:
    def __init__(
        self, records: IdempotencyRepository, ttl_s: int, *, lease_s: float = 60.0, wait_s: float = 5.0
    ) -> None:
        self._records = records
        self._ttl = timedelta(seconds=ttl_s)
        self._lease = timedelta(seconds=lease_s)
        self._wait_s = wait_s

    def run(
        self,
        tenant_id: str,
        key: str,
        fingerprint: str,
        execute: Callable[[], tuple[int, Any]],
        *,
        rebuild: Rebuild | None = None,
    ) -> tuple[int, Any, bool]:
        """Returns (status, body, replayed). Only successful (2xx) responses are remembered, so a
        client can retry a request that failed validation or hit an outage with the same key."""
        if not key or len(key) > MAX_KEY_LEN:
            raise ValidationError(
                f"Idempotency-Key must be 1 to {MAX_KEY_LEN} characters", field="Idempotency-Key"
            )
        scoped = f"{tenant_id}:{key}"
        token, replay = self._reserve(tenant_id, scoped, fingerprint, rebuild)
        if replay is not None:
            return replay
        try:
            status, body = execute()
        except BaseException:
            self._records.release(tenant_id, scoped, token)
            raise
        if not 200 <= status < 300:
            self._records.release(tenant_id, scoped, token)
            return status, body, False
        ids = rebuild.ids(body) if rebuild is not None else None
        record = IdempotencyRecord(
            tenant_id=tenant_id,
            key=scoped,
            request_hash=fingerprint,
            status_code=status,
            body=body if ids is None else {REFERENCE_KEY: ids},
            expires_at=utcnow() + self._ttl,
        )
        if not self._records.complete(record, token):
            # The run outlived its lease and a twin took the key: it may have run too.
            log.warning("idempotency reservation lost before completion", extra={"tenant_id": tenant_id})
        return status, body, False

    def _reserve(
        self, tenant_id: str, scoped: str, fingerprint: str, rebuild: Rebuild | None
    ) -> tuple[str, tuple[int, Any, bool] | None]:
        """(token, None) once this request holds the key; (_, replay) when a twin's record answers."""
        deadline = time.monotonic() + self._wait_s
        poll = _POLL_FIRST_S
        while True:
            token = uuid.uuid4().hex
            pending = Pending(
                tenant_id=tenant_id,
                key=scoped,
                request_hash=fingerprint,
                token=token,
                lease_until=utcnow() + self._lease,
            )
            if self._records.reserve(pending):
                return token, None
            held = self._records.lookup(tenant_id, scoped)
            if isinstance(held, IdempotencyRecord):
                return token, _replay(held, fingerprint, rebuild)
            if held is not None and held.request_hash != fingerprint:
                raise _reused()
            # A twin is running (or just let go of the key): wait for its answer, briefly.
            if time.monotonic() >= deadline:
                raise _in_progress()
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
            poll = min(poll * 2, _POLL_MAX_S)


def _replay(record: IdempotencyRecord, fingerprint: str, rebuild: Rebuild | None) -> tuple[int, Any, bool]:
    if record.request_hash != fingerprint:
        raise _reused()
    ids = _reference(record.body)
    if ids is None:
        return record.status_code, record.body, True
    if rebuild is None:
        # The fingerprint holds the route's path, so only the route that kept it gets here.
        raise RuntimeError("this idempotency record is kept by reference; its route must rebuild it")
    return record.status_code, rebuild.body(ids), True
