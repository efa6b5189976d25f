"""TaskRepository contract, on SQLite and on DynamoDB (moto): a task and its asset change together,
and another tenant's task reads as missing and cannot be changed."""

from __future__ import annotations

import pytest

from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.models import Asset, AssetStatus, Feature, FeatureState, FeatureStatus, Task, TaskState
from mediaindex.ports.stores import MetadataStores
from tests.contract.metadata_factories import (
    T1,
    T2,
    make_asset,
    make_index,
    make_task,
    new_test_id,
    start_task,
)


def test_save_task_and_asset_writes_both_or_neither(stores: MetadataStores) -> None:
    index = make_index(stores)
    asset = make_asset(stores, index, status=AssetStatus.AWAITING_UPLOAD)

    # When the upload event starts a task and moves the asset on
    task = make_task(asset)
    saved_task, saved_asset = stores.tasks.create_with_asset(
        task, asset.model_copy(update={"status": AssetStatus.PROCESSING})
    )

    assert saved_task.version == task.version + 1 and saved_asset.version == asset.version + 1
    assert stores.tasks.get(T1, task.id) == saved_task
    assert stores.assets.get(T1, asset.id) == saved_asset

    # When a duplicate event tries the same with the asset version it read before, Then nothing starts
    late = make_task(asset)
    with pytest.raises(ConflictError) as err:
        stores.tasks.create_with_asset(late, asset)
    assert err.value.code == "version_conflict"
    assert stores.tasks.get(T1, late.id) is None
    assert stores.assets.get(T1, asset.id) == saved_asset


def test_save_task_for_missing_asset_is_not_found(stores: MetadataStores) -> None:
    ghost = Asset(id=new_test_id("ast"), tenant_id=T1, index_id="idx_x", name="a.mp4", version=1)
    with pytest.raises(NotFoundError) as err:
        stores.tasks.create_with_asset(make_task(ghost), ghost)
    assert err.value.code == "asset_not_found"


def test_get_task_is_tenant_scoped(stores: MetadataStores) -> None:
    index = make_index(stores)
    task, _ = start_task(stores, make_asset(stores, index))

    assert stores.tasks.get(T1, task.id) == task
    assert stores.tasks.get(T2, task.id) is None
    assert stores.tasks.get(T1, "tsk_missing") is None


def test_list_tasks_by_tenant_asset_and_active(stores: MetadataStores) -> None:
    index = make_index(stores)
    a1 = make_asset(stores, index)
    a2 = make_asset(stores, index)
    done, _ = start_task(stores, a1, TaskState.COMPLETED)
    live1, _ = start_task(stores, a1, TaskState.PROCESSING)
    live2, _ = start_task(stores, a2, TaskState.QUEUED)
    for _ in range(5):
        start_task(stores, a2, TaskState.FAILED)

    everything = stores.tasks.list(T1, limit=100, cursor=None)
    by_asset = stores.tasks.list(T1, asset_id=a1.id, limit=100, cursor=None)
    active_p1 = stores.tasks.list(T1, active_only=True, limit=1, cursor=None)
    active_p2 = stores.tasks.list(T1, active_only=True, limit=1, cursor=active_p1.next_cursor)

    assert len(everything.data) == 8
    assert [t.id for t in by_asset.data] == [live1.id, done.id]
    assert [t.id for t in active_p1.data + active_p2.data] == [live2.id, live1.id]
    assert active_p2.next_cursor is None
    assert stores.tasks.list(T2, limit=10, cursor=None).data == []
    assert stores.tasks.list(T2, asset_id=a1.id, limit=10, cursor=None).data == []


def _finish(t: Task, a: Asset) -> tuple[Task, Asset]:
    done = FeatureState(state=FeatureStatus.COMPLETED)
    return (
        t.model_copy(update={"state": TaskState.COMPLETED, "features": {Feature.PROXY: done}}),
        a.model_copy(update={"status": AssetStatus.READY, "features": {Feature.PROXY: done}}),
    )


def test_mutate_task_and_asset_changes_both(stores: MetadataStores) -> None:
    index = make_index(stores)
    task, asset = start_task(stores, make_asset(stores, index))

    new_task, new_asset = stores.tasks.mutate_with_asset(T1, task.id, _finish)

    assert new_task.version == task.version + 1 and new_asset.version == asset.version + 1
    assert stores.tasks.get(T1, task.id) == new_task
    assert stores.assets.get(T1, asset.id) == new_asset
    assert stores.tasks.list(T1, active_only=True, limit=10, cursor=None).data == []


def test_mutate_missing_task_is_not_found(stores: MetadataStores) -> None:
    with pytest.raises(NotFoundError) as err:
        stores.tasks.mutate_with_asset(T1, "tsk_missing", lambda t, a: (t, a))
    assert err.value.code == "task_not_found"


