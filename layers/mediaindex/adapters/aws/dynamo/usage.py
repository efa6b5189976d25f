"""Usage counters on DynamoDB (names and what an asset adds: ports/assets.py).

| Item                            | pk              | sk                          |
|---------------------------------|-----------------|-----------------------------|
| counter shard                   | TENANT#{tenant} | USAGE#{index}#{0..SHARDS-1} |
| the tenant's counters are whole | TENANT#{tenant} | USAGE                       |
| derivative bytes counted        | ASSET#{asset}   | USAGE                       |

A shard holds one number attribute per counter, changed only by ADD inside the transaction of
the write that changes it; an asset always adds to the same shard (by a hash of its id), so one
index's writes spread over SHARDS items instead of one hot item, and a read is one Query of the
tenant's "USAGE" items (a few per index), summed.

An asset item whose values are in the counters carries `in_usage` (every asset write of this
release stores it, with the change it makes, conditional on the version it read). Asset items an
earlier release wrote lack it: `read_counted` adopts such an asset before a write uses it, adding
its values and its derivatives in one transaction conditional on the asset still being unadopted,
so it is counted once. The asset's derivative bytes counted so far sit on its own USAGE item:
after derivatives are replaced, `recount_derivatives` sets it to what the partition now holds and
adds the difference, compare-and-set on the value it read (a re-run or a concurrent replace
converges on the truth). The first read of a tenant without the marker adopts every unadopted
asset it lists (the backfill, once), then writes the marker."""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Mapping

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.items import (
    AFTER_DERIVS,
    ASSET_SK,
    COUNTED,
    asset_from,
    asset_pk,
    assets_of_tenant,
    is_asset_of,
    tenant_pk,
)
from mediaindex.adapters.aws.dynamo.table import ConditionFailed, Item, Table, doc, key, n, retrying, s
from mediaindex.domain.models import Asset, Derivative
from mediaindex.ports.assets import DERIVATIVE_BYTES, UsageCounts, asset_usage, derivative_bytes

SHARDS = 4
USAGE_SK = "USAGE"
_SHARD_PREFIX = USAGE_SK + "#"
_DERIVS = "derivative_bytes"  # on the asset's USAGE item
_MISSING = "attribute_not_exists(pk)"


def _shard_sk(index_id: str, asset_id: str) -> str:
    return f"{_SHARD_PREFIX}{index_id}#{zlib.crc32(asset_id.encode()) % SHARDS}"


def index_shard_keys(tenant_id: str, index_id: str) -> list[Item]:
    """The keys of every counter shard of the index (what a whole-index purge removes)."""
    return [key(tenant_pk(tenant_id), f"{_SHARD_PREFIX}{index_id}#{i}") for i in range(SHARDS)]


def add_usage(table: Table, asset: Asset, delta: Mapping[str, int]) -> list[Item]:
    """The transaction item adding `delta` to the asset's shard (none when nothing changes)."""
    changed = [(name, v) for name, v in delta.items() if v]
    if not changed:
        return []
    names = {f"#c{i}": name for i, (name, _) in enumerate(changed)}
    values = {f":c{i}": n(v) for i, (_, v) in enumerate(changed)}
    update = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(changed)))
    pk, sk = tenant_pk(asset.tenant_id), _shard_sk(asset.index_id, asset.id)
    return [table.tx_update(pk, sk, update, "", names, values)]


def counted_derivatives(table: Table, asset_id: str) -> tuple[int, str, Item]:
    """The derivative bytes counted for the asset (0 while its USAGE item is missing), with the
    condition (and its values) that they are still what this read: a write of the USAGE item
    under it loses to any other change of the count."""
    item = table.get(asset_pk(asset_id), USAGE_SK)
    if item is None:
        return 0, _MISSING, {}
    counted = int(item[_DERIVS]["N"])
    return counted, f"{_DERIVS} = :seen", {":seen": n(counted)}


def _usage_item(asset_id: str, derivs: int) -> Item:
    return {**key(asset_pk(asset_id), USAGE_SK), "type": s("asset_usage"), _DERIVS: n(derivs)}


def _derivatives_of(table: Table, tenant_id: str, asset_id: str) -> tuple[Item, int] | None:
    """The asset item and the bytes of its derivatives (one Query), or None when not the tenant's."""
    items = table.partition(asset_pk(asset_id), between=(ASSET_SK, AFTER_DERIVS))
    if not items or not is_asset_of(items[0], tenant_id):
        return None
    return items[0], derivative_bytes([Derivative.model_validate_json(doc(it)) for it in items[1:]])


