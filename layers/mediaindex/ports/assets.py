"""Assets: one media file in one index. Every call names the tenant; an asset of another tenant
reads as missing, so ids cannot be probed across tenants.

`create` and `delete` also keep the index's `asset_count`, and `delete` removes what the asset owns
(tasks, derivatives, segments), each in one atomic step of the adapter (a SQLite transaction, a
DynamoDB TransactWriteItems or batched deletes after a guarded write)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from mediaindex.domain.models import Asset, AssetStatus, MediaType, Page

AssetFn = Callable[[Asset], Asset]


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
