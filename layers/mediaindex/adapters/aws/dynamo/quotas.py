"""Tenant quotas and request windows on the DynamoDB table (used by DynamoKeyRepository).

| Item                 | pk                  | sk                      |
|----------------------|---------------------|-------------------------|
| tenant quotas        | TENANT#{tenant}     | QUOTAS                  |
| request window (TTL) | RATE#{tenant}       | {window start, epoch s} |

A request window is one conditional `ADD hits :one` (TransactWriteItems of one update): every
Lambda instance counts into the same item, so the limit holds across all of them. The item
expires through the table's TTL a little after its window ends."""

from __future__ import annotations

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.items import tenant_pk
from mediaindex.adapters.aws.dynamo.table import Table, doc, n, s
from mediaindex.adapters.aws.dynamo.table import key as primary_key
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.quotas import WINDOW_S, Quotas

_QUOTAS_SK = "QUOTAS"
_KEEP_S = 2 * WINDOW_S  # how long a window's item outlives its start (TTL deletes it later)


def _window_pk(tenant_id: str) -> str:
    return f"RATE#{tenant_id}"


class DynamoQuotas:
    def __init__(self, table: Table) -> None:
        self._t = table

    def get(self, tenant_id: str) -> Quotas | None:
        item = self._t.get(tenant_pk(tenant_id), _QUOTAS_SK)
        return Quotas.model_validate_json(doc(item)) if item else None

    def put(self, tenant_id: str, quotas: Quotas) -> None:
        self._t.put(
            {
                **primary_key(tenant_pk(tenant_id), _QUOTAS_SK),
                "type": s("tenant_quotas"),
                "doc": s(quotas.model_dump_json()),
            }
        )

    def requests_counted(self, tenant_id: str, window_start: int) -> int:
        item = self._t.get(_window_pk(tenant_id), str(window_start))
        return int(item["hits"]["N"]) if item and "hits" in item else 0

    def count_request(self, tenant_id: str, window_start: int, limit: int) -> bool:
        update = self._t.tx_update(
            _window_pk(tenant_id),
            str(window_start),
            f"ADD hits :one SET {ks.TTL_ATTRIBUTE} = :ttl",
            "attribute_not_exists(hits) OR hits < :limit",
            {},
            {":one": n(1), ":limit": n(limit), ":ttl": n(window_start + _KEEP_S)},
        )
        try:
            # Table.transact retries a write that lost a race with another on this item.
            self._t.transact([update])
        except ConflictError:  # the window is full (ConditionFailed), or it kept losing races
            return False  # that many requests at once for one tenant: its limit is being hit anyway
        return True
