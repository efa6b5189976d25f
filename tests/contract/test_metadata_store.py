"""MetadataStore contract: one suite, run against SQLite and against DynamoDB (moto).

Every test gets an empty store (`metadata_store`, parametrized). Tests that only one adapter can
show (threads on SQLite, an injected lost race on DynamoDB, migrations) ask for that adapter's
fixture directly."""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from mediaindex.adapters.aws.dynamo_store import MAX_ATTEMPTS, DynamoMetadataStore
from mediaindex.adapters.local.sqlite_db import Database, split_statements
from mediaindex.adapters.local.sqlite_store import SqliteMetadataStore
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
    utcnow,
)
from mediaindex.errors import ConflictError, NotFoundError, ValidationError
from mediaindex.ids import new_id
from mediaindex.ports.metadata import MetadataStore

T1, T2 = "ten_one", "ten_two"
_clock = [1_700_000_000_000]


def _id(prefix: str) -> str:
    """Ids one millisecond apart, so creation order is id order even within one millisecond."""
    _clock[0] += 1
    return new_id(prefix, now_ms=_clock[0])


def make_index(store: MetadataStore, name: str = "clips", tenant: str = T1) -> Index:
    return store.create_index(Index(id=_id("idx"), tenant_id=tenant, name=name))


def make_asset(
    store: MetadataStore,
    index: Index,
    *,
    status: AssetStatus = AssetStatus.PROCESSING,
    media_type: MediaType | None = MediaType.VIDEO,
    name: str = "clip.mp4",
) -> Asset:
    return store.create_asset(
        Asset(
            id=_id("ast"),
            tenant_id=index.tenant_id,
            index_id=index.id,
            name=name,
            status=status,
            media_type=media_type,
        )
    )


def make_task(asset: Asset, state: TaskState = TaskState.QUEUED) -> Task:
    return Task(
        id=_id("tsk"),
        tenant_id=asset.tenant_id,
        asset_id=asset.id,
        index_id=asset.index_id,
        kind=TaskKind.INGEST,
        state=state,
        features={Feature.PROXY: FeatureState()},
    )


def start_task(store: MetadataStore, asset: Asset, state: TaskState = TaskState.QUEUED) -> tuple[Task, Asset]:
    current = store.get_asset(asset.id)
    assert current is not None
    return store.save_task_and_asset(make_task(current, state), current)


def record(key: str, *, expires_in: timedelta = timedelta(hours=24), tenant: str = T1) -> IdempotencyRecord:
    return IdempotencyRecord(
        tenant_id=tenant,
        key=key,
        request_hash="h1",
        status_code=201,
        body={"id": "ast_x"},
        expires_at=utcnow() + expires_in,
    )


# Tenants and API keys ----------------------------------------------------------------------------
def test_tenant_is_found_by_name_and_its_name_is_unique(metadata_store: MetadataStore) -> None:
    # Given a tenant
    tenant = metadata_store.create_tenant(Tenant(id=_id("ten"), name="acme"))

    # Then it reads back by name, and an unknown name reads as None
    assert metadata_store.get_tenant_by_name("acme") == tenant
    assert metadata_store.get_tenant_by_name("nobody") is None

    # When another tenant takes the same name, Then it is refused with the contract's code
    with pytest.raises(ConflictError) as err:
        metadata_store.create_tenant(Tenant(id=_id("ten"), name="acme"))
    assert err.value.code == "tenant_name_already_exists"


def test_api_key_is_found_by_hash_and_revocation_is_seen_at_once(metadata_store: MetadataStore) -> None:
    key = ApiKey(id=_id("key"), tenant_id=T1, key_hash="ab" * 32, prefix="mi_live_ab")
    metadata_store.put_api_key(key)

    assert metadata_store.get_api_key_by_hash("ab" * 32) == key
    assert metadata_store.get_api_key_by_hash("cd" * 32) is None

    # When the key is revoked (written again), Then the next lookup sees it revoked
    metadata_store.put_api_key(key.model_copy(update={"revoked": True}))
    found = metadata_store.get_api_key_by_hash("ab" * 32)
    assert found is not None and found.revoked


