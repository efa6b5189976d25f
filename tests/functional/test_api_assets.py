"""Assets: create with a signed upload, multipart, form upload, URL; read, change, delete."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mediaindex.bootstrap import Runtime
from mediaindex.domain.blob_keys import asset_prefixes
from tests.apiclient import Api, error_code

MiB = 1024 * 1024


def test_name_without_extension_is_refused(api: Api) -> None:
    idx = api.index()
    resp = api.call("POST", "/v1/assets", json={"index_id": idx["id"], "name": "clip"})
    assert resp.status_code == 400 and error_code(resp) == "asset_name_extension_required"
    assert resp.json()["error"]["field"] == "name"


def test_asset_in_unknown_index_is_404(api: Api) -> None:
    resp = api.call("POST", "/v1/assets", json={"index_id": "idx_nope", "name": "a.mp4"})
    assert resp.status_code == 404 and error_code(resp) == "index_not_found"


def test_create_returns_a_signed_put_and_merges_features(api: Api) -> None:
    idx = api.index(default_features=["proxy"])
    out = api.ok(
        "POST",
        "/v1/assets",
        201,
        json={
            "index_id": idx["id"],
            "name": "talk.mp4",
            "features": ["transcription"],
            "user_metadata": {"team": "a"},
        },
    )
    asset, upload = out["asset"], out["upload"]
    assert asset["id"].startswith("ast_") and asset["status"] == "awaiting_upload"
    assert set(asset["features"]) == {"proxy", "transcription"}
    assert all(f["state"] == "queued" for f in asset["features"].values())
    assert asset["media_type"] == "video" and asset["user_metadata"] == {"team": "a"}
    assert upload["method"] == "PUT" and upload["url"].startswith("http") and "expires_at" in upload
    assert "multipart" not in upload
    assert api.ok("GET", f"/v1/indexes/{idx['id']}")["asset_count"] == 1


def test_upload_starts_processing_and_the_pipeline_makes_it_ready(
    api: Api, talking_clip: Path, run_pipeline: Callable[[], int]
) -> None:
    idx = api.index(default_features=["proxy"])
    data = talking_clip.read_bytes()
    asset = api.upload(idx["id"], "talk.mp4", data)
    assert api.ok("GET", f"/v1/assets/{asset['id']}")["status"] == "processing"
    task = api.ok("GET", "/v1/tasks/active")["data"][0]
    assert task["asset_id"] == asset["id"] and task["kind"] == "ingest"

    run_pipeline()

    done = api.ok("GET", f"/v1/assets/{asset['id']}")
    assert done["status"] == "ready", done
    assert done["features"]["proxy"]["state"] == "completed"
    assert done["sha256"] == hashlib.sha256(data).hexdigest()
    assert done["size_bytes"] == len(data)
    assert (done["width"], done["height"]) == (640, 360) and done["duration_s"] > 3
    assert api.ok("GET", f"/v1/tasks/{task['id']}")["state"] == "completed"
    assert api.ok("GET", "/v1/tasks/active")["data"] == []

    kinds = {d["kind"] for d in api.ok("GET", f"/v1/assets/{asset['id']}/derivatives")["data"]}
    assert kinds == {"proxy"}
    dl = api.ok("GET", f"/v1/assets/{asset['id']}/download")
    original = api.client.get(dl["url"])
    assert original.status_code == 200 and original.content == data
    assert "talk.mp4" in original.headers.get("content-disposition", "")


def test_large_files_get_multipart_uploads(api: Api, runtime: Runtime) -> None:
    idx = api.index(default_features=["proxy"])
    size = runtime.settings.multipart_threshold_bytes + 1
    out = api.ok(
        "POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "big.mov", "size_bytes": size}
    )
    mp = out["upload"]["multipart"]
    assert mp["part_size"] >= 5 * MiB
    assert [p["part_number"] for p in mp["parts"]] == list(range(1, -(-size // mp["part_size"]) + 1))
    fresh = api.ok("POST", f"/v1/assets/{out['asset']['id']}/upload/parts", json={"part_numbers": [2]})
    assert [p["part_number"] for p in fresh["parts"]] == [2] and fresh["upload_id"] == mp["upload_id"]


def test_part_urls_of_a_huge_upload_are_signed_on_demand(api: Api) -> None:
    # Given a 40 GiB upload: 2,560 parts of 16 MiB
    idx = api.index(default_features=["proxy"])
    size = 40 * 1024 * MiB
    out = api.ok(
        "POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "huge.mov", "size_bytes": size}
    )
    mp, asset_id = out["upload"]["multipart"], out["asset"]["id"]
    count = -(-size // mp["part_size"])
    # Then the answer stays small: the count, and URLs for the first 100 parts only
    assert mp["part_count"] == count > 100
    assert [p["part_number"] for p in mp["parts"]] == list(range(1, 101))
    # And the rest are signed on demand, 100 at a time, up to the last part and no further
    last = api.ok("POST", f"/v1/assets/{asset_id}/upload/parts", json={"part_numbers": [count - 1, count]})
    assert [p["part_number"] for p in last["parts"]] == [count - 1, count] and last["part_count"] == count
    beyond = api.call("POST", f"/v1/assets/{asset_id}/upload/parts", json={"part_numbers": [count + 1]})
    too_many = api.call(
        "POST", f"/v1/assets/{asset_id}/upload/parts", json={"part_numbers": list(range(101, 202))}
    )
    for resp in (beyond, too_many):
        assert resp.status_code == 400 and error_code(resp) == "parameter_invalid", resp.text


def test_multipart_upload_completes_with_the_right_bytes(
    api: Api, runtime: Runtime, talking_clip: Path, run_pipeline: Callable[[], int]
) -> None:
    idx = api.index(default_features=["proxy"])
    clip = talking_clip.read_bytes()
    data = clip + b"\0" * (
        runtime.settings.multipart_threshold_bytes - len(clip)
    )  # mp4 with trailing padding
    out = api.ok(
        "POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "big.mp4", "size_bytes": len(data)}
    )
    mp, asset_id = out["upload"]["multipart"], out["asset"]["id"]
    parts = []
    for p in mp["parts"]:
        start = (p["part_number"] - 1) * mp["part_size"]
        resp = api.put(p["url"], data[start : start + mp["part_size"]])
        assert resp.status_code == 200, resp.text
        parts.append({"part_number": p["part_number"], "etag": resp.headers["etag"]})
    done = api.ok("POST", f"/v1/assets/{asset_id}/upload/complete", json={"parts": parts})
    assert done["status"] == "processing" and done["size_bytes"] == len(data)
    resp = api.call("POST", f"/v1/assets/{asset_id}/upload/complete", json={"parts": parts})
    assert resp.status_code == 409 and error_code(resp) == "upload_already_completed"
    run_pipeline()
    assert api.ok("GET", f"/v1/assets/{asset_id}")["sha256"] == hashlib.sha256(data).hexdigest()


def test_complete_with_a_wrong_etag_is_refused(api: Api, runtime: Runtime) -> None:
    idx = api.index(default_features=["proxy"])
    size = runtime.settings.multipart_threshold_bytes
    out = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "x.mp4", "size_bytes": size})
    resp = api.call(
        "POST",
        f"/v1/assets/{out['asset']['id']}/upload/complete",
        json={"parts": [{"part_number": 1, "etag": "bad"}]},
    )
    assert resp.status_code == 400 and error_code(resp) == "upload_parts_invalid"
    assert api.ok("GET", f"/v1/assets/{out['asset']['id']}")["status"] == "awaiting_upload"


def test_abort_ends_the_asset(api: Api, runtime: Runtime) -> None:
    idx = api.index(default_features=["proxy"])
    size = runtime.settings.multipart_threshold_bytes
    out = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "x.mp4", "size_bytes": size})
    asset_id = out["asset"]["id"]
    assert api.call("DELETE", f"/v1/assets/{asset_id}/upload").status_code == 204
    after = api.ok("GET", f"/v1/assets/{asset_id}")
    assert after["status"] == "failed" and after["error"]["code"] == "upload_aborted"
    resp = api.call("DELETE", f"/v1/assets/{asset_id}/upload")
    assert resp.status_code == 409


def test_single_put_asset_has_no_multipart_control(api: Api) -> None:
    idx = api.index()
    out = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "a.mp4"})
    resp = api.call("POST", f"/v1/assets/{out['asset']['id']}/upload/parts", json={"part_numbers": [1]})
    assert resp.status_code == 409 and error_code(resp) == "upload_not_multipart"


def test_size_limits(api: Api, runtime: Runtime) -> None:
    idx = api.index()
    resp = api.call("POST", "/v1/assets", json={"index_id": idx["id"], "name": "a.mp4", "size_bytes": 0})
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "size_bytes"
    huge = runtime.settings.max_asset_bytes + 1
    resp = api.call("POST", "/v1/assets", json={"index_id": idx["id"], "name": "a.mp4", "size_bytes": huge})
    assert resp.status_code == 413 and error_code(resp) == "asset_file_too_large"


def test_user_metadata_limits(api: Api) -> None:
    idx = api.index()
    big = {"k": "x" * 10_000}
    resp = api.call("POST", "/v1/assets", json={"index_id": idx["id"], "name": "a.mp4", "user_metadata": big})
    assert resp.status_code == 400 and error_code(resp) == "user_metadata_too_large"
    nested = {"k": {"deep": 1}}
    resp = api.call(
        "POST", "/v1/assets", json={"index_id": idx["id"], "name": "a.mp4", "user_metadata": nested}
    )
    assert resp.status_code == 400 and error_code(resp) == "parameter_invalid"


def test_a_patch_that_would_grow_user_metadata_past_the_limit_stores_nothing(
    api: Api, runtime: Runtime
) -> None:
    # Each PATCH is under the limit alone; merged with what is stored, the second is not
    idx = api.index()
    asset = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "a.mp4"})["asset"]
    chunk = "x" * (runtime.settings.max_user_metadata_bytes * 2 // 3)
    first = api.call("PATCH", f"/v1/assets/{asset['id']}", json={"user_metadata": {"a": chunk}})
    assert first.status_code == 200
    for key in ("b", "c"):
        resp = api.call("PATCH", f"/v1/assets/{asset['id']}", json={"user_metadata": {key: chunk}})
        assert resp.status_code == 400 and error_code(resp) == "user_metadata_too_large"
    assert api.ok("GET", f"/v1/assets/{asset['id']}")["user_metadata"] == {"a": chunk}
    # Replacing the stored key with a smaller value still goes through
    ok = api.call("PATCH", f"/v1/assets/{asset['id']}", json={"user_metadata": {"a": None, "b": "small"}})
    assert ok.status_code == 200 and ok.json()["user_metadata"] == {"b": "small"}


def test_user_metadata_keys_come_back_as_sent_whatever_they_start_with(api: Api) -> None:
    # Keys an encoder might treat as its own (SQLAlchemy's "_sa" prefix) are the user's all the same
    idx = api.index()
    meta = {"_sa_instance": "x", "_private": 1, "$dollar": True, "plain": None}
    created = api.ok(
        "POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "a.mp4", "user_metadata": meta}
    )
    assert created["asset"]["user_metadata"] == meta
    assert api.ok("GET", f"/v1/assets/{created['asset']['id']}")["user_metadata"] == meta
    renamed = api.ok("PATCH", f"/v1/assets/{created['asset']['id']}", json={"name": "b.mp4"})
    assert renamed["user_metadata"] == meta


def test_form_upload_with_a_file(api: Api, small_image: Path, run_pipeline: Callable[[], int]) -> None:
    idx = api.index(default_features=["proxy"])
    resp = api.call(
        "POST",
        "/v1/assets",
        data={
            "index_id": idx["id"],
            "name": "still.png",
            "save_original": "false",
            "user_metadata": '{"shot": 3}',
        },
        files={"asset_file": ("still.png", small_image.read_bytes(), "image/png")},
    )
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["task"]["kind"] == "ingest" and out["asset"]["user_metadata"] == {"shot": 3}
    run_pipeline()
    asset = api.ok("GET", f"/v1/assets/{out['asset']['id']}")
    assert asset["status"] == "ready" and asset["media_type"] == "image"
    resp = api.call("GET", f"/v1/assets/{asset['id']}/download")
    assert resp.status_code == 409 and error_code(resp) == "original_not_saved"


def test_form_upload_source_rules(api: Api) -> None:
    idx = api.index()
    resp = api.call("POST", "/v1/assets", data={"index_id": idx["id"], "name": "a.mp4"})
    assert resp.status_code == 400 and error_code(resp) == "asset_source_required"
    resp = api.call(
        "POST",
        "/v1/assets",
        data={"index_id": idx["id"], "name": "a.mp4", "asset_url": "https://example.com/a.mp4"},
        files={"asset_file": ("a.mp4", b"123", "video/mp4")},
    )
    assert resp.status_code == 400 and error_code(resp) == "asset_source_conflict"


def test_form_upload_over_the_limit_is_413(api: Api, runtime: Runtime) -> None:
    idx = api.index()
    big = b"\0" * (runtime.settings.max_form_upload_bytes + 1)
    resp = api.call(
        "POST",
        "/v1/assets",
        data={"index_id": idx["id"], "name": "a.mp4"},
        files={"asset_file": ("a.mp4", big)},
    )
    assert resp.status_code == 413 and error_code(resp) == "asset_file_too_large"
    assert api.ok("GET", "/v1/assets")["data"] == []  # nothing stored


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.mp4",
        "http://localhost:8000/a.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/a.mp4",
        "http://[::1]/a.mp4",
        "file:///etc/passwd",
        "ftp://example.com/a.mp4",
    ],
)
def test_asset_url_into_private_space_is_forbidden(api: Api, url: str) -> None:
    idx = api.index()
    resp = api.call("POST", "/v1/assets", json={"index_id": idx["id"], "name": "a.mp4", "asset_url": url})
    assert resp.status_code == 400 and error_code(resp) == "asset_url_forbidden"
    assert api.ok("GET", "/v1/assets")["data"] == []


def test_wrong_content_type_is_refused(api: Api) -> None:
    resp = api.call("POST", "/v1/assets", content=b"name=a.mp4", headers={"content-type": "text/plain"})
    assert resp.status_code == 400 and error_code(resp) == "content_type_unsupported"


def test_list_filters_batch_get_patch_and_delete(api: Api, runtime: Runtime) -> None:
    idx = api.index()
    other = api.index("other")
    a = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "a.mp4"})["asset"]
    b = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "b.wav"})["asset"]
    c = api.ok("POST", "/v1/assets", 201, json={"index_id": other["id"], "name": "c.jpg"})["asset"]

    in_idx = api.ok("GET", "/v1/assets", params={"index_id": idx["id"]})["data"]
    assert [x["id"] for x in in_idx] == [b["id"], a["id"]]
    audio = api.ok("GET", "/v1/assets", params={"media_type": "audio"})["data"]
    assert [x["id"] for x in audio] == [b["id"]]
    waiting = api.ok("GET", "/v1/assets", params={"status": "awaiting_upload"})["data"]
    assert len(waiting) == 3

    got = api.ok("POST", "/v1/assets/batch-get", json={"ids": [a["id"], "ast_missing", c["id"]]})
    assert {x["id"] for x in got["data"]} == {a["id"], c["id"]} and got["not_found_ids"] == ["ast_missing"]

    patched = api.ok("PATCH", f"/v1/assets/{a['id']}", json={"user_metadata": {"team": "x", "year": 2024}})
    patched = api.ok(
        "PATCH", f"/v1/assets/{a['id']}", json={"user_metadata": {"year": None}, "name": "renamed.mp4"}
    )
    assert patched["user_metadata"] == {"team": "x"} and patched["name"] == "renamed.mp4"
    resp = api.call("PATCH", f"/v1/assets/{a['id']}", json={"name": "no-extension"})
    assert resp.status_code == 400 and error_code(resp) == "asset_name_extension_required"

    assert api.call("DELETE", f"/v1/assets/{a['id']}").status_code == 204
    resp = api.call("GET", f"/v1/assets/{a['id']}")
    assert resp.status_code == 404 and error_code(resp) == "asset_not_found"
    out = api.ok("POST", "/v1/assets/batch-delete", json={"ids": [b["id"], "ast_gone"]})
    assert out == {"requested_count": 2, "deleted_count": 1, "not_found_ids": ["ast_gone"]}
    assert api.ok("GET", f"/v1/indexes/{idx['id']}")["asset_count"] == 0


def test_delete_removes_files_and_derivatives(
    api: Api, runtime: Runtime, talking_clip: Path, run_pipeline: Callable[[], int]
) -> None:
    idx = api.index(default_features=["proxy", "preview"])
    asset = api.upload(idx["id"], "talk.mp4", talking_clip.read_bytes())
    run_pipeline()
    derivs = api.ok("GET", f"/v1/assets/{asset['id']}/derivatives")["data"]
    assert {"proxy", "poster", "thumbnail", "storyboard"} <= {d["kind"] for d in derivs}
    stored = runtime.stores.assets.get(runtime.services.keys.authenticate(api.key).tenant_id, asset["id"])
    assert stored is not None

    def stored_keys() -> list[str]:
        return [k for p in asset_prefixes(stored) for k in runtime.blobs.list_keys(p)]

    assert {k.split("/")[0] for k in stored_keys()} == {"originals", "derived"}
    assert api.call("DELETE", f"/v1/assets/{asset['id']}").status_code == 204
    assert stored_keys() == []
    assert api.ok("GET", "/v1/tasks", params={"asset_id": asset["id"]})["data"] == []


def test_usage_counts_assets_and_bytes(api: Api, talking_clip: Path, run_pipeline: Callable[[], int]) -> None:
    idx = api.index(default_features=["proxy"])
    data = talking_clip.read_bytes()
    api.upload(idx["id"], "talk.mp4", data)
    run_pipeline()
    usage = api.ok("GET", "/v1/usage")
    assert usage["asset_count"] == 1 and usage["assets_by_media_type"] == {"video": 1}
    assert usage["original_bytes"] == len(data) and usage["derivative_bytes"] > 0
    assert usage["feature_runs"] == {"proxy.completed": 1}
    # And each quota with its use: no limits set, the stored bytes counted
    quotas = {q["name"]: q for q in usage["quotas"]}
    assert set(quotas) == {
        "max_stored_bytes",
        "max_media_hours_per_day",
        "max_concurrent_tasks",
        "requests_per_minute",
    }
    assert quotas["max_stored_bytes"]["limit"] is None and quotas["max_stored_bytes"]["used"] >= len(data)


def test_index_delete_cascades_to_assets(api: Api, runtime: Runtime) -> None:
    idx = api.index()
    a = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "a.mp4"})["asset"]
    tenant_id = runtime.services.keys.authenticate(api.key).tenant_id
    tenant_id = runtime.services.keys.authenticate(api.key).tenant_id
    assert api.call("DELETE", f"/v1/indexes/{idx['id']}").status_code == 202
    deadline_ok = False
    for _ in range(100):
        if runtime.stores.assets.get(tenant_id, a["id"]) is None:
            deadline_ok = True
            break
        import time

        time.sleep(0.05)
    assert deadline_ok, "the index's assets were not purged"
    assert json.dumps(api.ok("GET", "/v1/assets")["data"]) == "[]"
