"""Usage counters kept by the metadata stores (SQLite, and DynamoDB under moto): every write that
changes what GET /v1/usage reports keeps the counters exact (each step is compared with a full
recount, the way the previous release computed usage), rows an earlier release wrote are counted
once by a backfill, and the races of the DynamoDB counters resolve to the exact numbers."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from mediaindex.adapters.aws import dynamo
from mediaindex.adapters.aws.dynamo import DynamoAssetRepository, DynamoOutputRepository
from mediaindex.adapters.aws.dynamo.items import COUNTED, asset_item, asset_pk
from mediaindex.adapters.aws.dynamo.schema import table_definition
from mediaindex.adapters.aws.dynamo.table import Item, Table, key, s
from mediaindex.adapters.aws.dynamo.usage import read_counted, recount_derivatives
from mediaindex.adapters.local import sqlite as sqlite_stores
from mediaindex.adapters.local.sqlite.database import MIGRATIONS_DIR, Database
from mediaindex.adapters.local.sqlite.usage import rebuild_usage
from mediaindex.domain.errors import ConflictError
from mediaindex.domain.models import (
    Asset,
    Feature,
    FeatureState,
    FeatureStatus,
    Index,
    MediaType,
)
from mediaindex.ports.stores import MetadataStores
from mediaindex.services.indexes import VisibleAssets
from mediaindex.services.usage import UsageService
from tests.aws_runtime import shared_clients
from tests.contract.metadata_factories import T1, T2, deriv, make_index, make_task, new_test_id

TABLE = "mediaindex-usage"


# The previous release's full read: what the counters must always equal ------------------------------
def recount(stores: MetadataStores, tenant_id: str) -> dict[str, Any]:
    live: set[str] = set()
    cursor = None
    while True:
        ipage = stores.indexes.list(tenant_id, limit=100, cursor=cursor)
        live.update(i.id for i in ipage.data if not i.deleting)
        if not (cursor := ipage.next_cursor):
            break
    assets: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    runs: Counter[str] = Counter()
    derivs = 0
    while True:
        page = stores.assets.list(tenant_id, limit=100, cursor=cursor)
        for a in page.data:
            if a.index_id not in live:
                continue
            kind = a.media_type.value if a.media_type else "unknown"
            assets[kind] += 1
            sizes[kind] += a.size_bytes or 0
            derivs += sum(d.size_bytes for d in stores.outputs.list_derivatives(tenant_id, a.id))
            runs.update(f"{f.value}.{fs.state.value}" for f, fs in a.features.items() if fs.state != "queued")
        if not (cursor := page.next_cursor):
            break
    return {
        "asset_count": sum(assets.values()),
        "assets_by_media_type": dict(assets),
        "bytes_by_media_type": dict(sizes),
        "original_bytes": sum(sizes.values()),
        "derivative_bytes": derivs,
        "feature_runs": dict(runs),
    }


def usage(stores: MetadataStores, tenant_id: str) -> dict[str, Any]:
    return UsageService(stores.assets, stores.outputs, stores.indexes, stores.tasks).usage(tenant_id)


def assert_exact(stores: MetadataStores, tenant_id: str = T1) -> dict[str, Any]:
    counted = usage(stores, tenant_id)
    assert counted == recount(stores, tenant_id)
    return counted


def new_asset(index: Index, media_type: MediaType | None, size: int | None) -> Asset:
    return Asset(
        id=new_test_id("ast"),
        tenant_id=index.tenant_id,
        index_id=index.id,
        name="a",
        media_type=media_type,
        size_bytes=size,
    )


def done(feature: Feature, state: FeatureStatus) -> Callable[[Asset], Asset]:
    def fn(a: Asset) -> Asset:
        return a.model_copy(update={"features": {**a.features, feature: FeatureState(state=state)}})

    return fn


# Fixtures: each runtime's stores, fresh -------------------------------------------------------------
@pytest.fixture
def dynamo_client() -> Iterator[Any]:
    with mock_aws():
        client = shared_clients().dynamodb
        client.create_table(**table_definition(TABLE))
        yield client


@pytest.fixture(params=["sqlite", pytest.param("dynamodb", marks=pytest.mark.aws)])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStores]:
    if request.param == "sqlite":
        db = Database(tmp_path / "metadata.db")
        yield sqlite_stores.open_stores(db)
        db.close()
    else:
        yield dynamo.open_stores(TABLE, request.getfixturevalue("dynamo_client"))


# Writes keep the counters exact -----------------------------------------------------------------------
def test_every_write_keeps_usage_equal_to_a_full_recount(stores: MetadataStores) -> None:
    clips, talks = make_index(stores, "clips"), make_index(stores, "talks")
    theirs = make_index(stores, "clips", tenant=T2)
    video = stores.assets.create(new_asset(clips, MediaType.VIDEO, 1000))
    audio = stores.assets.create(new_asset(talks, MediaType.AUDIO, 300))
    unprobed = stores.assets.create(new_asset(clips, None, None))
    stores.assets.create(new_asset(theirs, MediaType.IMAGE, 77))
    counted = assert_exact(stores)
    assert counted["asset_count"] == 3 and counted["original_bytes"] == 1300
    assert counted["assets_by_media_type"] == {"audio": 1, "unknown": 1, "video": 1}

    # A probe fills the type and size in; runs move through their states (queued ones not counted)
    stores.assets.mutate(
        T1, unprobed.id, lambda a: a.model_copy(update={"media_type": MediaType.IMAGE, "size_bytes": 50})
    )
    stores.assets.mutate(T1, video.id, done(Feature.PROXY, FeatureStatus.QUEUED))
    assert_exact(stores)
    stores.assets.mutate(T1, video.id, done(Feature.PROXY, FeatureStatus.COMPLETED))
    counted = assert_exact(stores)
    assert counted["feature_runs"] == {"proxy.completed": 1}
    assert counted["bytes_by_media_type"] == {"audio": 300, "image": 50, "video": 1000}

    # Tasks write their asset with them
    current = stores.assets.get(T1, audio.id)
    assert current is not None
    task, _ = stores.tasks.create_with_asset(
        make_task(current), done(Feature.PREVIEW, FeatureStatus.FAILED)(current)
    )
    assert_exact(stores)
    stores.tasks.mutate_with_asset(
        T1, task.id, lambda t, a: (t, done(Feature.TRANSCRIPTION, FeatureStatus.COMPLETED)(a))
    )
    assert assert_exact(stores)["feature_runs"] == {
        "preview.failed": 1,
        "proxy.completed": 1,
        "transcription.completed": 1,
    }

    # Derivatives: added, replaced by kind (smaller and larger), other kinds left alone
    stores.outputs.replace_derivatives(T1, video.id, ["poster", "thumbnail"], [
        deriv(video, "poster", size=40), deriv(video, "thumbnail", 0, 5), deriv(video, "thumbnail", 1, 6),
    ])  # fmt: skip
    stores.outputs.replace_derivatives(T1, audio.id, ["proxy"], [deriv(audio, "proxy", size=900)])
    assert assert_exact(stores)["derivative_bytes"] == 951
    stores.outputs.replace_derivatives(T1, video.id, ["thumbnail"], [deriv(video, "thumbnail", 0, 500)])
    assert assert_exact(stores)["derivative_bytes"] == 1440

    # Deleting an asset takes its derivatives' bytes with it; a second delete changes nothing
    assert stores.assets.delete(T1, video.id) is not None
    assert stores.assets.delete(T1, video.id) is None
    counted = assert_exact(stores)
    assert counted["derivative_bytes"] == 900 and counted["asset_count"] == 2

    # An index being deleted is gone to the tenant at once, with its assets
    talks_now = stores.indexes.get(T1, talks.id)
    assert talks_now is not None
    stores.indexes.update(talks_now.model_copy(update={"deleting": True}))
    assert assert_exact(stores)["assets_by_media_type"] == {"image": 1}

    # The other tenant's counters were never touched
    assert assert_exact(stores, T2)["assets_by_media_type"] == {"image": 1}


def test_a_purged_index_leaves_no_usage(stores: MetadataStores) -> None:
    clips = make_index(stores)
    a = stores.assets.create(new_asset(clips, MediaType.VIDEO, 10))
    stores.outputs.replace_derivatives(T1, a.id, ["poster"], [deriv(a, "poster", size=4)])
    assert usage(stores, T1)["asset_count"] == 1
    stores.assets.delete(T1, a.id)
    assert stores.indexes.delete(T1, clips.id)
    assert assert_exact(stores) == {
        "asset_count": 0,
        "assets_by_media_type": {},
        "bytes_by_media_type": {},
        "original_bytes": 0,
        "derivative_bytes": 0,
        "feature_runs": {},
    }


def test_sqlite_counters_leave_with_their_index(tmp_path: Path) -> None:
    db = Database(tmp_path / "metadata.db")
    stores = sqlite_stores.open_stores(db)
    clips, talks = make_index(stores, "clips"), make_index(stores, "talks")
    stores.assets.create(new_asset(clips, MediaType.VIDEO, 10))
    stores.assets.create(new_asset(talks, MediaType.AUDIO, 5))

    # The cascade removes the index's assets without an asset delete: its counters go with it
    assert stores.indexes.delete(T1, clips.id)
    assert stores.assets.usage_by_index(T1) == {talks.id: {"assets:audio": 1, "bytes:audio": 5}}
    assert assert_exact(stores)["asset_count"] == 1
    db.close()


def test_only_the_stores_repository_keeps_counters(stores: MetadataStores) -> None:
    with pytest.raises(NotImplementedError, match="VisibleAssets keeps no usage counters"):
        VisibleAssets(stores.assets, stores.indexes).usage_by_index(T1)


# Rows an earlier release wrote: counted once, then kept -------------------------------------------------
def _old_sqlite_database(path: Path, tmp_path: Path) -> Database:
    """A database as the previous release left it: the migrations before the counters."""
    before = tmp_path / "migrations-before"
    before.mkdir()
    for mig in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(mig.name[:3]) < 7:
            shutil.copy(mig, before / mig.name)
    db = Database(path, migrations_dir=before)
    db.migrate()
    return db


def test_sqlite_backfill_counts_rows_written_before_the_counters(tmp_path: Path) -> None:
    path = tmp_path / "metadata.db"
    old = _old_sqlite_database(path, tmp_path)
    index = Index(id=new_test_id("idx"), tenant_id=T1, name="clips")
    assets = [new_asset(index, MediaType.VIDEO, 100), new_asset(index, MediaType.AUDIO, 7)]
    assets[0].features = {Feature.PROXY: FeatureState(state=FeatureStatus.COMPLETED)}
    with old.transaction() as tx:  # the rows as the previous release wrote them
        tx.execute(
            "INSERT INTO indexes (id, tenant_id, name, asset_count, version, doc) VALUES (?, ?, ?, 2, 1, ?)",
            (index.id, T1, index.name, index.model_dump_json()),
        )
        for a in assets:
            tx.execute(
                "INSERT INTO assets (id, tenant_id, index_id, status, media_type, version, doc)"
                " VALUES (?, ?, ?, ?, ?, 1, ?)",
                (
                    a.id,
                    T1,
                    index.id,
                    a.status.value,
                    a.media_type,
                    a.model_copy(update={"version": 1}).model_dump_json(),
                ),
            )
        d = deriv(assets[0], "poster", size=33)
        tx.execute(
            "INSERT INTO derivatives (asset_id, kind, idx, doc) VALUES (?, ?, ?, ?)",
            (assets[0].id, d.kind, d.index, d.model_dump_json()),
        )
    old.close()

    db = Database(path)
    stores = sqlite_stores.open_stores(db)  # applies 007_usage_counters
    counted = assert_exact(stores)
    assert counted["asset_count"] == 2 and counted["original_bytes"] == 107
    assert counted["derivative_bytes"] == 33 and counted["feature_runs"] == {"proxy.completed": 1}

    # Kept from then on: writes to the old rows change the counters, and a rebuild is not redone
    stores.assets.mutate(T1, assets[1].id, lambda a: a.model_copy(update={"size_bytes": 70}))
    stores.assets.delete(T1, assets[0].id)
    rebuild_usage(db, T1)  # a no-op: the tenant is whole
    counted = assert_exact(stores)
    assert counted["original_bytes"] == 70 and counted["derivative_bytes"] == 0

    statements: list[str] = []
    db.connection().set_trace_callback(statements.append)
    usage(stores, T1)
    db.connection().set_trace_callback(None)
    assert len(statements) == 3, statements  # the marker, the counters, the tenant's indexes
    db.close()


def _old_dynamo_asset(
    table: Table, index: Index, media_type: MediaType, size: int, derivs: list[int]
) -> Asset:
    """An asset item (and derivative items) as the previous release wrote them: no `in_usage`."""
    asset = new_asset(index, media_type, size).model_copy(update={"version": 1})
    item = asset_item(asset)
    del item[COUNTED]
    items: list[Item] = [item]
    for i, size_bytes in enumerate(derivs):
        d = deriv(asset, "thumbnail", i, size_bytes)
        items.append(
            {
                **key(asset_pk(asset.id), f"DERIV#thumbnail#{i:06d}"),
                "type": s("derivative"),
                "doc": s(d.model_dump_json()),
            }
        )
    table.batch_put(items)
    return asset


@pytest.mark.aws
def test_dynamo_backfill_counts_items_written_before_the_counters(dynamo_client: Any) -> None:
    stores = dynamo.open_stores(TABLE, dynamo_client)
    table = Table(TABLE, dynamo_client)
    index = make_index(stores)
    kept = _old_dynamo_asset(table, index, MediaType.VIDEO, 1000, [10, 20])
    changed = _old_dynamo_asset(table, index, MediaType.AUDIO, 50, [5])
    deleted = _old_dynamo_asset(table, index, MediaType.IMAGE, 9, [1])
    rederived = _old_dynamo_asset(table, index, MediaType.IMAGE, 8, [100])
    fresh = stores.assets.create(new_asset(index, MediaType.VIDEO, 4))

    counted = assert_exact(stores)  # the first read adopts the four old assets
    assert counted["asset_count"] == 5 and counted["derivative_bytes"] == 136
    assert counted["original_bytes"] == 1071

    calls: list[str] = []
    dynamo_client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    counted_again = usage(stores, T1)
    assert counted_again == counted and calls == ["Query", "Query"]  # counters, indexes: no backfill

    # Writes after the backfill keep it exact
    stores.assets.mutate(T1, changed.id, lambda a: a.model_copy(update={"size_bytes": 500}))
    stores.assets.delete(T1, deleted.id)
    stores.outputs.replace_derivatives(T1, rederived.id, ["thumbnail"], [deriv(rederived, "thumbnail", 0, 3)])
    stores.outputs.replace_derivatives(T1, fresh.id, ["poster"], [deriv(fresh, "poster", 0, 2)])
    counted = assert_exact(stores)
    assert counted["derivative_bytes"] == 40 and counted["original_bytes"] == 1512
    assert kept.id in {a.id for a in stores.assets.list(T1, limit=10, cursor=None).data}


@pytest.mark.aws
def test_dynamo_old_asset_written_before_any_read_is_adopted_once(dynamo_client: Any) -> None:
    stores = dynamo.open_stores(TABLE, dynamo_client)
    table = Table(TABLE, dynamo_client)
    index = make_index(stores)
    old = _old_dynamo_asset(table, index, MediaType.VIDEO, 10, [7])
    # A write reaches it before any usage read: it is adopted (values and derivatives) first
    stores.assets.mutate(T1, old.id, done(Feature.PROXY, FeatureStatus.COMPLETED))
    assert read_counted(table, T1, old.id) is not None  # adopted already: nothing more
    current = stores.assets.get(T1, old.id)
    assert current is not None
    stores.tasks.create_with_asset(make_task(current), current)
    counted = assert_exact(stores)
    assert counted["derivative_bytes"] == 7 and counted["original_bytes"] == 10
    assert counted["feature_runs"] == {"proxy.completed": 1}


@pytest.mark.aws
def test_dynamo_asset_rewritten_by_an_earlier_release_is_not_counted_twice(dynamo_client: Any) -> None:
    stores = dynamo.open_stores(TABLE, dynamo_client)
    table = Table(TABLE, dynamo_client)
    index = make_index(stores)
    a = stores.assets.create(new_asset(index, MediaType.VIDEO, 10))
    stores.outputs.replace_derivatives(T1, a.id, ["poster"], [deriv(a, "poster", size=3)])

    # A previous-release process (a rolling deploy) rewrites the item without `in_usage`
    item = asset_item(a.model_copy(update={"version": a.version + 1}))
    del item[COUNTED]
    table.put(item)

    # Writes to it still go through, and it is counted once, derivatives included
    stores.assets.mutate(T1, a.id, done(Feature.PROXY, FeatureStatus.COMPLETED))
    counted = assert_exact(stores)
    assert counted["asset_count"] == 1 and counted["derivative_bytes"] == 3


# DynamoDB races resolve to the exact numbers -------------------------------------------------------------
class RacingTable(Table):
    """A Table that runs `meanwhile` once, just before its next transaction: another writer
    landing between a repository's reads and its write."""

    meanwhile: Callable[[], object] | None = None

    def transact(self, items: list[Item]) -> None:
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            run()
        super().transact(items)