# Indexes -----------------------------------------------------------------------------------------
def test_index_create_get_and_tenant_isolation(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store, "clips")

    assert index.version == 1 and index.asset_count == 0
    assert metadata_store.get_index(T1, index.id) == index
    # Another tenant cannot see it, and may use the same name
    assert metadata_store.get_index(T2, index.id) is None
    other = make_index(metadata_store, "clips", tenant=T2)
    assert other.name == "clips"


def test_duplicate_index_name_in_a_tenant_is_a_conflict(metadata_store: MetadataStore) -> None:
    make_index(metadata_store, "clips")

    with pytest.raises(ConflictError) as err:
        make_index(metadata_store, "clips")

    assert err.value.code == "index_name_already_exists"
    assert len(metadata_store.list_indexes(T1, limit=10, cursor=None).data) == 1


def test_update_index_bumps_version_and_refuses_stale_writes(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store, "clips")

    # When it is renamed and described
    updated = metadata_store.update_index(index.model_copy(update={"name": "films", "description": "d"}))

    # Then the version went up and the change reads back
    assert updated.version == index.version + 1
    got = metadata_store.get_index(T1, index.id)
    assert (
        got is not None and got.name == "films" and got.description == "d" and got.version == updated.version
    )

    # When a writer still holding the old version writes, Then it loses
    with pytest.raises(ConflictError) as err:
        metadata_store.update_index(index.model_copy(update={"description": "stale"}))
    assert err.value.code == "version_conflict"

    # And the old name is free again, the new one is taken
    make_index(metadata_store, "clips")
    with pytest.raises(ConflictError) as err:
        make_index(metadata_store, "films")
    assert err.value.code == "index_name_already_exists"


def test_rename_to_a_taken_name_is_a_conflict(metadata_store: MetadataStore) -> None:
    make_index(metadata_store, "a")
    b = make_index(metadata_store, "b")

    with pytest.raises(ConflictError) as err:
        metadata_store.update_index(b.model_copy(update={"name": "a"}))

    assert err.value.code == "index_name_already_exists"
    got = metadata_store.get_index(T1, b.id)
    assert got is not None and got.name == "b" and got.version == b.version


def test_update_missing_index_is_not_found(metadata_store: MetadataStore) -> None:
    ghost = Index(id=_id("idx"), tenant_id=T1, name="ghost", version=1)
    with pytest.raises(NotFoundError) as err:
        metadata_store.update_index(ghost)
    assert err.value.code == "index_not_found"


def test_delete_index(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store, "clips")

    assert metadata_store.delete_index(T2, index.id) is False  # not the owner
    assert metadata_store.delete_index(T1, index.id) is True
    assert metadata_store.get_index(T1, index.id) is None
    assert metadata_store.delete_index(T1, index.id) is False
    make_index(metadata_store, "clips")  # the name is free again


def test_indexes_list_newest_first_in_pages(metadata_store: MetadataStore) -> None:
    made = [make_index(metadata_store, f"i{n}") for n in range(5)]
    make_index(metadata_store, "other", tenant=T2)

    first = metadata_store.list_indexes(T1, limit=3, cursor=None)
    second = metadata_store.list_indexes(T1, limit=3, cursor=first.next_cursor)

    assert [i.id for i in first.data + second.data] == [i.id for i in reversed(made)]
    assert first.next_cursor is not None and second.next_cursor is None


# Assets ------------------------------------------------------------------------------------------
def test_asset_create_get_and_tenant_scope(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store)
    asset = make_asset(metadata_store, index)

    assert asset.version == 1
    assert metadata_store.get_asset(asset.id) == asset
    assert metadata_store.get_asset(asset.id, T1) == asset
    assert metadata_store.get_asset(asset.id, T2) is None  # another tenant's asset does not exist
    assert metadata_store.get_asset("ast_missing") is None


