"""Metadata store port: tenants, keys, indexes, assets, tasks, derivatives, segments, idempotency.

Lists are newest first (ids sort by creation time) and paged by opaque cursors. Every write that
guards an invariant is atomic in the adapter (a SQLite transaction, a DynamoDB condition or
transaction); `mutate_*` take a function that is applied to the current row inside that atomic
step and may be called more than once (optimistic retries), so it must be pure."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from mediaindex.domain.models import (
    ApiKey,
    Asset,
    AssetStatus,
    Derivative,
    IdempotencyRecord,
    Index,
    MediaType,
    Page,
    Segment,
    Task,
    Tenant,
)

AssetFn = Callable[[Asset], Asset]
TaskAssetFn = Callable[[Task, Asset], tuple[Task, Asset]]


def next_asset(current: Asset, new: Asset) -> Asset:
    """What a `mutate_*` stores: fn's result with the store's identity fields and the next version,
    whatever fn returned. Shared so both adapters pin the same fields."""
    return new.model_copy(
        update={
            "id": current.id,
            "tenant_id": current.tenant_id,
            "index_id": current.index_id,
            "version": current.version + 1,
        }
    )


def next_task(current: Task, new: Task) -> Task:
    return new.model_copy(
        update={
            "id": current.id,
            "tenant_id": current.tenant_id,
            "asset_id": current.asset_id,
            "version": current.version + 1,
        }
    )


class MetadataStore(ABC):
    # Tenants and keys
    @abstractmethod
    def create_tenant(self, tenant: Tenant) -> Tenant:
        """ConflictError(`tenant_name_already_exists`) when the name is taken."""

    @abstractmethod
    def get_tenant_by_name(self, name: str) -> Tenant | None: ...

    @abstractmethod
    def put_api_key(self, key: ApiKey) -> None: ...

    @abstractmethod
    def get_api_key_by_hash(self, key_hash: str) -> ApiKey | None: ...

    # Indexes
    @abstractmethod
    def create_index(self, index: Index) -> Index:
        """ConflictError(`index_name_already_exists`) when the tenant has an index of that name."""

    @abstractmethod
    def get_index(self, tenant_id: str, index_id: str) -> Index | None: ...

    @abstractmethod
    def list_indexes(self, tenant_id: str, *, limit: int, cursor: str | None) -> Page[Index]: ...

    @abstractmethod
    def update_index(self, index: Index) -> Index:
        """Writes `index` if its stored version is still `index.version`; returns it with version+1.
        ConflictError on a lost race or a duplicate name."""

    @abstractmethod
    def delete_index(self, tenant_id: str, index_id: str) -> bool:
        """Removes the index row (its assets must already be gone)."""

    # Assets
    @abstractmethod
    def create_asset(self, asset: Asset) -> Asset:
        """Inserts the asset and bumps its index's asset_count, atomically."""

    @abstractmethod
    def get_asset(self, asset_id: str, tenant_id: str | None = None) -> Asset | None:
        """`tenant_id=None` only for internal callers (pipeline, upload events)."""

    @abstractmethod
    def list_assets(
        self,
        tenant_id: str,
        *,
        index_id: str | None = None,
        status: AssetStatus | None = None,
        media_type: MediaType | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[Asset]: ...

    @abstractmethod
    def mutate_asset(self, asset_id: str, fn: AssetFn) -> Asset:
        """Atomically applies `fn` and bumps the version. NotFoundError when the asset is gone."""

    @abstractmethod
    def delete_asset(self, asset_id: str) -> Asset | None:
        """Removes the asset with its tasks, derivatives and segments and decrements its index's
        asset_count, atomically. Returns the deleted asset, or None when it was already gone."""

    # Tasks
    @abstractmethod
    def save_task_and_asset(self, task: Task, asset: Asset) -> tuple[Task, Asset]:
        """Inserts `task` and writes `asset` if its stored version is still `asset.version`, in one
        transaction; ConflictError otherwise (so a duplicate upload event starts nothing)."""

    @abstractmethod
    def get_task(self, task_id: str, tenant_id: str | None = None) -> Task | None: ...

    @abstractmethod
    def list_tasks(
        self,
        tenant_id: str,
        *,
        asset_id: str | None = None,
        active_only: bool = False,
        limit: int,
        cursor: str | None,
    ) -> Page[Task]: ...

    @abstractmethod
    def mutate_task_and_asset(self, task_id: str, fn: TaskAssetFn) -> tuple[Task, Asset]:
        """Atomically applies `fn` to a task and its asset. NotFoundError when either is gone."""

    # Outputs
    @abstractmethod
    def replace_derivatives(self, asset_id: str, kinds: list[str], derivatives: list[Derivative]) -> None:
        """Replaces every derivative of `kinds` for the asset, so a re-run leaves one set."""

    @abstractmethod
    def list_derivatives(self, asset_id: str) -> list[Derivative]: ...

    @abstractmethod
    def replace_segments(self, asset_id: str, segments: list[Segment]) -> None: ...

    @abstractmethod
    def list_segments(self, asset_id: str, *, limit: int, cursor: str | None) -> Page[Segment]: ...

    # Idempotency
    @abstractmethod
    def get_idempotency(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        """Expired records read as None."""

    @abstractmethod
    def put_idempotency(self, record: IdempotencyRecord) -> None:
        """ConflictError when a live record with that key exists."""
