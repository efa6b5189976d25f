"""PurgeLedger on DynamoDB: one small partition, pk `PURGES`, one item per index whose purge was
asked for and has not finished (sk `{tenant}#{index}`, `noted_at` in unix seconds). Deletes are
rare and the items leave when their purge ends, so the partition stays tiny; the sweep reads it
with one Query instead of scanning the table for `deleting` indexes."""

from __future__ import annotations

import contextlib
import time

from mediaindex.adapters.aws.dynamo.table import ConditionFailed, Table, key, n, s
from mediaindex.ports.indexes import PendingPurge, PurgeLedger

_PK = "PURGES"


def _sk(tenant_id: str, index_id: str) -> str:
    return f"{tenant_id}#{index_id}"


class DynamoPurgeLedger(PurgeLedger):
    def __init__(self, table: Table) -> None:
        self._t = table

    def add(self, tenant_id: str, index_id: str) -> None:
        item = {
            **key(_PK, _sk(tenant_id, index_id)),
            "type": s("purge"),
            "tenant_id": s(tenant_id),
            "index_id": s(index_id),
            "noted_at": n(round(time.time(), 3)),
        }
        with contextlib.suppress(ConditionFailed):  # noted already: the first note's age stays
            self._t.put(item, "attribute_not_exists(pk)")

    def remove(self, tenant_id: str, index_id: str) -> None:
        with contextlib.suppress(ConditionFailed):
            self._t.delete(_PK, _sk(tenant_id, index_id), "attribute_exists(pk)", {})

    def pending(self, *, limit: int) -> list[PendingPurge]:
        now = time.time()
        out = [
            PendingPurge(
                tenant_id=str(item["tenant_id"]["S"]),
                index_id=str(item["index_id"]["S"]),
                age_s=now - float(item["noted_at"]["N"]),
            )
            for item in self._t.partition(_PK)
        ]
        out.sort(key=lambda p: -p.age_s)
        return out[:limit]
