"""The release sample: the data in tests/fixtures/metadata/ (a SQLite dump, DynamoDB items) as the
release before the per-aggregate repositories wrote it, how to write the same through today's
repositories, and what reading it must give. Plain functions used by the adapter tests."""

from __future__ import annotations

from datetime import UTC, datetime

from mediaindex.domain.models import (
    ApiKey,
    Asset,
    AssetStatus,
    Derivative,
    Feature,
    FeatureState,
    FeatureStatus,
    IdempotencyRecord,
    Index,
    MediaType,
    Segment,
    Task,
    TaskKind,
    TaskState,
    Tenant,
)
from mediaindex.ports.stores import MetadataStores

SAMPLE_T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SAMPLE_A = "ten_01HX0000000000000000000001"
SAMPLE_B = "ten_01HX0000000000000000000002"
SAMPLE_INDEX = "idx_01HX0000000000000000000001"
SAMPLE_ASSET = "ast_01HX0000000000000000000001"
SAMPLE_TASK = "tsk_01HX0000000000000000000001"


def write_release_sample(stores: MetadataStores) -> None:
    """Writes, through today's repositories, exactly what the fixtures hold (the previous release
    wrote the same calls through its MetadataStore): comparing the two pins the stored format."""
    t0, far = SAMPLE_T0, datetime(2099, 1, 1, tzinfo=UTC)
    stores.keys.create_tenant(Tenant(id=SAMPLE_A, name="acme", created_at=t0))
    stores.keys.create_tenant(Tenant(id=SAMPLE_B, name="globex", created_at=t0))
    stores.keys.put_key(
        ApiKey(
            id="key_01HX0000000000000000000001",
            tenant_id=SAMPLE_A,
            key_hash="ab" * 32,
            prefix="mi_live_ab",
            created_at=t0,
        )
    )
    b_index = "idx_01HX0000000000000000000002"
    stores.indexes.create(
        Index(
            id=SAMPLE_INDEX,
            tenant_id=SAMPLE_A,
            name="clips",
            description="old clips",
            created_at=t0,
            updated_at=t0,
        )
    )
    stores.indexes.create(Index(id=b_index, tenant_id=SAMPLE_B, name="clips", created_at=t0, updated_at=t0))
    asset = stores.assets.create(
        Asset(
            id=SAMPLE_ASSET,
            tenant_id=SAMPLE_A,
            index_id=SAMPLE_INDEX,
            name="talk.mp4",
            media_type=MediaType.VIDEO,
            status=AssetStatus.AWAITING_UPLOAD,
            user_metadata={"camera": "a"},
            created_at=t0,
            updated_at=t0,
        )
    )
    stores.assets.create(
        Asset(
            id="ast_01HX0000000000000000000002",
            tenant_id=SAMPLE_A,
            index_id=SAMPLE_INDEX,
            name="notes.txt",
            media_type=None,
            status=AssetStatus.FAILED,
            created_at=t0,
            updated_at=t0,
        )
    )
    stores.assets.create(
        Asset(
            id="ast_01HX0000000000000000000003",
            tenant_id=SAMPLE_B,
            index_id=b_index,
            name="b.mp4",
            media_type=MediaType.AUDIO,
            status=AssetStatus.READY,
            created_at=t0,
            updated_at=t0,
        )
    )
    task = Task(
        id=SAMPLE_TASK,
        tenant_id=SAMPLE_A,
        asset_id=asset.id,
        index_id=asset.index_id,
        kind=TaskKind.INGEST,
        state=TaskState.PROCESSING,
        features={Feature.PROXY: FeatureState(state=FeatureStatus.PROCESSING, updated_at=t0)},
        created_at=t0,
        updated_at=t0,
    )
    stores.tasks.create_with_asset(task, asset.model_copy(update={"status": AssetStatus.PROCESSING}))
    thumbs = [
        Derivative(
            asset_id=asset.id,
            kind="thumbnail",
            key=f"t/a/thumb{i}.jpg",
            content_type="image/jpeg",
            size_bytes=10 + i,
            index=i,
            created_at=t0,
        )
        for i in range(2)
    ]
    proxy = Derivative(
        asset_id=asset.id,
        kind="proxy",
        key="t/a/proxy.mp4",
        content_type="video/mp4",
        size_bytes=1000,
        width=640,
        height=360,
        duration_s=12.5,
        created_at=t0,
    )
    stores.outputs.replace_derivatives(SAMPLE_A, asset.id, ["proxy", "thumbnail"], [proxy, *thumbs])
    stores.outputs.replace_segments(
        SAMPLE_A,
        asset.id,
        [
            Segment(
                id="seg_01HX0000000000000000000003",
                asset_id=asset.id,
                start=4.5,
                end=6.0,
                kind="speech",
                text="hello there",
            ),
            Segment(
                id="seg_01HX0000000000000000000001",
                asset_id=asset.id,
                start=0.0,
                end=1.5,
                kind="shot",
                keyframe_key="t/a/kf0.jpg",
            ),
            Segment(id="seg_01HX0000000000000000000002", asset_id=asset.id, start=1.25, end=4.5, kind="shot"),
        ],
    )
    stores.idempotency.put(
        IdempotencyRecord(
            tenant_id=SAMPLE_A,
            key="req-1",
            request_hash="h1",
            status_code=201,
            body={"id": asset.id},
            created_at=t0,
            expires_at=far,
        )
    )


