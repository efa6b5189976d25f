"""Blob key layouts on both runtimes: a new asset's objects go under a hash of its id before the
tenant (layout 2); an asset the previous release stored (layout 1, no `key_layout` in its document)
still uploads, reads and deletes at its old keys. On the AWS runtime every upload below reaches
ingest through the upload Lambda's own code (tests/aws_runtime.py), so its key is parsed as an S3
"Object Created" event's is."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from functions.upload_event import handler as upload_handler
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.domain.blob_keys import LAYOUT_HASHED, LAYOUT_TENANT_FIRST, asset_prefixes, derived_key
from mediaindex.domain.models import Asset
from tests.apiclient import Api
from tests.functional.conftest import BASE_URL

CLIP = b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096)


def stored(runtime: Runtime, api: Api, asset_id: str) -> Asset:
    asset = runtime.stores.assets.get(runtime.services.keys.authenticate(api.key).tenant_id, asset_id)
    assert asset is not None and asset.upload is not None
    return asset


def keys_naming(runtime: Runtime, asset_id: str) -> list[str]:
    """Every object of the asset, wherever it is: in either layout the id is one key segment."""
    return [
        k
        for top in ("originals/", "derived/")
        for k in runtime.blobs.list_keys(top)
        if asset_id in k.split("/")
    ]


def downloaded(api: Api, asset_id: str) -> bytes:
    url = api.ok("GET", f"/v1/assets/{asset_id}/download")["url"]
    resp = api.client.get(url)
    assert resp.status_code == 200, resp.text
    return resp.content


def test_a_new_assets_original_is_under_its_hash_and_lands_reads_and_deletes(
    api: Api, runtime: Runtime
) -> None:
    # Given an asset created and uploaded through the API
    idx = api.index(default_features=["proxy"])
    asset_id = api.upload(idx["id"], "clip.mp4", CLIP)["id"]

    # Then its original's key starts with two hex characters of sha256(asset id), then the tenant
    asset = stored(runtime, api, asset_id)
    hh = hashlib.sha256(asset_id.encode()).hexdigest()[:2]
    assert asset.key_layout == LAYOUT_HASHED
    assert asset.upload is not None
    assert asset.upload.key == f"originals/{hh}/{asset.tenant_id}/{asset_id}/original.mp4"
    # And its upload was taken as its original (the key parsed back to the asset), and reads back
    assert api.ok("GET", f"/v1/assets/{asset_id}")["status"] == "processing"
    assert downloaded(api, asset_id) == CLIP
    assert keys_naming(runtime, asset_id) == [asset.upload.key]

    # When it is deleted, nothing of it stays
    assert api.call("DELETE", f"/v1/assets/{asset_id}").status_code == 204
    assert keys_naming(runtime, asset_id) == []


def test_an_asset_of_the_previous_release_keeps_its_old_keys(api: Api, runtime: Runtime) -> None:
    # Given an asset as the previous release stored it: no key_layout, its original tenant first
    idx = api.index(default_features=["proxy"])
    created = api.ok(
        "POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "old.mp4", "size_bytes": len(CLIP)}
    )
    asset_id = created["asset"]["id"]
    tenant = stored(runtime, api, asset_id).tenant_id
    old_key = f"originals/{tenant}/{asset_id}/original.mp4"

    def as_the_previous_release(a: Asset) -> Asset:
        assert a.upload is not None
        a.upload.key = old_key
        return a.model_copy(update={"key_layout": LAYOUT_TENANT_FIRST})

    runtime.stores.assets.mutate(tenant, asset_id, as_the_previous_release)
    old = stored(runtime, api, asset_id)
    assert "key_layout" not in old.model_dump(mode="json") and old.key_layout == LAYOUT_TENANT_FIRST

    # When its bytes are PUT to a URL signed for its old key (as that release handed out)
    signed = runtime.blobs.presign_put(old_key, "video/mp4", 60, expected_size=len(CLIP), one_shot=True)
    assert api.put(signed.url, CLIP, signed.headers).status_code == 200

    # Then the layout 1 key parsed back to the asset: it landed, and reads back from there
    assert api.ok("GET", f"/v1/assets/{asset_id}")["status"] == "processing"
    assert downloaded(api, asset_id) == CLIP
    # And its derivatives' keys are the old ones too
    poster = derived_key(old, "poster.jpg")
    assert poster == f"derived/{tenant}/{asset_id}/poster.jpg"
    runtime.blobs.put_bytes(poster, b"poster", "image/jpeg")
    assert keys_naming(runtime, asset_id) == [old_key, poster]
    assert asset_prefixes(old) == (f"originals/{tenant}/{asset_id}/", f"derived/{tenant}/{asset_id}/")

    # When it is deleted, both old prefixes are emptied
    assert api.call("DELETE", f"/v1/assets/{asset_id}").status_code == 204
    assert keys_naming(runtime, asset_id) == []


def test_a_new_assets_derivatives_are_under_its_hash_and_go_with_it(
    api: Api, runtime: Runtime, small_image: Path, run_pipeline: Callable[[], int]
) -> None:
    # Given a new asset the pipeline has made derivatives of
    idx = api.index(default_features=["preview"])
    asset_id = api.upload(idx["id"], "still.png", small_image.read_bytes())["id"]
    run_pipeline()
    assert api.ok("GET", f"/v1/assets/{asset_id}/derivatives")["data"]

    # Then every derived object is under its hashed derived prefix
    derived = [k for k in keys_naming(runtime, asset_id) if k.startswith("derived/")]
    assert derived
    assert [k for k in derived if not k.startswith(asset_prefixes(stored(runtime, api, asset_id))[1])] == []
    # And deleting the asset removes them with its original
    assert api.call("DELETE", f"/v1/assets/{asset_id}").status_code == 204
    assert keys_naming(runtime, asset_id) == []


# ---- the S3 "Object Created" event for a layout 2 key ------------------------------------------------
@pytest.mark.aws
def test_an_object_created_event_starts_only_the_asset_its_hashed_key_names(tmp_path: Path) -> None:
    from tests.aws_runtime import build_aws_test_services, executions, object_created_event

    runtime = build_aws_test_services(tmp_path)
    try:
        with TestClient(build_app(runtime, close_on_shutdown=False), base_url=BASE_URL) as client:
            api = Api(client, runtime.services.keys.create_key("acme")[2])
            idx = api.index(default_features=["proxy"])
            created = api.ok(
                "POST",
                "/v1/assets",
                201,
                json={"index_id": idx["id"], "name": "a.mp4", "size_bytes": len(CLIP)},
            )
            asset = stored(runtime, api, created["asset"]["id"])
        assert asset.upload is not None
        key = asset.upload.key
        # Given its bytes in the bucket with no event delivered yet
        info = runtime.blobs.put_bytes(key, CLIP, "video/mp4")
        upload_handler.configure(runtime.services.ingest, runtime.settings.bucket_name, runtime.blobs)
        bucket = runtime.settings.bucket_name

        def deliver(k: str) -> dict[str, object]:
            return dict(upload_handler.process(object_created_event(bucket, k, info.size, info.etag)))

        # When events name the same asset under a wrong hash, or with an extra segment
        hh = key.split("/")[1]
        wrong = f"{(int(hh, 16) + 1) % 256:02x}"
        for forged in (key.replace(f"/{hh}/", f"/{wrong}/", 1), key.replace(f"/{hh}/", f"/{hh}/{hh}/", 1)):
            # Then they are dropped, and the asset still awaits its original
            assert deliver(forged) == {"status": "ignored", "reason": "key"}
        assert runtime.stores.assets.get(asset.tenant_id, asset.id).status == "awaiting_upload"  # type: ignore[union-attr]
        # And an object that parses as this asset's original under the other layout, or another
        # extension, but is not where its upload was signed: deleted, nothing started
        for stray in (key.replace(f"/{hh}/", "/", 1), key.rsplit(".", 1)[0] + ".mov"):
            runtime.blobs.put_bytes(stray, CLIP, "video/mp4")
            assert deliver(stray) == {"status": "deleted", "asset_id": asset.id}
            assert runtime.blobs.head(stray) is None
        assert runtime.stores.assets.get(asset.tenant_id, asset.id).status == "awaiting_upload"  # type: ignore[union-attr]
        assert executions(runtime) == []
        # While the event for its own key (URL-encoded, as S3 sends it) starts its pipeline, once
        assert deliver(key)["status"] == "started"
        assert deliver(key) == {"status": "duplicate", "asset_id": asset.id}
        assert len(executions(runtime)) == 1
    finally:
        runtime.close()
