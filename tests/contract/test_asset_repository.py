"""AssetRepository contract, on SQLite and on DynamoDB (moto). Every call names the tenant; an
asset of another tenant reads as missing and cannot be changed or deleted."""

from __future__ import annotations

import pytest

from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.models import Asset, AssetStatus, MediaType
from mediaindex.ports.stores import MetadataStores
from tests.contract.metadata_factories import (
    T1,
    T2,
    deriv,
    make_asset,
    make_index,
    new_test_id,
    segment,
    start_task,
)


def test_asset_create_get_and_tenant_scope(stores: MetadataStores) -> None:
    index = make_index(stores)
    asset = make_asset(stores, index)

    assert asset.version == 1
    assert stores.assets.get(T1, asset.id) == asset
    assert stores.assets.get(T2, asset.id) is None  # another tenant's asset does not exist
    assert stores.assets.get(T1, "ast_missing") is None


def test_get_many_reads_the_tenants_assets_in_one_go(stores: MetadataStores) -> None:
    index = make_index(stores)
    mine = [make_asset(stores, index) for _ in range(3)]
    theirs = make_asset(stores, make_index(stores, tenant=T2))
    # More ids than one DynamoDB batch (100) holds, repeats and missing ones among them
    wanted = (
        [a.id for a in mine] + [theirs.id, "ast_missing", mine[0].id] + [f"ast_none{i}" for i in range(120)]
    )
    found = stores.assets.get_many(T1, wanted)
    assert found == {a.id: a for a in mine}
    assert stores.assets.get_many(T2, [a.id for a in mine]) == {}
    assert stores.assets.get_many(T1, []) == {}


def test_asset_in_unknown_or_foreign_index_is_refused(stores: MetadataStores) -> None:
    foreign = make_index(stores, tenant=T2)
    for index_id in ("idx_missing", foreign.id):
        with pytest.raises(NotFoundError) as err:
            stores.assets.create(Asset(id=new_test_id("ast"), tenant_id=T1, index_id=index_id, name="a.mp4"))
        assert err.value.code == "index_not_found"
    refreshed = stores.indexes.get(T2, foreign.id)
    assert refreshed is not None and refreshed.asset_count == 0


def test_duplicate_asset_id_is_a_conflict_and_count_stays_right(stores: MetadataStores) -> None:
    index = make_index(stores)
    asset = make_asset(stores, index)

    with pytest.raises(ConflictError):
        stores.assets.create(asset.model_copy(update={"version": 0}))

    got = stores.indexes.get(T1, index.id)
    assert got is not None and got.asset_count == 1


def test_asset_count_follows_creates_and_deletes(stores: MetadataStores) -> None:
    index = make_index(stores)
    assets = [make_asset(stores, index) for _ in range(3)]
    got = stores.indexes.get(T1, index.id)
    assert got is not None and got.asset_count == 3

    # When one is deleted (twice: the second finds nothing)
    deleted = stores.assets.delete(T1, assets[0].id)
    again = stores.assets.delete(T1, assets[0].id)

    # Then it is returned once, gone, and counted once
    assert deleted is not None and deleted.id == assets[0].id
    assert again is None
    assert stores.assets.get(T1, assets[0].id) is None
    got = stores.indexes.get(T1, index.id)
    assert got is not None and got.asset_count == 2


def test_update_index_never_overwrites_asset_count(stores: MetadataStores) -> None:
    # Given an index read before two assets were added
    index = make_index(stores)
    make_asset(stores, index)
    make_asset(stores, index)

    # When that (stale-count) copy is written back with a new description
    updated = stores.indexes.update(index.model_copy(update={"description": "x"}))

    # Then the count is the store's, not the copy's
    assert updated.asset_count == 2
    got = stores.indexes.get(T1, index.id)
    assert got is not None and got.asset_count == 2 and got.description == "x"


def test_mutate_asset_applies_fn_and_bumps_version(stores: MetadataStores) -> None:
    index = make_index(stores)
    asset = make_asset(stores, index)

    def rename(a: Asset) -> Asset:
        return a.model_copy(update={"name": "renamed.mp4", "status": AssetStatus.READY})

    out = stores.assets.mutate(T1, asset.id, rename)

    assert out.name == "renamed.mp4" and out.version == asset.version + 1
    assert stores.assets.get(T1, asset.id) == out
    # The status column/attribute follows the document
    ready = stores.assets.list(T1, status=AssetStatus.READY, limit=10, cursor=None)
    assert [a.id for a in ready.data] == [asset.id]


def test_mutate_keeps_the_stored_identity_whatever_fn_returns(stores: MetadataStores) -> None:
    asset = make_asset(stores, make_index(stores))

    out = stores.assets.mutate(T1, asset.id, lambda a: a.model_copy(update={"tenant_id": T2, "version": 99}))

    assert out.tenant_id == T1 and out.version == asset.version + 1
    assert stores.assets.get(T2, asset.id) is None


def test_mutate_missing_asset_is_not_found(stores: MetadataStores) -> None:
    with pytest.raises(NotFoundError) as err:
        stores.assets.mutate(T1, "ast_missing", lambda a: a)
    assert err.value.code == "asset_not_found"


