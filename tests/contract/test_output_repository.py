"""OutputRepository contract (derivatives and segments), on SQLite and on DynamoDB (moto): outputs
belong to their asset, and another tenant's asset has none and cannot be given any."""

from __future__ import annotations

import pytest

from mediaindex.domain.errors import NotFoundError
from mediaindex.domain.models import Asset, Segment
from mediaindex.ports.stores import MetadataStores
from tests.contract.metadata_factories import T1, T2, deriv, make_asset, make_index, new_test_id, segment


def test_replace_derivatives_leaves_one_set_per_kind(stores: MetadataStores) -> None:
    asset = make_asset(stores, make_index(stores))
    stores.outputs.replace_derivatives(T1, asset.id, ["proxy"], [deriv(asset, "proxy")])
    stores.outputs.replace_derivatives(
        T1, asset.id, ["thumbnail"], [deriv(asset, "thumbnail", i) for i in range(3)]
    )

    # When the thumbnails are made again, fewer and bigger
    stores.outputs.replace_derivatives(
        T1, asset.id, ["thumbnail"], [deriv(asset, "thumbnail", i, size=99) for i in range(2)]
    )

    got = stores.outputs.list_derivatives(T1, asset.id)
    assert [(d.kind, d.index, d.size_bytes) for d in got] == [
        ("proxy", 0, 10),
        ("thumbnail", 0, 99),
        ("thumbnail", 1, 99),
    ]


def test_outputs_of_a_missing_asset_are_refused(stores: MetadataStores) -> None:
    ghost = Asset(id=new_test_id("ast"), tenant_id=T1, index_id="idx_x", name="a.mp4")
    with pytest.raises(NotFoundError):
        stores.outputs.replace_derivatives(T1, ghost.id, ["proxy"], [deriv(ghost, "proxy")])
    with pytest.raises(NotFoundError):
        stores.outputs.replace_segments(T1, ghost.id, [segment(ghost)])
    assert stores.outputs.list_derivatives(T1, ghost.id) == []
    assert stores.outputs.list_segments(T1, ghost.id, limit=5, cursor=None).data == []


def test_segments_page_in_time_order_and_replace(stores: MetadataStores) -> None:
    asset = make_asset(stores, make_index(stores))
    # Given segments whose ids are not in time order
    segs = [segment(asset, s, s + 1.5) for s in (9.0, 0.0, 4.5, 1.25, 30.0)]
    stores.outputs.replace_segments(T1, asset.id, segs)

    first = stores.outputs.list_segments(T1, asset.id, limit=2, cursor=None)
    second = stores.outputs.list_segments(T1, asset.id, limit=2, cursor=first.next_cursor)
    third = stores.outputs.list_segments(T1, asset.id, limit=2, cursor=second.next_cursor)

    assert [s.start for s in first.data + second.data + third.data] == [0.0, 1.25, 4.5, 9.0, 30.0]
    assert third.next_cursor is None

    # When they are replaced, Then only the new set remains
    new = [Segment(id=new_test_id("seg"), asset_id=asset.id, start=2.0, end=3.0, kind="window", text="hi")]
    stores.outputs.replace_segments(T1, asset.id, new)
    assert stores.outputs.list_segments(T1, asset.id, limit=10, cursor=None).data == new


# Another tenant ----------------------------------------------------------------------------------
def _asset_with_outputs(stores: MetadataStores) -> Asset:
    asset = make_asset(stores, make_index(stores))
    stores.outputs.replace_derivatives(
        T1, asset.id, ["proxy", "poster"], [deriv(asset, "proxy"), deriv(asset, "poster")]
    )
    stores.outputs.replace_segments(T1, asset.id, [segment(asset, 0.0), segment(asset, 2.0)])
    return asset


def test_another_tenant_reads_no_outputs(stores: MetadataStores) -> None:
    asset = _asset_with_outputs(stores)

    assert stores.outputs.list_derivatives(T2, asset.id) == []
    page = stores.outputs.list_segments(T2, asset.id, limit=1, cursor=None)
    assert page.data == [] and page.next_cursor is None
    # Nor by following tenant one's cursor
    cursor = stores.outputs.list_segments(T1, asset.id, limit=1, cursor=None).next_cursor
    assert cursor is not None
    assert stores.outputs.list_segments(T2, asset.id, limit=1, cursor=cursor).data == []


def test_another_tenant_cannot_replace_outputs(stores: MetadataStores) -> None:
    asset = _asset_with_outputs(stores)
    before_derivs = stores.outputs.list_derivatives(T1, asset.id)
    before_segs = stores.outputs.list_segments(T1, asset.id, limit=10, cursor=None).data

    with pytest.raises(NotFoundError) as err:
        stores.outputs.replace_derivatives(T2, asset.id, ["proxy", "poster"], [deriv(asset, "proxy", size=1)])
    assert err.value.code == "asset_not_found"
    with pytest.raises(NotFoundError) as err:
        stores.outputs.replace_segments(T2, asset.id, [])
    assert err.value.code == "asset_not_found"

    assert stores.outputs.list_derivatives(T1, asset.id) == before_derivs
    assert stores.outputs.list_segments(T1, asset.id, limit=10, cursor=None).data == before_segs
