"""AssetRepository on DynamoDB: the asset item heads its own partition, which also holds what the
asset owns (derivatives, segments, pointers to its tasks), so deleting it is one strongly
consistent Query plus batched deletes. The item carries `tenant_id`: every call checks it, and an
asset of another tenant reads as missing. Inserts and deletes change the index's `asset_count` in
the same transaction; `mutate` reads, applies and writes conditionally on the version, retrying.
Every write adds what it changes to the tenant's usage counters in its transaction (usage.py)."""

from __future__ import annotations

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.items import (
    ASSET_SK,
    TASK_REF_PREFIX,
    TASK_SK,
    asset_from,
    asset_item,
    asset_not_found,
    asset_pk,
    assets_of_index,
    assets_of_tenant,
    find_asset,
    index_sk,
    is_asset_of,
    tenant_pk,
)
from mediaindex.adapters.aws.dynamo.table import (
    MAX_ATTEMPTS,
    ConditionFailed,
    Item,
    Table,
    backoff,
    key,
    n,
    retrying,
)
from mediaindex.adapters.aws.dynamo.usage import (
    USAGE_SK,
    add_usage,
    counted_derivatives,
    read_counted,
    read_usage,
)
from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.models import Asset, AssetStatus, MediaType, Page
from mediaindex.ports.assets import (
    DERIVATIVE_BYTES,
    AssetFn,
    AssetRepository,
    UsageCounts,
    next_asset,
    usage_change,
)

_VERSION_IS = "version = :expected"


class DynamoAssetRepository(AssetRepository):
    def __init__(self, table: Table) -> None:
        self._t = table

    def _count_update(self, asset: Asset, delta: int) -> Item:
        # The condition keeps ADD on a missing index from creating a stray item.
        return self._t.tx_update(
            tenant_pk(asset.tenant_id),
            index_sk(asset.index_id),
            "ADD asset_count :d",
            "attribute_exists(pk)",
            {},
            {":d": n(delta)},
        )

    def create(self, asset: Asset) -> Asset:
        stored = asset.model_copy(update={"version": asset.version + 1})
        try:
            self._t.transact(
                [
                    self._t.tx_put(asset_item(stored), "attribute_not_exists(pk)"),
                    self._count_update(stored, 1),
                    *add_usage(self._t, stored, usage_change(None, stored)),
                ]
            )
        except ConditionFailed as e:
            if e.at(1):
                raise NotFoundError(
                    f"index {asset.index_id} not found", code="index_not_found", field="index_id"
                ) from e
            raise ConflictError(f"asset {asset.id} exists", code="asset_already_exists") from e
        return stored

    def get(self, tenant_id: str, asset_id: str) -> Asset | None:
        return find_asset(self._t, tenant_id, asset_id)

    def get_many(self, tenant_id: str, asset_ids: list[str]) -> dict[str, Asset]:
        items = self._t.batch_get([(asset_pk(a), ASSET_SK) for a in asset_ids])
        assets = [asset_from(i) for i in items if is_asset_of(i, tenant_id)]
        return {a.id: a for a in assets}

    def list(
        self,
        tenant_id: str,
        *,
        index_id: str | None = None,
        status: AssetStatus | None = None,
        media_type: MediaType | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[Asset]:
        filters: list[tuple[str, list[str]]] = []
        if status is not None:
            filters.append(("status", [AssetStatus(status).value]))
        if media_type is not None:
            filters.append(("media_type", [MediaType(media_type).value]))
        if index_id is None:
            listing = assets_of_tenant(tenant_id)
        else:  # index ids are unguessable, but the tenant is still checked on every item
            listing = assets_of_index(index_id)
            filters.append(("tenant_id", [tenant_id]))
        return self._t.query_page(asset_from, listing, filters=filters, limit=limit, cursor=cursor)

    def mutate(self, tenant_id: str, asset_id: str, fn: AssetFn) -> Asset:
        def attempt() -> Asset:
            current = read_counted(self._t, tenant_id, asset_id)
            if current is None:
                raise asset_not_found(asset_id)
            new = next_asset(current, fn(current.model_copy(deep=True)))  # `current` stays the before
            expected = {":expected": n(current.version)}
            counters = add_usage(self._t, new, usage_change(current, new))
            if counters:
                self._t.transact([self._t.tx_put(asset_item(new), _VERSION_IS, expected), *counters])
            else:  # most writes change no counter (a status): one PutItem, as before
                self._t.put(asset_item(new), _VERSION_IS, expected)
            return new

        return retrying(attempt, f"asset {asset_id}")

    def delete(self, tenant_id: str, asset_id: str) -> Asset | None:
        for attempt in range(MAX_ATTEMPTS):
            item = self._t.get(asset_pk(asset_id), ASSET_SK)
            if item is None:
                self._sweep(asset_id)  # what a delete that stopped half-way left behind
                return None
            if not is_asset_of(item, tenant_id):
                return None
            asset = read_counted(self._t, tenant_id, asset_id)  # adopts one an earlier release wrote
            if asset is None:
                continue
            expected = {":expected": n(asset.version)}
            derivs, unchanged, seen = counted_derivatives(self._t, asset_id)
            try:
                # The asset goes first, with its count: a concurrent task start then fails its
                # version check instead of adding work to an asset being deleted. Its usage goes
                # with it, as counted: the derivative count it read must still hold.
                self._t.transact(
                    [
                        self._t.tx_delete(asset_pk(asset_id), ASSET_SK, _VERSION_IS, expected),
                        self._count_update(asset, -1),
                        self._t.tx_delete(asset_pk(asset_id), USAGE_SK, unchanged, seen),
                        *add_usage(self._t, asset, {**usage_change(asset, None), DERIVATIVE_BYTES: -derivs}),
                    ]
                )
            except ConditionFailed as e:
                if e.at(0) or e.at(2):
                    backoff(attempt)
                    continue  # changed or deleted meanwhile: look again
                try:  # the index is gone already (index deletion sweeps assets after it)
                    self._t.delete(asset_pk(asset_id), ASSET_SK, _VERSION_IS, expected)
                except ConditionFailed:
                    backoff(attempt)
                    continue
            self._sweep(asset_id)
            return asset
        raise ConflictError(f"asset {asset_id} kept changing; not deleted", code="version_conflict")

    def usage_by_index(self, tenant_id: str) -> dict[str, UsageCounts]:
        return read_usage(self._t, tenant_id)

    def _sweep(self, asset_id: str) -> None:
        """Deletes what the asset owned: task pointers and their tasks, derivatives, segments."""
        keys: list[Item] = []
        for it in self._t.partition(asset_pk(asset_id), keys_only=True):
            keys.append(it)
            sk = it[ks.SK]["S"]
            if sk.startswith(TASK_REF_PREFIX):
                keys.append(key(sk, TASK_SK))
        self._t.batch_delete(keys)