def test_asset_in_unknown_or_foreign_index_is_refused(metadata_store: MetadataStore) -> None:
    foreign = make_index(metadata_store, tenant=T2)
    for index_id in ("idx_missing", foreign.id):
        with pytest.raises(NotFoundError) as err:
            metadata_store.create_asset(Asset(id=_id("ast"), tenant_id=T1, index_id=index_id, name="a.mp4"))
        assert err.value.code == "index_not_found"
    refreshed = metadata_store.get_index(T2, foreign.id)
    assert refreshed is not None and refreshed.asset_count == 0


def test_duplicate_asset_id_is_a_conflict_and_count_stays_right(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store)
    asset = make_asset(metadata_store, index)

    with pytest.raises(ConflictError):
        metadata_store.create_asset(asset.model_copy(update={"version": 0}))

    got = metadata_store.get_index(T1, index.id)
    assert got is not None and got.asset_count == 1


def test_asset_count_follows_creates_and_deletes(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store)
    assets = [make_asset(metadata_store, index) for _ in range(3)]
    got = metadata_store.get_index(T1, index.id)
    assert got is not None and got.asset_count == 3

    # When one is deleted (twice: the second finds nothing)
    deleted = metadata_store.delete_asset(assets[0].id)
    again = metadata_store.delete_asset(assets[0].id)

    # Then it is returned once, gone, and counted once
    assert deleted is not None and deleted.id == assets[0].id
    assert again is None
    assert metadata_store.get_asset(assets[0].id) is None
    got = metadata_store.get_index(T1, index.id)
    assert got is not None and got.asset_count == 2


def test_update_index_never_overwrites_asset_count(metadata_store: MetadataStore) -> None:
    # Given an index read before two assets were added
    index = make_index(metadata_store)
    make_asset(metadata_store, index)
    make_asset(metadata_store, index)

    # When that (stale-count) copy is written back with a new description
    updated = metadata_store.update_index(index.model_copy(update={"description": "x"}))

    # Then the count is the store's, not the copy's
    assert updated.asset_count == 2
    got = metadata_store.get_index(T1, index.id)
    assert got is not None and got.asset_count == 2 and got.description == "x"


def test_mutate_asset_applies_fn_and_bumps_version(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store)
    asset = make_asset(metadata_store, index)

    def rename(a: Asset) -> Asset:
        return a.model_copy(update={"name": "renamed.mp4", "status": AssetStatus.READY})

    out = metadata_store.mutate_asset(asset.id, rename)

    assert out.name == "renamed.mp4" and out.version == asset.version + 1
    assert metadata_store.get_asset(asset.id) == out
    # The status column/attribute follows the document
    ready = metadata_store.list_assets(T1, status=AssetStatus.READY, limit=10, cursor=None)
    assert [a.id for a in ready.data] == [asset.id]


def test_mutate_missing_asset_is_not_found(metadata_store: MetadataStore) -> None:
    with pytest.raises(NotFoundError) as err:
        metadata_store.mutate_asset("ast_missing", lambda a: a)
    assert err.value.code == "asset_not_found"


def test_assets_page_through_three_pages_newest_first(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store)
    made = [make_asset(metadata_store, index) for _ in range(7)]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = metadata_store.list_assets(T1, index_id=index.id, limit=3, cursor=cursor)
        seen += [a.id for a in page.data]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break

    assert pages == 3
    assert seen == [a.id for a in reversed(made)]


def test_exact_multiple_of_limit_ends_without_an_empty_page(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store)
    for _ in range(4):
        make_asset(metadata_store, index)

    first = metadata_store.list_assets(T1, limit=2, cursor=None)
    second = metadata_store.list_assets(T1, limit=2, cursor=first.next_cursor)

    assert len(second.data) == 2 and second.next_cursor is None


