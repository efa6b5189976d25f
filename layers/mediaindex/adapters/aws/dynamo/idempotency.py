"""IdempotencyRepository on DynamoDB: one item per (tenant, key) carrying `expires_at_epoch`, the
table's TTL attribute (rounded up, so the item never disappears while the record is live).
DynamoDB deletes expired items some time after expiry (moto never), so reads check the expiry.

A reservation is the same item with `state = pending`, a `res_token` and its lease as the TTL
attribute: reserving is one PutItem conditioned on the key being free (absent, or its TTL passed),
completing a PutItem conditioned on `res_token`, releasing a DeleteItem conditioned on it.
Items written by earlier releases (no `state`) are completed records."""

from __future__ import annotations

import contextlib
import math
import time
from datetime import UTC, datetime

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.table import ConditionFailed, Item, Table, doc, key, n, s
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import IdempotencyRecord
from mediaindex.ports.idempotency import IdempotencyRepository, Pending

_SK = "IDEMPOTENCY"
_PENDING = "pending"
# A live record or an unexpired reservation holds the key; anything else may be replaced.
_FREE = f"attribute_not_exists(pk) OR {ks.TTL_ATTRIBUTE} <= :now"


def _pk(tenant_id: str, idempotency_key: str) -> str:
    return f"IDEMPOTENCY#{tenant_id}#{idempotency_key}"


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _now() -> dict[str, str]:
    return n(int(time.time()))


def pending_item(p: Pending) -> Item:
    return {
        **key(_pk(p.tenant_id, p.key), _SK),
        "type": s("idempotency"),
        "state": s(_PENDING),
        "res_token": s(p.token),
        "request_hash": s(p.request_hash),
        ks.TTL_ATTRIBUTE: n(math.ceil(_aware(p.lease_until).timestamp())),
    }


def _record_item(record: IdempotencyRecord) -> Item:
    return {
        **key(_pk(record.tenant_id, record.key), _SK),
        "type": s("idempotency"),
        ks.TTL_ATTRIBUTE: n(math.ceil(_aware(record.expires_at).timestamp())),
        "doc": s(record.model_dump_json()),
    }


class DynamoIdempotencyRepository(IdempotencyRepository):
    def __init__(self, table: Table) -> None:
        self._t = table

    def lookup(self, tenant_id: str, key: str) -> IdempotencyRecord | Pending | None:
        item = self._t.get(_pk(tenant_id, key), _SK)
        if item is None:
            return None
        if item.get("state", {}).get("S") == _PENDING:
            # The lease is the TTL attribute: judged as the conditional writes judge it.
            lease = int(item[ks.TTL_ATTRIBUTE]["N"])
            if lease <= int(time.time()):
                return None
            return Pending(
                tenant_id=tenant_id,
                key=key,
                request_hash=str(item["request_hash"]["S"]),
                token=str(item["res_token"]["S"]),
                lease_until=datetime.fromtimestamp(lease, UTC),
            )
        record = IdempotencyRecord.model_validate_json(doc(item))
        if _aware(record.expires_at) <= datetime.now(UTC):
            return None
        return record

    def get(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        found = self.lookup(tenant_id, key)
        return found if isinstance(found, IdempotencyRecord) else None

    def put(self, record: IdempotencyRecord) -> None:
        try:
            self._t.put(_record_item(record), _FREE, {":now": _now()})
        except ConditionFailed as e:
            raise ConflictError("the idempotency key is in use", code="idempotency_key_exists") from e

    def reserve(self, pending: Pending) -> bool:
        try:
            self._t.put(pending_item(pending), _FREE, {":now": _now()})
        except ConditionFailed:
            return False
        return True

    def complete(self, record: IdempotencyRecord, token: str) -> bool:
        try:
            self._t.put(_record_item(record), "res_token = :t", {":t": s(token)})
        except ConditionFailed:
            return False
        return True

    def release(self, tenant_id: str, key: str, token: str) -> None:
        # No longer ours (a completed record, another reservation): it stays.
        with contextlib.suppress(ConditionFailed):
            self._t.delete(_pk(tenant_id, key), _SK, "res_token = :t", {":t": s(token)})
