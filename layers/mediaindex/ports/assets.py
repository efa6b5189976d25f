"""Assets: one media file in one index. Every call names the tenant; an asset of another tenant
reads as missing, so ids cannot be probed across tenants.

`create` and `delete` also keep the index's `asset_count`, and `delete` removes what the asset owns
(tasks, derivatives, segments), each in one atomic step of the adapter (a SQLite transaction, a
DynamoDB TransactWriteItems or batched deletes after a guarded write)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable

from mediaindex.domain.models import Asset, AssetStatus, Derivative, FeatureStatus, MediaType, Page

AssetFn = Callable[[Asset], Asset]

# Usage counters (`AssetRepository.usage_by_index`), by name: "assets:<media type>",
# "bytes:<media type>" (originals), "runs:<feature>.<state>" (queued runs are not counted) and
# DERIVATIVE_BYTES. One function names what an asset adds, so both adapters count alike.
DERIVATIVE_BYTES = "derivative_bytes"
UsageCounts = dict[str, int]


def asset_usage(asset: Asset | None) -> Counter[str]:
    """What one asset adds to its index's usage counters (nothing for None: no asset)."""
    out: Counter[str] = Counter()
    if asset is None:
        return out
    kind = asset.media_type.value if asset.media_type else "unknown"
    out[f"assets:{kind}"] = 1
    out[f"bytes:{kind}"] = asset.size_bytes or 0
    for feature, fs in asset.features.items():
        if fs.state != FeatureStatus.QUEUED:
            out[f"runs:{feature.value}.{fs.state.value}"] += 1
    return out


def usage_change(old: Asset | None, new: Asset | None) -> dict[str, int]:
    """The counters that change when `old` becomes `new` (None: not there), without zeros."""
    delta = asset_usage(new)
    delta.subtract(asset_usage(old))
    return {name: v for name, v in delta.items() if v}


def derivative_bytes(derivatives: list[Derivative]) -> int:
    return sum(d.size_bytes for d in derivatives)


def next_asset(current: Asset, new: Asset) -> Asset:
    """What a mutation stores: fn's result with the stored identity fields and the next version,
    whatever fn returned. Shared so both adapters pin the same fields."""
    return new.model_copy(
        update={
            "id": current.id,
            "tenant_id": current.tenant_id,
            "index_id": current.index_id,
            "version": current.version + 1,
        }
    )


class AssetRepository(ABC):
    @abstractmethod
    def create(self, asset: Asset) -> Asset:
        """Inserts the asset and bumps its index's asset_count, atomically. NotFoundError
        (`index_not_found`) when the index is gone or being deleted."""

    @abstractmethod
    def get(self, tenant_id: str, asset_id: str) -> Asset | None: ...

    def get_many(self, tenant_id: str, asset_ids: list[str]) -> dict[str, Asset]:
        """The tenant's assets among `asset_ids`, by id (missing and other tenants' left out).
        Stores override it with one batched read; this fallback reads them one by one."""
        found = {aid: self.get(tenant_id, aid) for aid in dict.fromkeys(asset_ids)}
        return {aid: a for aid, a in found.items() if a is not None}

    @abstractmethod
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
        """Newest first, paged by an opaque cursor."""

    @abstractmethod
    def mutate(self, tenant_id: str, asset_id: str, fn: AssetFn) -> Asset:
        """Atomically applies `fn` to the stored asset and bumps its version. `fn` may run more than
        once (optimistic retries), so it must be pure. NotFoundError when the asset is gone."""

    @abstractmethod
    def delete(self, tenant_id: str, asset_id: str) -> Asset | None:
        """Removes the asset with its tasks, derivatives and segments and decrements its index's
        asset_count. Returns the deleted asset, or None when it was already gone."""

    def usage_by_index(self, tenant_id: str) -> dict[str, UsageCounts]:
        """The tenant's usage counters by index id (indexes being deleted included: the caller
        filters them), read in a constant number of store calls. The stores keep them beside
        every write that changes them; a tenant whose data predates the counters gets them built
        once, from a full read. Not abstract: a wrapper over a repository (VisibleAssets) has no
        counters of its own, and the usage service is handed the store's repository."""
        raise NotImplementedError(f"{type(self).__name__} keeps no usage counters")