def test_filters_still_return_full_pages(metadata_store: MetadataStore) -> None:
    # Given ready videos hidden among many other assets, in two indexes
    index = make_index(metadata_store, "a")
    other = make_index(metadata_store, "b")
    ready_videos = []
    for n in range(12):
        make_asset(metadata_store, index, status=AssetStatus.PROCESSING)
        make_asset(metadata_store, index, status=AssetStatus.READY, media_type=MediaType.AUDIO)
        make_asset(metadata_store, other, status=AssetStatus.READY)
        if n % 3 == 0:
            ready_videos.append(make_asset(metadata_store, index, status=AssetStatus.READY))

    # When listing ready videos of the first index, two per page
    first = metadata_store.list_assets(
        T1, index_id=index.id, status=AssetStatus.READY, media_type=MediaType.VIDEO, limit=2, cursor=None
    )
    second = metadata_store.list_assets(
        T1,
        index_id=index.id,
        status=AssetStatus.READY,
        media_type=MediaType.VIDEO,
        limit=2,
        cursor=first.next_cursor,
    )

    # Then each page is full and holds only matches
    assert [a.id for a in first.data + second.data] == [a.id for a in reversed(ready_videos)]
    assert second.next_cursor is None
    # And the tenant-wide listing filters too
    audio = metadata_store.list_assets(T1, media_type=MediaType.AUDIO, limit=100, cursor=None)
    assert len(audio.data) == 12 and all(a.media_type == MediaType.AUDIO for a in audio.data)
    assert metadata_store.list_assets(T2, limit=10, cursor=None).data == []


def test_garbage_cursor_is_a_validation_error(metadata_store: MetadataStore) -> None:
    make_index(metadata_store)
    for bad in ("not a cursor!", "eyJ4IjoxfQ"):  # the second is base64url of {"x":1}
        with pytest.raises(ValidationError) as err:
            metadata_store.list_indexes(T1, limit=2, cursor=bad)
        assert err.value.code == "cursor_invalid"


# Tasks -------------------------------------------------------------------------------------------
def test_save_task_and_asset_writes_both_or_neither(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store)
    asset = make_asset(metadata_store, index, status=AssetStatus.AWAITING_UPLOAD)

    # When the upload event starts a task and moves the asset on
    task = make_task(asset)
    saved_task, saved_asset = metadata_store.save_task_and_asset(
        task, asset.model_copy(update={"status": AssetStatus.PROCESSING})
    )

    assert saved_task.version == task.version + 1 and saved_asset.version == asset.version + 1
    assert metadata_store.get_task(task.id) == saved_task
    assert metadata_store.get_asset(asset.id) == saved_asset

    # When a duplicate event tries the same with the asset version it read before, Then nothing starts
    late = make_task(asset)
    with pytest.raises(ConflictError) as err:
        metadata_store.save_task_and_asset(late, asset)
    assert err.value.code == "version_conflict"
    assert metadata_store.get_task(late.id) is None
    assert metadata_store.get_asset(asset.id) == saved_asset


def test_save_task_for_missing_asset_is_not_found(metadata_store: MetadataStore) -> None:
    ghost = Asset(id=_id("ast"), tenant_id=T1, index_id="idx_x", name="a.mp4", version=1)
    with pytest.raises(NotFoundError) as err:
        metadata_store.save_task_and_asset(make_task(ghost), ghost)
    assert err.value.code == "asset_not_found"


def test_get_task_is_tenant_scoped(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store)
    task, _ = start_task(metadata_store, make_asset(metadata_store, index))

    assert metadata_store.get_task(task.id, T1) == task
    assert metadata_store.get_task(task.id, T2) is None
    assert metadata_store.get_task("tsk_missing") is None