def test_assets_page_through_three_pages_newest_first(stores: MetadataStores) -> None:
    index = make_index(stores)
    made = [make_asset(stores, index) for _ in range(7)]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = stores.assets.list(T1, index_id=index.id, limit=3, cursor=cursor)
        seen += [a.id for a in page.data]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break

    assert pages == 3
    assert seen == [a.id for a in reversed(made)]


def test_exact_multiple_of_limit_ends_without_an_empty_page(stores: MetadataStores) -> None:
    index = make_index(stores)
    for _ in range(4):
        make_asset(stores, index)

    first = stores.assets.list(T1, limit=2, cursor=None)
    second = stores.assets.list(T1, limit=2, cursor=first.next_cursor)

    assert len(second.data) == 2 and second.next_cursor is None


def test_filters_still_return_full_pages(stores: MetadataStores) -> None:
    # Given ready videos hidden among many other assets, in two indexes
    index = make_index(stores, "a")
    other = make_index(stores, "b")
    ready_videos = []
    for n in range(12):
        make_asset(stores, index, status=AssetStatus.PROCESSING)
        make_asset(stores, index, status=AssetStatus.READY, media_type=MediaType.AUDIO)
        make_asset(stores, other, status=AssetStatus.READY)
        if n % 3 == 0:
            ready_videos.append(make_asset(stores, index, status=AssetStatus.READY))

    # When listing ready videos of the first index, two per page
    ready, video = AssetStatus.READY, MediaType.VIDEO
    first = stores.assets.list(T1, index_id=index.id, status=ready, media_type=video, limit=2, cursor=None)
    second = stores.assets.list(
        T1, index_id=index.id, status=ready, media_type=video, limit=2, cursor=first.next_cursor
    )

    # Then each page is full and holds only matches
    assert [a.id for a in first.data + second.data] == [a.id for a in reversed(ready_videos)]
    assert second.next_cursor is None
    # And the tenant-wide listing filters too
    audio = stores.assets.list(T1, media_type=MediaType.AUDIO, limit=100, cursor=None)
    assert len(audio.data) == 12 and all(a.media_type == MediaType.AUDIO for a in audio.data)
    assert stores.assets.list(T2, limit=10, cursor=None).data == []
    # Another tenant listing the index by its id sees nothing of it
    assert stores.assets.list(T2, index_id=index.id, limit=10, cursor=None).data == []


def test_delete_asset_cascades_to_tasks_derivatives_and_segments(stores: MetadataStores) -> None:
    index = make_index(stores)
    keep = make_asset(stores, index)
    gone = make_asset(stores, index)
    for a in (keep, gone):
        start_task(stores, a)
        stores.outputs.replace_derivatives(T1, a.id, ["proxy"], [deriv(a, "proxy")])
        stores.outputs.replace_segments(T1, a.id, [segment(a)])
    gone_task = stores.tasks.list(T1, asset_id=gone.id, limit=5, cursor=None).data[0]

    stores.assets.delete(T1, gone.id)

    assert stores.tasks.get(T1, gone_task.id) is None
    assert stores.tasks.list(T1, asset_id=gone.id, limit=5, cursor=None).data == []
    assert stores.outputs.list_derivatives(T1, gone.id) == []
    assert stores.outputs.list_segments(T1, gone.id, limit=5, cursor=None).data == []
    # The neighbour keeps everything
    assert len(stores.tasks.list(T1, limit=5, cursor=None).data) == 1
    assert len(stores.outputs.list_derivatives(T1, keep.id)) == 1
    assert len(stores.outputs.list_segments(T1, keep.id, limit=5, cursor=None).data) == 1


# Another tenant ----------------------------------------------------------------------------------
def test_another_tenant_cannot_mutate_an_asset(stores: MetadataStores) -> None:
    asset = make_asset(stores, make_index(stores))
    calls = 0

    def steal(a: Asset) -> Asset:
        nonlocal calls
        calls += 1
        return a.model_copy(update={"name": "stolen.mp4"})

    with pytest.raises(NotFoundError) as err:
        stores.assets.mutate(T2, asset.id, steal)

    assert err.value.code == "asset_not_found"
    assert calls == 0
    assert stores.assets.get(T1, asset.id) == asset


def test_another_tenant_cannot_delete_an_asset(stores: MetadataStores) -> None:
    index = make_index(stores)
    asset = make_asset(stores, index)
    task, asset = start_task(stores, asset)
    stores.outputs.replace_derivatives(T1, asset.id, ["proxy"], [deriv(asset, "proxy")])
    stores.outputs.replace_segments(T1, asset.id, [segment(asset)])

    assert stores.assets.delete(T2, asset.id) is None

    # A's asset is still there, with all it owns, and still counted
    assert stores.assets.get(T1, asset.id) == asset
    assert stores.tasks.get(T1, task.id) == task
    assert len(stores.outputs.list_derivatives(T1, asset.id)) == 1
    assert len(stores.outputs.list_segments(T1, asset.id, limit=5, cursor=None).data) == 1
    got = stores.indexes.get(T1, index.id)
    assert got is not None and got.asset_count == 1
