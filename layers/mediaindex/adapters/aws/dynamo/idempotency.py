"""IdempotencyRepository on DynamoDB: one item per (tenant, key) carrying `expires_at_epoch`, the
table's TTL attribute (rounded up, so the item never disappears while the record is live).
DynamoDB deletes expired items some time after expiry (moto never), so reads check the expiry."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.table import ConditionFailed, Table, doc, key, n, s
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import IdempotencyRecord
from mediaindex.ports.idempotency import IdempotencyRepository

_SK = "IDEMPOTENCY"


def _pk(tenant_id: str, idempotency_key: str) -> str:
    return f"IDEMPOTENCY#{tenant_id}#{idempotency_key}"


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class DynamoIdempotencyRepository(IdempotencyRepository):
    def __init__(self, table: Table) -> None:
        self._t = table

    def get(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        item = self._t.get(_pk(tenant_id, key), _SK)
        if item is None:
            return None
        record = IdempotencyRecord.model_validate_json(doc(item))
        if _aware(record.expires_at) <= datetime.now(UTC):
            return None
        return record

    def put(self, record: IdempotencyRecord) -> None:
        expires = _aware(record.expires_at).timestamp()
        item = {
            **key(_pk(record.tenant_id, record.key), _SK),
            "type": s("idempotency"),
            ks.TTL_ATTRIBUTE: n(math.ceil(expires)),
            "doc": s(record.model_dump_json()),
        }
        try:
            # A live record wins; an expired one not yet removed by TTL is replaced.
            self._t.put(
                item,
                f"attribute_not_exists(pk) OR {ks.TTL_ATTRIBUTE} <= :now",
                {":now": n(int(time.time()))},
            )
        except ConditionFailed as e:
            raise ConflictError("the idempotency key is in use", code="idempotency_key_exists") from e