# Another tenant ----------------------------------------------------------------------------------
def test_another_tenant_cannot_mutate_a_task(stores: MetadataStores) -> None:
    task, asset = start_task(stores, make_asset(stores, make_index(stores)))
    calls = 0

    def finish_counting(t: Task, a: Asset) -> tuple[Task, Asset]:
        nonlocal calls
        calls += 1
        return _finish(t, a)

    with pytest.raises(NotFoundError) as err:
        stores.tasks.mutate_with_asset(T2, task.id, finish_counting)

    assert err.value.code == "task_not_found"
    assert calls == 0
    assert stores.tasks.get(T1, task.id) == task
    assert stores.assets.get(T1, asset.id) == asset


def test_another_tenant_cannot_start_a_task_on_an_asset(stores: MetadataStores) -> None:
    asset = make_asset(stores, make_index(stores))
    # Given tenant two's copy of tenant one's asset (same id and version)
    theirs = asset.model_copy(update={"tenant_id": T2, "name": "stolen.mp4"})
    task = make_task(theirs)

    with pytest.raises(NotFoundError) as err:
        stores.tasks.create_with_asset(task, theirs)

    assert err.value.code == "asset_not_found"
    assert stores.tasks.get(T2, task.id) is None
    assert stores.assets.get(T1, asset.id) == asset
    assert stores.assets.get(T2, asset.id) is None


def test_media_time_is_counted_once_per_task_on_the_tasks_day(stores: MetadataStores) -> None:
    tenant = new_test_id("ten")  # its own counters: the DynamoDB table is shared by the session's tests
    index = make_index(stores, tenant=tenant)
    asset = make_asset(stores, index)
    ingest = make_task(asset)
    day = ingest.created_at.date().isoformat()

    # An ingest starts before probe knows the duration: nothing counted yet
    stores.tasks.create_with_asset(ingest, asset)
    assert stores.tasks.media_ms_on(tenant, day) == 0

    # Probe's write learns it (12.5 s); later writes of the task (its features) add nothing
    def probed(t: Task, a: Asset) -> tuple[Task, Asset]:
        return t, a.model_copy(update={"duration_s": 12.5})

    stores.tasks.mutate_with_asset(tenant, ingest.id, probed)
    stores.tasks.mutate_with_asset(
        tenant, ingest.id, lambda t, a: (t.model_copy(update={"state": TaskState.COMPLETED}), a)
    )
    assert stores.tasks.media_ms_on(tenant, day) == 12_500

    # A re-run is created knowing it: counted at once; its own probe adds nothing more
    current = stores.assets.get(tenant, asset.id)
    assert current is not None
    rerun = make_task(current)
    stores.tasks.create_with_asset(rerun, current)
    stores.tasks.mutate_with_asset(tenant, rerun.id, probed)
    assert stores.tasks.media_ms_on(tenant, day) == 25_000

    # Another day, another tenant: their own counters
    assert stores.tasks.media_ms_on(tenant, "2001-01-01") == 0
    assert stores.tasks.media_ms_on(new_test_id("ten"), day) == 0


def test_a_fn_that_changes_its_arguments_in_place_still_moves_the_counters(stores: MetadataStores) -> None:
    # The pipeline's settle sets fields on the task and asset it is given (progress.set_feature
    # assigns their features): the counters must see the asset as stored before, not as changed.
    from mediaindex.services import progress

    tenant = new_test_id("ten")
    asset = make_asset(stores, make_index(stores, tenant=tenant))
    task, _ = stores.tasks.create_with_asset(make_task(asset), asset)

    def settle(t: Task, a: Asset) -> tuple[Task, Asset]:
        a.duration_s = 4.0
        return progress.set_feature(t, a, Feature.PROXY, FeatureStatus.COMPLETED)

    stores.tasks.mutate_with_asset(tenant, task.id, settle)

    (counts,) = stores.assets.usage_by_index(tenant).values()
    assert counts.get("runs:proxy.completed") == 1
    assert stores.tasks.media_ms_on(tenant, task.created_at.date().isoformat()) == 4_000


def test_an_asset_fn_that_changes_it_in_place_still_moves_the_counters(stores: MetadataStores) -> None:
    tenant = new_test_id("ten")
    asset = make_asset(stores, make_index(stores, tenant=tenant))

    def sized(a: Asset) -> Asset:
        a.size_bytes = 1234
        return a

    stores.assets.mutate(tenant, asset.id, sized)

    (counts,) = stores.assets.usage_by_index(tenant).values()
    assert counts.get("bytes:video") == 1234