@pytest.mark.aws
def test_dynamo_delete_racing_a_derivative_replace_counts_both(dynamo_client: Any) -> None:
    stores = dynamo.open_stores(TABLE, dynamo_client)
    racing = RacingTable(TABLE, dynamo_client)
    index = make_index(stores)
    a = stores.assets.create(new_asset(index, MediaType.VIDEO, 10))
    stores.outputs.replace_derivatives(T1, a.id, ["poster"], [deriv(a, "poster", size=5)])

    # The replace lands after the delete read the counted bytes (5): the delete reads again (20)
    racing.meanwhile = lambda: stores.outputs.replace_derivatives(
        T1, a.id, ["poster"], [deriv(a, "poster", size=20)]
    )
    assert DynamoAssetRepository(racing).delete(T1, a.id) is not None
    assert assert_exact(stores)["derivative_bytes"] == 0


@pytest.mark.aws
def test_dynamo_recount_racing_a_delete_adds_nothing(dynamo_client: Any) -> None:
    stores = dynamo.open_stores(TABLE, dynamo_client)
    racing = RacingTable(TABLE, dynamo_client)
    index = make_index(stores)
    a = stores.assets.create(new_asset(index, MediaType.VIDEO, 10))
    keep = stores.assets.create(new_asset(index, MediaType.AUDIO, 3))

    # The asset is deleted between the recount's reads and its write: its bytes are not added
    racing.meanwhile = lambda: stores.assets.delete(T1, a.id)
    DynamoOutputRepository(racing).replace_derivatives(T1, a.id, ["poster"], [deriv(a, "poster", size=9)])
    recount_derivatives(racing, T1, a.id)  # asset gone: nothing to count, no error
    counted = assert_exact(stores)
    assert counted["derivative_bytes"] == 0 and counted["asset_count"] == 1
    assert stores.assets.get(T1, keep.id) is not None


