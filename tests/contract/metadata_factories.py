"""Builders shared by the metadata repository contract tests (plain functions, not fixtures)."""

from __future__ import annotations

from datetime import timedelta

from mediaindex.domain.ids import new_id
from mediaindex.domain.models import (
    Asset,
    AssetStatus,
    Derivative,
    Feature,
    FeatureState,
    IdempotencyRecord,
    Index,
    MediaType,
    Segment,
    Task,
    TaskKind,
    TaskState,
    utcnow,
)
from mediaindex.ports.stores import MetadataStores

T1, T2 = "ten_one", "ten_two"
_clock = [1_700_000_000_000]


def new_test_id(prefix: str) -> str:
    """Ids one millisecond apart, so creation order is id order even within one millisecond."""
    _clock[0] += 1
    return new_id(prefix, now_ms=_clock[0])


def make_index(stores: MetadataStores, name: str = "clips", tenant: str = T1) -> Index:
    return stores.indexes.create(Index(id=new_test_id("idx"), tenant_id=tenant, name=name))


def make_asset(
    stores: MetadataStores,
    index: Index,
    *,
    status: AssetStatus = AssetStatus.PROCESSING,
    media_type: MediaType | None = MediaType.VIDEO,
    name: str = "clip.mp4",
) -> Asset:
    return stores.assets.create(
        Asset(
            id=new_test_id("ast"),
            tenant_id=index.tenant_id,
            index_id=index.id,
            name=name,
            status=status,
            media_type=media_type,
        )
    )


def make_task(asset: Asset, state: TaskState = TaskState.QUEUED) -> Task:
    return Task(
        id=new_test_id("tsk"),
        tenant_id=asset.tenant_id,
        asset_id=asset.id,
        index_id=asset.index_id,
        kind=TaskKind.INGEST,
        state=state,
        features={Feature.PROXY: FeatureState()},
    )


def start_task(
    stores: MetadataStores, asset: Asset, state: TaskState = TaskState.QUEUED
) -> tuple[Task, Asset]:
    current = stores.assets.get(asset.tenant_id, asset.id)
    assert current is not None
    return stores.tasks.create_with_asset(make_task(current, state), current)


def record(key: str, *, expires_in: timedelta = timedelta(hours=24), tenant: str = T1) -> IdempotencyRecord:
    return IdempotencyRecord(
        tenant_id=tenant,
        key=key,
        request_hash="h1",
        status_code=201,
        body={"id": "ast_x"},
        expires_at=utcnow() + expires_in,
    )


def deriv(asset: Asset, kind: str, index: int = 0, size: int = 10) -> Derivative:
    return Derivative(
        asset_id=asset.id,
        kind=kind,
        key=f"k/{kind}/{index}",
        content_type="image/jpeg",
        size_bytes=size,
        index=index,
    )


def segment(asset: Asset, start: float = 0.0, end: float = 1.0, kind: str = "shot") -> Segment:
    return Segment(id=new_test_id("seg"), asset_id=asset.id, start=start, end=end, kind=kind)