def _adopt(table: Table, item: Item, derivs: int) -> None:
    """Counts an unadopted asset item with `derivs` bytes of derivatives, once (ConditionFailed
    when it was adopted or changed meanwhile). An asset that has a USAGE item was adopted before
    and then rewritten by an earlier release (a rolling deploy): its values are counted already,
    so only its derivatives are set right, and its writes never stay blocked."""
    asset = asset_from(item)
    pk = asset_pk(asset.id)
    counted, unchanged, seen = counted_derivatives(table, asset.id)
    values = asset_usage(asset) if unchanged == _MISSING else {}
    table.transact(
        [
            table.tx_update(
                pk,
                ASSET_SK,
                f"SET {COUNTED} = :yes",
                f"version = :version AND attribute_not_exists({COUNTED})",
                {},
                {":yes": {"BOOL": True}, ":version": n(asset.version)},
            ),
            table.tx_put(_usage_item(asset.id, derivs), unchanged, seen),
            *add_usage(table, asset, {**values, DERIVATIVE_BYTES: derivs - counted}),
        ]
    )


def read_counted(table: Table, tenant_id: str, asset_id: str) -> Asset | None:
    """The tenant's asset (consistent), adopted into the counters first if an earlier release
    wrote it; None when missing or another tenant's."""

    def attempt() -> Asset | None:
        item = table.get(asset_pk(asset_id), ASSET_SK)
        if item is None or not is_asset_of(item, tenant_id):
            return None
        if COUNTED not in item:
            found = _derivatives_of(table, tenant_id, asset_id)
            if found is None:
                return None
            _adopt(table, *found)
            raise ConditionFailed([True])  # read it again, adopted
        return asset_from(item)

    return retrying(attempt, f"asset {asset_id}")


def recount_derivatives(table: Table, tenant_id: str, asset_id: str) -> None:
    """Sets the asset's counted derivative bytes to what its partition holds now, adding the
    difference (after its derivatives were replaced). Nothing when the asset is gone."""

    def attempt() -> None:
        found = _derivatives_of(table, tenant_id, asset_id)
        if found is None:
            return
        item, derivs = found
        if COUNTED not in item:
            _adopt(table, item, derivs)
            return
        counted, unchanged, seen = counted_derivatives(table, asset_id)
        if counted == derivs:
            return
        table.transact(
            [
                # The asset still there: a delete in between took the count it read away.
                {
                    "ConditionCheck": {
                        "TableName": table.name,
                        "Key": key(asset_pk(asset_id), ASSET_SK),
                        "ConditionExpression": f"attribute_exists({COUNTED})",
                    }
                },
                table.tx_put(_usage_item(asset_id, derivs), unchanged, seen),
                *add_usage(table, asset_from(item), {DERIVATIVE_BYTES: derivs - counted}),
            ]
        )

    retrying(attempt, f"derivatives of asset {asset_id}")


def read_usage(table: Table, tenant_id: str) -> dict[str, UsageCounts]:
    """The tenant's counters by index: one Query (more only past 1 MB of counters). The first
    read of a tenant whose marker is missing runs the backfill first."""
    items = table.partition(tenant_pk(tenant_id), prefix=USAGE_SK)
    if not any(it[ks.SK]["S"] == USAGE_SK for it in items):
        _backfill(table, tenant_id)
        items = table.partition(tenant_pk(tenant_id), prefix=USAGE_SK)
    out: dict[str, UsageCounts] = defaultdict(dict)
    for it in items:
        sk = str(it[ks.SK]["S"])
        if not sk.startswith(_SHARD_PREFIX):
            continue
        counts = out[sk[len(_SHARD_PREFIX) :].rsplit("#", 1)[0]]
        for name, value in it.items():
            if "N" in value:
                counts[name] = counts.get(name, 0) + int(value["N"])
    return dict(out)


def _backfill(table: Table, tenant_id: str) -> None:
    """Adopts every asset of the tenant that is not counted yet, then marks the tenant whole."""
    for it in table.keys_lacking(assets_of_tenant(tenant_id), COUNTED):
        read_counted(table, tenant_id, str(it[ks.PK]["S"])[len(asset_pk("")) :])
    table.put({**key(tenant_pk(tenant_id), USAGE_SK), "type": s("usage_marker")})