def assert_reads_release_sample(stores: MetadataStores) -> None:
    """What the release sample reads as, through every repository."""
    tenant = stores.keys.get_tenant_by_name("acme")
    assert tenant is not None and tenant.id == SAMPLE_A and tenant.created_at == SAMPLE_T0
    key = stores.keys.get_key_by_hash("ab" * 32)
    assert key is not None and key.tenant_id == SAMPLE_A and not key.revoked

    index = stores.indexes.get(SAMPLE_A, SAMPLE_INDEX)
    assert index is not None and index.asset_count == 2 and index.version == 1
    assert index.description == "old clips"
    assert [i.id for i in stores.indexes.list(SAMPLE_A, limit=10, cursor=None).data] == [SAMPLE_INDEX]
    assert stores.indexes.get(SAMPLE_B, SAMPLE_INDEX) is None

    asset = stores.assets.get(SAMPLE_A, SAMPLE_ASSET)
    assert asset is not None and asset.version == 2 and asset.status == AssetStatus.PROCESSING
    assert asset.user_metadata == {"camera": "a"} and asset.media_type == MediaType.VIDEO
    assert stores.assets.get(SAMPLE_B, SAMPLE_ASSET) is None
    failed = stores.assets.list(SAMPLE_A, status=AssetStatus.FAILED, limit=10, cursor=None).data
    assert [a.name for a in failed] == ["notes.txt"] and failed[0].media_type is None
    videos = stores.assets.list(
        SAMPLE_A, index_id=SAMPLE_INDEX, media_type=MediaType.VIDEO, limit=10, cursor=None
    )
    assert [a.id for a in videos.data] == [SAMPLE_ASSET]
    assert [a.name for a in stores.assets.list(SAMPLE_B, limit=10, cursor=None).data] == ["b.mp4"]

    task = stores.tasks.get(SAMPLE_A, SAMPLE_TASK)
    assert task is not None and task.state == TaskState.PROCESSING and task.version == 1
    assert task.features[Feature.PROXY].state == FeatureStatus.PROCESSING
    assert stores.tasks.get(SAMPLE_B, SAMPLE_TASK) is None
    active = stores.tasks.list(SAMPLE_A, active_only=True, limit=10, cursor=None).data
    assert [t.id for t in active] == [SAMPLE_TASK]
    assert [t.id for t in stores.tasks.list(SAMPLE_A, asset_id=SAMPLE_ASSET, limit=10, cursor=None).data] == [
        SAMPLE_TASK
    ]

    derivs = stores.outputs.list_derivatives(SAMPLE_A, SAMPLE_ASSET)
    assert [(d.kind, d.index, d.size_bytes) for d in derivs] == [
        ("proxy", 0, 1000),
        ("thumbnail", 0, 10),
        ("thumbnail", 1, 11),
    ]
    assert derivs[0].duration_s == 12.5 and derivs[0].width == 640
    first = stores.outputs.list_segments(SAMPLE_A, SAMPLE_ASSET, limit=2, cursor=None)
    rest = stores.outputs.list_segments(SAMPLE_A, SAMPLE_ASSET, limit=2, cursor=first.next_cursor)
    segs = first.data + rest.data
    assert [s.start for s in segs] == [0.0, 1.25, 4.5] and rest.next_cursor is None
    assert segs[0].keyframe_key == "t/a/kf0.jpg" and segs[2].text == "hello there"
    assert stores.outputs.list_derivatives(SAMPLE_B, SAMPLE_ASSET) == []

    rec = stores.idempotency.get(SAMPLE_A, "req-1")
    assert rec is not None and rec.body == {"id": SAMPLE_ASSET} and rec.status_code == 201
    assert stores.idempotency.get(SAMPLE_B, "req-1") is None


def assert_writes_over_release_sample(stores: MetadataStores) -> None:
    """Today's writes work on the old data: a task finishes, an asset is deleted with what it owns."""
    done, asset = stores.tasks.mutate_with_asset(
        SAMPLE_A,
        SAMPLE_TASK,
        lambda t, a: (
            t.model_copy(update={"state": TaskState.COMPLETED}),
            a.model_copy(update={"status": AssetStatus.READY}),
        ),
    )
    assert done.version == 2 and asset.version == 3
    assert stores.tasks.list(SAMPLE_A, active_only=True, limit=10, cursor=None).data == []
    deleted = stores.assets.delete(SAMPLE_A, SAMPLE_ASSET)
    assert deleted is not None and deleted.status == AssetStatus.READY
    assert stores.tasks.get(SAMPLE_A, SAMPLE_TASK) is None
    assert stores.outputs.list_segments(SAMPLE_A, SAMPLE_ASSET, limit=5, cursor=None).data == []
    index = stores.indexes.get(SAMPLE_A, SAMPLE_INDEX)
    assert index is not None and index.asset_count == 1