def test_list_tasks_by_tenant_asset_and_active(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store)
    a1 = make_asset(metadata_store, index)
    a2 = make_asset(metadata_store, index)
    done, _ = start_task(metadata_store, a1, TaskState.COMPLETED)
    live1, _ = start_task(metadata_store, a1, TaskState.PROCESSING)
    live2, _ = start_task(metadata_store, a2, TaskState.QUEUED)
    for _ in range(5):
        start_task(metadata_store, a2, TaskState.FAILED)

    everything = metadata_store.list_tasks(T1, limit=100, cursor=None)
    by_asset = metadata_store.list_tasks(T1, asset_id=a1.id, limit=100, cursor=None)
    active_p1 = metadata_store.list_tasks(T1, active_only=True, limit=1, cursor=None)
    active_p2 = metadata_store.list_tasks(T1, active_only=True, limit=1, cursor=active_p1.next_cursor)

    assert len(everything.data) == 8
    assert [t.id for t in by_asset.data] == [live1.id, done.id]
    assert [t.id for t in active_p1.data + active_p2.data] == [live2.id, live1.id]
    assert active_p2.next_cursor is None
    assert metadata_store.list_tasks(T2, limit=10, cursor=None).data == []
    assert metadata_store.list_tasks(T2, asset_id=a1.id, limit=10, cursor=None).data == []


def test_mutate_task_and_asset_changes_both(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store)
    task, asset = start_task(metadata_store, make_asset(metadata_store, index))

    def finish(t: Task, a: Asset) -> tuple[Task, Asset]:
        done = FeatureState(state=FeatureStatus.COMPLETED)
        return (
            t.model_copy(update={"state": TaskState.COMPLETED, "features": {Feature.PROXY: done}}),
            a.model_copy(update={"status": AssetStatus.READY, "features": {Feature.PROXY: done}}),
        )

    new_task, new_asset = metadata_store.mutate_task_and_asset(task.id, finish)

    assert new_task.version == task.version + 1 and new_asset.version == asset.version + 1
    assert metadata_store.get_task(task.id) == new_task
    assert metadata_store.get_asset(asset.id) == new_asset
    assert metadata_store.list_tasks(T1, active_only=True, limit=10, cursor=None).data == []


def test_mutate_missing_task_is_not_found(metadata_store: MetadataStore) -> None:
    with pytest.raises(NotFoundError) as err:
        metadata_store.mutate_task_and_asset("tsk_missing", lambda t, a: (t, a))
    assert err.value.code == "task_not_found"


# Outputs -----------------------------------------------------------------------------------------
def deriv(asset: Asset, kind: str, index: int = 0, size: int = 10) -> Derivative:
    return Derivative(
        asset_id=asset.id,
        kind=kind,
        key=f"k/{kind}/{index}",
        content_type="image/jpeg",
        size_bytes=size,
        index=index,
    )


def test_replace_derivatives_leaves_one_set_per_kind(metadata_store: MetadataStore) -> None:
    asset = make_asset(metadata_store, make_index(metadata_store))
    metadata_store.replace_derivatives(asset.id, ["proxy"], [deriv(asset, "proxy")])
    metadata_store.replace_derivatives(
        asset.id, ["thumbnail"], [deriv(asset, "thumbnail", i) for i in range(3)]
    )

    # When the thumbnails are made again, fewer and bigger
    metadata_store.replace_derivatives(
        asset.id, ["thumbnail"], [deriv(asset, "thumbnail", i, size=99) for i in range(2)]
    )

    got = metadata_store.list_derivatives(asset.id)
    assert [(d.kind, d.index, d.size_bytes) for d in got] == [
        ("proxy", 0, 10),
        ("thumbnail", 0, 99),
        ("thumbnail", 1, 99),
    ]


