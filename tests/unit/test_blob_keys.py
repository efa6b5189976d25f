"""Blob keys in both layouts (domain/blob_keys.py): where an asset's objects go, how an original's
key is read back (an S3 event, the local PUT route), and the layout each stored asset records."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from mediaindex.domain.blob_keys import (
    LAYOUT_HASHED,
    LAYOUT_TENANT_FIRST,
    NEW_KEY_LAYOUT,
    asset_prefixes,
    derived_key,
    key_hash,
    original_key,
    parse_original_key,
)
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import Asset

TENANT = "ten_01hx0000000000000000000001"
ASSET = "ast_01hx0000000000000000000001"
HH = hashlib.sha256(ASSET.encode()).hexdigest()[:2]  # the spec, computed apart from the code


def asset(layout: int, asset_id: str = ASSET) -> Asset:
    return Asset(id=asset_id, tenant_id=TENANT, index_id="idx_1", name="clip.mp4", key_layout=layout)


# ---- keys ---------------------------------------------------------------------------------------------
def test_layout_1_keys_are_the_previous_releases() -> None:
    old = asset(LAYOUT_TENANT_FIRST)
    assert (
        original_key(TENANT, ASSET, "mp4", LAYOUT_TENANT_FIRST) == f"originals/{TENANT}/{ASSET}/original.mp4"
    )
    assert derived_key(old, "keyframes/00001.jpg") == f"derived/{TENANT}/{ASSET}/keyframes/00001.jpg"
    assert asset_prefixes(old) == (f"originals/{TENANT}/{ASSET}/", f"derived/{TENANT}/{ASSET}/")


def test_layout_2_keys_put_the_asset_ids_hash_before_the_tenant() -> None:
    new = asset(LAYOUT_HASHED)
    assert (
        original_key(TENANT, ASSET, "mp4", LAYOUT_HASHED) == f"originals/{HH}/{TENANT}/{ASSET}/original.mp4"
    )
    assert original_key(TENANT, ASSET, "", LAYOUT_HASHED) == f"originals/{HH}/{TENANT}/{ASSET}/original"
    assert derived_key(new, "proxy.mp4") == f"derived/{HH}/{TENANT}/{ASSET}/proxy.mp4"
    assert asset_prefixes(new) == (f"originals/{HH}/{TENANT}/{ASSET}/", f"derived/{HH}/{TENANT}/{ASSET}/")
    assert NEW_KEY_LAYOUT == LAYOUT_HASHED


def test_an_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown key layout 3"):
        original_key(TENANT, ASSET, "mp4", 3)
    with pytest.raises(ValueError, match="unknown key layout 0"):
        derived_key(asset(0), "proxy.mp4")


def test_deleting_the_two_prefixes_covers_every_key_of_the_asset() -> None:
    for owner in (asset(LAYOUT_TENANT_FIRST), asset(LAYOUT_HASHED)):
        keys = [original_key(TENANT, ASSET, "mov", owner.key_layout), derived_key(owner, "poster.jpg")]
        assert all(any(k.startswith(p) for p in asset_prefixes(owner)) for k in keys)


def test_another_assets_prefixes_never_cover_this_ones_keys() -> None:
    # `ast_1/` is not a prefix of `ast_10/...`: every prefix ends with the slash
    one, ten = asset(LAYOUT_HASHED, "ast_1"), asset(LAYOUT_HASHED, "ast_10")
    keys = [original_key(TENANT, "ast_10", "mp4", 2), derived_key(ten, "x.jpg")]
    assert not any(k.startswith(p) for k in keys for p in asset_prefixes(one))


def test_time_ordered_ids_made_in_one_burst_spread_over_every_hash_range() -> None:
    # 10,000 ids minted in the same few milliseconds: the ids share their leading characters,
    # their hashes do not. Expected 39 per range; a Poisson(39) count past 78 is ~1e-8.
    ids = [new_id("ast") for _ in range(10_000)]
    per_range = Counter(key_hash(i) for i in ids)
    assert len(per_range) == 256
    assert max(per_range.values()) < 78
    assert all(len(h) == 2 and int(h, 16) < 256 for h in per_range)


# ---- parsing an original's key ---------------------------------------------------------------------
@pytest.mark.parametrize("layout", [LAYOUT_TENANT_FIRST, LAYOUT_HASHED])
@pytest.mark.parametrize("ext", ["mp4", "", "m4a", "jpeg"])
def test_an_originals_key_parses_back_in_either_layout(layout: int, ext: str) -> None:
    asset_id = new_id("ast")
    assert parse_original_key(original_key(TENANT, asset_id, ext, layout)) == (TENANT, asset_id)


def _other_hash(asset_id: str) -> str:
    return f"{(int(key_hash(asset_id), 16) + 1) % 256:02x}"


HOSTILE = {
    "derived, not originals": f"derived/{HH}/{TENANT}/{ASSET}/original.mp4",
    "upper-case folder": f"ORIGINALS/{TENANT}/{ASSET}/original.mp4",
    "leading slash": f"/originals/{TENANT}/{ASSET}/original.mp4",
    "too few segments": f"originals/{TENANT}/original.mp4",
    "an extra segment after": f"originals/{TENANT}/{ASSET}/original.mp4/x",
    "extra segments before": f"originals/xx/{HH}/{TENANT}/{ASSET}/original.mp4",
    "a folder, no name": f"originals/{TENANT}/{ASSET}/",
    "another file name": f"originals/{TENANT}/{ASSET}/proxy.mp4",
    "a name that only starts so": f"originals/{TENANT}/{ASSET}/originalX.mp4",
    "an empty extension": f"originals/{TENANT}/{ASSET}/original.",
    "two extensions": f"originals/{TENANT}/{ASSET}/original.mp4.exe",
    "a query in the name": f"originals/{TENANT}/{ASSET}/original.mp4?x=1",
    "dot-dot tenant": f"originals/../{ASSET}/original.mp4",
    "dot-dot asset": f"originals/{TENANT}/../original.mp4",
    "dot segment": f"originals/./{TENANT}/{ASSET}/original.mp4",
    "empty tenant": f"originals//{ASSET}/original.mp4",
    "empty hash": f"originals//{TENANT}/{ASSET}/original.mp4",
    "backslashes": f"originals/{TENANT}\\..\\x/{ASSET}/original.mp4",
    "still URL-encoded": f"originals/{TENANT}%2F..%2Fx/{ASSET}/original.mp4",
    "non-ASCII": f"originals/{TENANT}/ast_é/original.mp4",
    "the wrong hash": f"originals/{_other_hash(ASSET)}/{TENANT}/{ASSET}/original.mp4",
    "the tenant's hash": f"originals/{key_hash(TENANT)}/{TENANT}/{ASSET}/original.mp4",
    "a longer hash": f"originals/{HH}0/{TENANT}/{ASSET}/original.mp4",
    "dot-dot in layout 2": f"originals/{key_hash('..')}/{TENANT}/../original.mp4",
}


@pytest.mark.parametrize("key", HOSTILE.values(), ids=HOSTILE.keys())
def test_any_other_key_is_not_an_original(key: str) -> None:
    assert key_hash(TENANT) != HH  # "the tenant's hash" must differ from the asset's to mean anything
    assert parse_original_key(key) is None


def test_an_upper_case_hash_is_not_the_hash() -> None:
    asset_id = next(i for i in (new_id("ast") for _ in range(100)) if key_hash(i) != key_hash(i).upper())
    key = original_key(TENANT, asset_id, "mp4", LAYOUT_HASHED)
    assert parse_original_key(key.replace(key_hash(asset_id), key_hash(asset_id).upper(), 1)) is None


# ---- the layout each asset records -------------------------------------------------------------------
def test_a_stored_asset_without_a_layout_is_layout_1_and_is_written_back_without_one() -> None:
    # What the previous release stored: no key_layout
    doc = asset(LAYOUT_TENANT_FIRST).model_dump(mode="json")
    assert "key_layout" not in doc
    old = Asset.model_validate(doc)
    assert old.key_layout == LAYOUT_TENANT_FIRST
    assert asset_prefixes(old)[0] == f"originals/{TENANT}/{ASSET}/"


def test_a_new_layout_is_stored_explicitly_and_read_back() -> None:
    doc = asset(LAYOUT_HASHED).model_dump(mode="json")
    assert doc["key_layout"] == LAYOUT_HASHED
    assert Asset.model_validate_json(asset(LAYOUT_HASHED).model_dump_json()).key_layout == LAYOUT_HASHED
