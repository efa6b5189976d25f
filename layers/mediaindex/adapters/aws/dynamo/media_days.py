"""The tenant's media time per UTC day on DynamoDB (ports/tasks.py `media_counted`).

| Item                 | pk              | sk                    |
|----------------------|-----------------|-----------------------|
| a day's counter shard | TENANT#{tenant} | MEDIA#{day}#{0..SHARDS-1} |

Added to by ADD inside the transaction of the task write that counts (a task created knowing its
asset's duration, or the probe that learns it); a task always adds to the same shard (by a hash of
its asset id), so a tenant's busy day spreads over SHARDS items, as the usage counters do, instead
of one hot item whose transaction conflicts would fail creates. A read is one Query of the day's
shards, summed. Each item expires KEEP_DAYS after its day (only today's is read)."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.items import tenant_pk
from mediaindex.adapters.aws.dynamo.table import Item, Table, n
from mediaindex.adapters.aws.dynamo.usage import SHARDS

PREFIX = "MEDIA#"
KEEP_DAYS = 3
_COUNTER = "media_ms"


def add_media(table: Table, tenant_id: str, asset_id: str, counted: tuple[str, int] | None) -> list[Item]:
    """The transaction item adding a task's count to its day (none when it counts nothing)."""
    if counted is None:
        return []
    day, ms = counted
    expires = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() + KEEP_DAYS * 86400
    sk = f"{PREFIX}{day}#{zlib.crc32(asset_id.encode()) % SHARDS}"
    return [
        table.tx_update(
            tenant_pk(tenant_id),
            sk,
            f"ADD {_COUNTER} :ms SET #ttl = :ttl",
            "",
            {"#ttl": ks.TTL_ATTRIBUTE},
            {":ms": n(ms), ":ttl": n(int(expires))},
        )
    ]


def read_media(table: Table, tenant_id: str, day: str) -> int:
    items = table.partition(tenant_pk(tenant_id), prefix=f"{PREFIX}{day}#")
    return sum(int(it[_COUNTER]["N"]) for it in items if _COUNTER in it)