def test_outputs_of_a_missing_asset_are_refused(metadata_store: MetadataStore) -> None:
    ghost = Asset(id=_id("ast"), tenant_id=T1, index_id="idx_x", name="a.mp4")
    with pytest.raises(NotFoundError):
        metadata_store.replace_derivatives(ghost.id, ["proxy"], [deriv(ghost, "proxy")])
    with pytest.raises(NotFoundError):
        metadata_store.replace_segments(
            ghost.id, [Segment(id=_id("seg"), asset_id=ghost.id, start=0, end=1, kind="shot")]
        )


def test_segments_page_in_time_order_and_replace(metadata_store: MetadataStore) -> None:
    asset = make_asset(metadata_store, make_index(metadata_store))
    # Given segments whose ids are not in time order
    segs = [
        Segment(id=_id("seg"), asset_id=asset.id, start=s, end=s + 1.5, kind="shot")
        for s in (9.0, 0.0, 4.5, 1.25, 30.0)
    ]
    metadata_store.replace_segments(asset.id, segs)

    first = metadata_store.list_segments(asset.id, limit=2, cursor=None)
    second = metadata_store.list_segments(asset.id, limit=2, cursor=first.next_cursor)
    third = metadata_store.list_segments(asset.id, limit=2, cursor=second.next_cursor)

    assert [s.start for s in first.data + second.data + third.data] == [0.0, 1.25, 4.5, 9.0, 30.0]
    assert third.next_cursor is None

    # When they are replaced, Then only the new set remains
    new = [Segment(id=_id("seg"), asset_id=asset.id, start=2.0, end=3.0, kind="window", text="hi")]
    metadata_store.replace_segments(asset.id, new)
    assert metadata_store.list_segments(asset.id, limit=10, cursor=None).data == new


def test_delete_asset_cascades_to_tasks_derivatives_and_segments(metadata_store: MetadataStore) -> None:
    index = make_index(metadata_store)
    keep = make_asset(metadata_store, index)
    gone = make_asset(metadata_store, index)
    for a in (keep, gone):
        start_task(metadata_store, a)
        metadata_store.replace_derivatives(a.id, ["proxy"], [deriv(a, "proxy")])
        metadata_store.replace_segments(
            a.id, [Segment(id=_id("seg"), asset_id=a.id, start=0, end=1, kind="shot")]
        )
    gone_task = metadata_store.list_tasks(T1, asset_id=gone.id, limit=5, cursor=None).data[0]

    metadata_store.delete_asset(gone.id)

    assert metadata_store.get_task(gone_task.id) is None
    assert metadata_store.list_tasks(T1, asset_id=gone.id, limit=5, cursor=None).data == []
    assert metadata_store.list_derivatives(gone.id) == []
    assert metadata_store.list_segments(gone.id, limit=5, cursor=None).data == []
    # The neighbour keeps everything
    assert len(metadata_store.list_tasks(T1, limit=5, cursor=None).data) == 1
    assert len(metadata_store.list_derivatives(keep.id)) == 1
    assert len(metadata_store.list_segments(keep.id, limit=5, cursor=None).data) == 1


# Idempotency -------------------------------------------------------------------------------------
def test_idempotency_record_round_trip_and_second_put_conflicts(metadata_store: MetadataStore) -> None:
    rec = record("k1")
    metadata_store.put_idempotency(rec)

    assert metadata_store.get_idempotency(T1, "k1") == rec
    assert metadata_store.get_idempotency(T2, "k1") is None  # keys are per tenant
    with pytest.raises(ConflictError):
        metadata_store.put_idempotency(record("k1"))


def test_expired_idempotency_record_reads_as_none_and_can_be_replaced(metadata_store: MetadataStore) -> None:
    metadata_store.put_idempotency(record("k2", expires_in=timedelta(seconds=-5)))

    assert metadata_store.get_idempotency(T1, "k2") is None

    fresh = record("k2")
    metadata_store.put_idempotency(fresh)
    assert metadata_store.get_idempotency(T1, "k2") == fresh