@pytest.mark.aws
def test_dynamo_two_writers_adopting_one_old_asset_count_it_once(dynamo_client: Any) -> None:
    stores = dynamo.open_stores(TABLE, dynamo_client)
    racing = RacingTable(TABLE, dynamo_client)
    index = make_index(stores)
    old = _old_dynamo_asset(racing, index, MediaType.VIDEO, 40, [6])

    # Another writer adopts it between this one's reads and its adopting transaction
    racing.meanwhile = lambda: stores.assets.mutate(T1, old.id, done(Feature.PROXY, FeatureStatus.FAILED))
    adopted = read_counted(racing, T1, old.id)
    assert adopted is not None and adopted.features[Feature.PROXY].state == FeatureStatus.FAILED
    counted = assert_exact(stores)
    assert counted["original_bytes"] == 40 and counted["derivative_bytes"] == 6


def test_a_write_that_fails_changes_no_counter(stores: MetadataStores) -> None:
    index = make_index(stores)
    a = stores.assets.create(new_asset(index, MediaType.VIDEO, 10))
    current = stores.assets.get(T1, a.id)
    assert current is not None
    task, current = stores.tasks.create_with_asset(make_task(current), current)
    before = assert_exact(stores)

    # The asset's change is written first, then the task id is found taken: all of it undone
    again = task.model_copy(update={"version": 0})
    changed = current.model_copy(update={"size_bytes": 999_999, "media_type": MediaType.AUDIO})
    with pytest.raises(ConflictError) as err:
        stores.tasks.create_with_asset(again, changed)
    assert err.value.code == "task_already_exists"
    assert assert_exact(stores) == before