# SQLite only: threads, speed, the database engine --------------------------------------------------
def test_sqlite_concurrent_mutations_lose_no_update(metadata_sqlite_store: SqliteMetadataStore) -> None:
    store = metadata_sqlite_store
    asset = make_asset(store, make_index(store))
    threads, per_thread = 6, 15

    def bump(a: Asset) -> Asset:
        n = int(a.user_metadata.get("n", 0))
        return a.model_copy(update={"user_metadata": {**a.user_metadata, "n": n + 1}})

    def worker() -> None:
        for _ in range(per_thread):
            store.mutate_asset(asset.id, bump)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()

    final = store.get_asset(asset.id)
    assert final is not None
    assert final.user_metadata["n"] == threads * per_thread
    assert final.version == asset.version + threads * per_thread


def test_sqlite_get_asset_is_under_a_millisecond(metadata_sqlite_store: SqliteMetadataStore) -> None:
    store = metadata_sqlite_store
    index = make_index(store)
    assets = [make_asset(store, index) for _ in range(50)]
    ids = [a.id for a in assets] * 20
    timings = []
    for asset_id in ids:
        t0 = time.perf_counter()
        store.get_asset(asset_id, T1)
        timings.append(time.perf_counter() - t0)
    assert statistics.median(timings) < 0.001


def test_database_migrations_apply_once_and_in_order(tmp_path: Path) -> None:
    mig = tmp_path / "migrations"
    mig.mkdir()
    (mig / "002_more.sql").write_text("ALTER TABLE things ADD COLUMN size INTEGER; -- needs 001 first\n")
    (mig / "001_base.sql").write_text(
        "CREATE TABLE things (id TEXT PRIMARY KEY, note TEXT DEFAULT 'a;b');\n"
        "CREATE TRIGGER t AFTER INSERT ON things"
        " BEGIN UPDATE things SET note = 'x;y' WHERE id = NEW.id; END;\n"
    )

    db = Database(tmp_path / "x.db", migrations_dir=mig)
    assert db.migrate() == [1, 2]
    db.close()

    # When the process restarts, Then nothing runs twice
    again = Database(tmp_path / "x.db", migrations_dir=mig)
    assert again.migrate() == []
    assert again.applied_versions() == [1, 2]
    with again.transaction() as tx:
        tx.execute("INSERT INTO things (id, size) VALUES ('t1', 3)")
    assert again.connection().execute("SELECT note, size FROM things").fetchall() == [("x;y", 3)]
    again.close()


def test_database_failed_migration_leaves_no_trace(tmp_path: Path) -> None:
    mig = tmp_path / "migrations"
    mig.mkdir()
    (mig / "001_bad.sql").write_text("CREATE TABLE half (id TEXT);\nTHIS IS NOT SQL;\n")
    db = Database(tmp_path / "x.db", migrations_dir=mig)

    with pytest.raises(sqlite3.OperationalError):
        db.migrate()

    conn = db.connection()
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchall() == []
    assert db.applied_versions() == []
    db.close()


def test_database_settings_and_nested_transactions(metadata_sqlite_db: Database) -> None:
    db = metadata_sqlite_db
    db.migrate()
    conn = db.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.applied_versions()[0] == 1

    # A failing inner block rolls back alone; the outer block commits
    with db.transaction() as tx:
        tx.execute("INSERT INTO tenants (id, name, doc) VALUES ('t1', 'one', '{}')")
        with pytest.raises(RuntimeError), db.transaction() as inner:
            inner.execute("INSERT INTO tenants (id, name, doc) VALUES ('t2', 'two', '{}')")
            raise RuntimeError("inner fails")
    assert conn.execute("SELECT id FROM tenants").fetchall() == [("t1",)]

    # A failing outer block rolls everything back
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.execute("INSERT INTO tenants (id, name, doc) VALUES ('t3', 'three', '{}')")
        raise RuntimeError("outer fails")
    assert conn.execute("SELECT id FROM tenants").fetchall() == [("t1",)]


def test_split_statements_respects_strings_and_triggers() -> None:
    script = (
        "-- c;\nCREATE TABLE a (x TEXT DEFAULT ';');\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;\nSELECT 2"
    )
    assert len(split_statements(script)) == 3


# DynamoDB only: lost races -------------------------------------------------------------------------
def test_dynamo_mutate_asset_retries_a_lost_race_and_keeps_both_updates(
    metadata_dynamo_store: DynamoMetadataStore,
) -> None:
    store = metadata_dynamo_store
    asset = make_asset(store, make_index(store))
    calls = 0

    def tag(a: Asset) -> Asset:
        nonlocal calls
        calls += 1
        if calls == 1:  # another writer gets in between our read and our write, once
            store.mutate_asset(
                asset.id, lambda b: b.model_copy(update={"user_metadata": {**b.user_metadata, "other": 1}})
            )
        return a.model_copy(update={"user_metadata": {**a.user_metadata, "mine": 1}})

    out = store.mutate_asset(asset.id, tag)

    assert calls == 2
    assert out.user_metadata == {"other": 1, "mine": 1}
    assert out.version == asset.version + 2
    assert store.get_asset(asset.id) == out


def test_dynamo_mutate_gives_up_with_a_conflict_when_always_losing(
    metadata_dynamo_store: DynamoMetadataStore,
) -> None:
    store = metadata_dynamo_store
    asset = make_asset(store, make_index(store))
    calls = 0

    def always_interfered(a: Asset) -> Asset:
        nonlocal calls
        calls += 1
        store.mutate_asset(asset.id, lambda b: b.model_copy(update={"name": f"n{calls}.mp4"}))
        return a.model_copy(update={"name": "mine.mp4"})

    with pytest.raises(ConflictError) as err:
        store.mutate_asset(asset.id, always_interfered)

    assert err.value.code == "version_conflict"
    assert calls == MAX_ATTEMPTS
    got = store.get_asset(asset.id)
    assert got is not None and got.name == f"n{MAX_ATTEMPTS}.mp4"


def test_dynamo_mutate_task_and_asset_retries_when_the_asset_moved(
    metadata_dynamo_store: DynamoMetadataStore,
) -> None:
    store = metadata_dynamo_store
    task, asset = start_task(store, make_asset(store, make_index(store)))
    calls = 0

    def finish(t: Task, a: Asset) -> tuple[Task, Asset]:
        nonlocal calls
        calls += 1
        if calls == 1:
            store.mutate_asset(a.id, lambda b: b.model_copy(update={"name": "renamed.mp4"}))
        return t.model_copy(update={"state": TaskState.COMPLETED}), a.model_copy(
            update={"status": AssetStatus.READY}
        )

    new_task, new_asset = store.mutate_task_and_asset(task.id, finish)

    assert calls == 2
    assert new_task.state == TaskState.COMPLETED and new_task.version == task.version + 1
    assert new_asset.name == "renamed.mp4" and new_asset.status == AssetStatus.READY
    assert store.get_asset(asset.id) == new_asset


def test_dynamo_cursor_only_continues_its_own_listing(metadata_dynamo_store: DynamoMetadataStore) -> None:
    # Given a cursor from tenant one's asset listing
    store = metadata_dynamo_store
    index = make_index(store)
    for _ in range(3):
        make_asset(store, index)
    cursor = store.list_assets(T1, limit=1, cursor=None).next_cursor
    assert cursor is not None

    # When tenant two (or another listing) presents it, Then it is refused, never followed
    with pytest.raises(ValidationError) as err:
        store.list_assets(T2, limit=1, cursor=cursor)
    assert err.value.code == "cursor_invalid"
    with pytest.raises(ValidationError):
        store.list_assets(T1, index_id=index.id, limit=1, cursor=cursor)
