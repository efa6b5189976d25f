"""Reliability, round two: uploads and deletes, on both runtimes.

- An upload URL writes once: used again (after ingest, or by 16 racing clients) it cannot replace
  the original, so the stored bytes stay the ones the asset's size, sha256 and derivatives describe.
- An upload takes exactly the declared size_bytes (local: counted; S3: Content-Length is signed).
- A PUT to a deleted asset's URL, or one that lands while the asset is deleted, leaves nothing.
- Concurrent multipart completions: exactly one completes; the others are 409, never a 500.
- A pipeline step that finishes after its asset's purge leaves no file, no row, no search doc.
- Multipart uploads left idle are swept: their assets end `failed` with `upload_expired`.

The `aws` runtime is moto in-process with the app's stand-in for S3's presigned endpoint (which
ignores request headers); the PUT rules S3 enforces from headers (If-None-Match) are tested over
real HTTP against a ThreadedMotoServer (`aws-http`). moto checks no signature, so a signed
Content-Length is asserted on the URL there, and enforced by the local adapter."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local, sweep_stale_uploads
from mediaindex.domain.blob_keys import asset_prefixes
from mediaindex.domain.models import Asset
from mediaindex.pipeline.context import StepContext, StepResult
from mediaindex.services.upload_events import object_created
from tests.apiclient import Api, error_code
from tests.functional.conftest import BASE_URL, make_settings
from tests.moto_server import moto_server

MiB = 1024 * 1024
# Multipart from 5 MiB on, in 5 MiB parts: a two-part upload costs 5 MiB and a byte.
SMALL_PARTS: dict[str, Any] = {"multipart_threshold_bytes": 5 * MiB, "part_size_bytes": 5 * MiB}


# ---- runtimes ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:

    with moto_server() as endpoint:
        yield endpoint


def _build(kind: str, data_dir: Path, request: pytest.FixtureRequest) -> Runtime:
    if kind == "local":
        return build_local(make_settings(data_dir, **SMALL_PARTS))
    aws = pytest.importorskip("tests.aws_runtime")
    if kind == "aws":
        return aws.build_aws_test_services(data_dir, orchestrator="inprocess", **SMALL_PARTS)
    endpoint = request.getfixturevalue("moto_endpoint")
    return aws.build_aws_test_services(
        data_dir, endpoint_url=endpoint, orchestrator="inprocess", **SMALL_PARTS
    )


def _one_request_at_a_time(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB and S3 apply each request atomically; moto in-process does not under threads (its
    TransactWriteItems deep-copies tables that other threads change: "dictionary changed size
    during iteration", and 2 winners of one conditional transaction in 3 of 30 rounds of 8). So
    the races here interleave requests, as on AWS, but never run two inside moto at once."""
    lock = threading.Lock()
    call = client._make_api_call

    def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return call(*args, **kwargs)

    monkeypatch.setattr(client, "_make_api_call", one_at_a_time)


@pytest.fixture(params=["local", pytest.param("aws", marks=pytest.mark.aws)])
def rt(request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """Both runtimes, the pipeline in-process (aws: the local executor over DynamoDB and S3)."""
    runtime = _build(str(request.param), data_dir, request)
    if runtime.aws_clients is not None:
        for service in ("dynamodb", "s3"):
            _one_request_at_a_time(runtime.aws_clients.get(service), monkeypatch)
    yield runtime
    runtime.close()


@pytest.fixture(params=["local", pytest.param("aws-http", marks=pytest.mark.aws)])
def http_rt(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Runtime]:
    """Both runtimes, with the signed URLs served over real HTTP as S3 would (aws: moto's server)."""
    runtime = _build(str(request.param), data_dir, request)
    yield runtime
    runtime.close()


def _api(runtime: Runtime) -> Iterator[Api]:
    with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as client:
        yield Api(client, runtime.services.keys.create_key("acme")[2])


@pytest.fixture
def api(rt: Runtime) -> Iterator[Api]:
    yield from _api(rt)


@pytest.fixture
def http_api(http_rt: Runtime) -> Iterator[Api]:
    yield from _api(http_rt)


def is_s3(runtime: Runtime) -> bool:
    return runtime.settings.runtime == "aws"


def tenant_of(runtime: Runtime, api: Api) -> str:
    return runtime.services.keys.authenticate(api.key).tenant_id


def put(api: Api, url: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    """A PUT to a signed URL: through the app for its own routes, else over the network (moto)."""
    if url.startswith(BASE_URL):
        return api.put(url, body, headers)
    return httpx.put(url, content=body, headers=headers, timeout=30)


def land(runtime: Runtime, api: Api, key: str) -> dict[str, Any]:
    """What S3 tells the upload-event path once an original lands (the local router tells ingest
    itself). The blob store is passed as the composition root passes it (see the report)."""
    if not is_s3(runtime):
        return {}
    info = runtime.blobs.head(key)
    assert info is not None
    return object_created(
        runtime.services.ingest,
        bucket=runtime.settings.bucket_name,
        key=quote_plus(key, safe="/"),
        size=info.size,
        etag=info.etag,
        expected_bucket=runtime.settings.bucket_name,
        blobs=runtime.blobs,
    )


def run_pipeline(runtime: Runtime) -> None:
    assert runtime.executor is not None
    runtime.executor.pool.run_until_idle()


def create(api: Api, index_id: str, name: str, size: int | None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"index_id": index_id, "name": name, **fields}
    if size is not None:
        body["size_bytes"] = size
    return dict(api.ok("POST", "/v1/assets", 201, json=body))


def stored_asset(runtime: Runtime, api: Api, asset_id: str) -> Asset:
    asset = runtime.stores.assets.get(tenant_of(runtime, api), asset_id)
    assert asset is not None
    return asset


def original_key(runtime: Runtime, api: Api, asset_id: str) -> str:
    upload = stored_asset(runtime, api, asset_id).upload
    assert upload is not None
    return upload.key


def padded_images(image: bytes, count: int) -> list[bytes]:
    """`count` different files of one length that all decode as the image (PNG ignores bytes after IEND)."""
    return [image + bytes([i]) * 64 for i in range(count)]


# ---- 2. one-shot uploads ----------------------------------------------------------------------------
def test_a_used_upload_url_cannot_replace_the_original_after_ingest(
    http_rt: Runtime, http_api: Api, small_image: Path
) -> None:
    # Given an image uploaded through its signed URL and ingested (sha256 and a proxy recorded)
    api, runtime = http_api, http_rt
    idx = api.index(default_features=["proxy"])
    data = small_image.read_bytes()
    out = create(api, idx["id"], "still.png", len(data))
    up, asset_id = out["upload"], out["asset"]["id"]
    assert up["headers"] == {
        "Content-Type": "image/png",
        "Content-Length": str(len(data)),
        "If-None-Match": "*",
    }
    assert put(api, up["url"], data, up["headers"]).status_code == 200
    key = original_key(runtime, api, asset_id)
    land(runtime, api, key)
    run_pipeline(runtime)
    before = api.ok("GET", f"/v1/assets/{asset_id}")
    assert before["status"] == "ready" and before["sha256"] == hashlib.sha256(data).hexdigest()
    proxy_before = [
        d for d in api.ok("GET", f"/v1/assets/{asset_id}/derivatives")["data"] if d["kind"] == "proxy"
    ]

    # When the same URL is used again with other bytes of the same length
    other = bytes(reversed(data))
    again = put(api, up["url"], other, up["headers"])

    # Then it is refused (S3: 412 from If-None-Match; local: 409 with the one error body)
    if is_s3(runtime):
        assert again.status_code == 412, again.text
    else:
        assert (again.status_code, error_code(again)) == (409, "upload_already_completed")
    # And the stored bytes are still the ones the asset and its proxy describe
    stored = runtime.blobs.get_bytes(key)
    after = api.ok("GET", f"/v1/assets/{asset_id}")
    assert hashlib.sha256(stored).hexdigest() == after["sha256"] == before["sha256"]
    assert len(stored) == after["size_bytes"] == len(data)
    proxy_after = [
        d for d in api.ok("GET", f"/v1/assets/{asset_id}/derivatives")["data"] if d["kind"] == "proxy"
    ]
    assert [(d["size_bytes"], d["width"]) for d in proxy_after] == [
        (d["size_bytes"], d["width"]) for d in proxy_before
    ]


def test_sixteen_racing_puts_store_exactly_one_and_the_asset_describes_it(
    http_rt: Runtime, http_api: Api, small_image: Path
) -> None:
    api, runtime = http_api, http_rt
    idx = api.index(default_features=["proxy"])
    bodies = padded_images(small_image.read_bytes(), 16)
    refused = {412} if is_s3(runtime) else {409}
    for _round in range(5):
        # Given 16 clients racing to PUT 16 different files of the declared length to one URL
        out = create(api, idx["id"], "still.png", len(bodies[0]))
        up, asset_id = out["upload"], out["asset"]["id"]
        with cf.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda b, up=up: put(api, up["url"], b, up["headers"]).status_code, bodies))

        # Then exactly one lands, the others are refused
        assert codes.count(200) == 1, codes
        assert set(codes) - {200} == refused, codes
        winner = bodies[codes.index(200)]
        key = original_key(runtime, api, asset_id)
        assert runtime.blobs.get_bytes(key) == winner
        # And once ingested, the asset describes the bytes stored
        land(runtime, api, key)
        run_pipeline(runtime)
        asset = api.ok("GET", f"/v1/assets/{asset_id}")
        assert (asset["size_bytes"], asset["sha256"]) == (len(winner), hashlib.sha256(winner).hexdigest())


def test_an_upload_takes_exactly_the_declared_size(http_rt: Runtime, http_api: Api) -> None:
    api, runtime = http_api, http_rt
    idx = api.index(default_features=["proxy"])
    out = create(api, idx["id"], "a.wav", 1000)
    up, asset_id = out["upload"], out["asset"]["id"]
    key = original_key(runtime, api, asset_id)

    if is_s3(runtime):
        # S3 enforces the length because it is signed; moto checks no signature, so: the URL
        signed = set(parse_qs(urlsplit(up["url"]).query)["X-Amz-SignedHeaders"][0].split(";"))
        assert {"content-length", "content-type", "if-none-match"} <= signed
        return
    ct = {"Content-Type": up["headers"]["Content-Type"]}
    for body in (b"x" * 1001, b"x" * 999, iter([b"x" * 600, b"x" * 600]), iter([b"x" * 500])):
        resp = put(api, up["url"], body, ct)
        assert (resp.status_code, error_code(resp)) == (400, "upload_size_mismatch"), resp.text
    assert runtime.blobs.head(key) is None
    assert api.ok("GET", f"/v1/assets/{asset_id}")["status"] == "awaiting_upload"
    assert put(api, up["url"], b"x" * 1000, up["headers"]).status_code == 200


# ---- 1. late uploads of deleted assets ----------------------------------------------------------------
def test_a_put_to_a_deleted_assets_url_leaves_nothing(http_rt: Runtime, http_api: Api) -> None:
    # Given an asset deleted before its bytes were sent
    api, runtime = http_api, http_rt
    idx = api.index(default_features=["proxy"])
    out = create(api, idx["id"], "late.png", 64)
    up, asset_id = out["upload"], out["asset"]["id"]
    key = original_key(runtime, api, asset_id)
    prefix = asset_prefixes(stored_asset(runtime, api, asset_id))[0]
    assert api.call("DELETE", f"/v1/assets/{asset_id}").status_code == 204

    # When its still-valid URL is used
    resp = put(api, up["url"], b"\x89PNG" + b"0" * 60, up["headers"])

    # Then no original stays: refused up front locally; on S3 the PUT lands and its event deletes it
    if is_s3(runtime):
        assert resp.status_code == 200
        assert land(runtime, api, key)["status"] == "deleted"
    else:
        assert (resp.status_code, error_code(resp)) == (409, "upload_not_accepted")
    assert runtime.blobs.list_keys(prefix) == []


def test_an_asset_deleted_while_its_bytes_stream_keeps_nothing(
    http_rt: Runtime, http_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, runtime = http_api, http_rt
    if is_s3(runtime):
        pytest.skip("on S3 the bytes land whatever the asset: the landing is the previous test's case")
    idx = api.index(default_features=["proxy"])
    out = create(api, idx["id"], "race.png", 64)
    up, asset_id = out["upload"], out["asset"]["id"]
    prefix = asset_prefixes(stored_asset(runtime, api, asset_id))[0]
    ingest = runtime.services.ingest
    wanted = ingest.awaits_original

    def deleted_after_the_check(t: str, a: str) -> bool:
        answer = wanted(t, a)  # the asset awaits its bytes when the PUT starts...
        runtime.services.assets.delete(t, a)  # ...and is deleted while they stream
        return answer

    monkeypatch.setattr(ingest, "awaits_original", deleted_after_the_check)
    resp = put(api, up["url"], b"\x89PNG" + b"0" * 60, up["headers"])

    assert (resp.status_code, error_code(resp)) == (409, "upload_not_accepted")
    assert runtime.blobs.list_keys(prefix) == []


@pytest.mark.aws
def test_the_upload_queue_path_deletes_a_late_original(moto_endpoint: str, tmp_path: Path) -> None:
    """`serve --runtime aws` without a state machine: S3 -> SQS -> UploadQueueWatcher ->
    object_created, with the blob store passed as bootstrap/aws.py should pass it."""
    import functools
    import uuid

    from mediaindex.adapters.aws.provision import provision
    from mediaindex.adapters.aws.upload_queue import UploadQueueWatcher
    from mediaindex.bootstrap.aws import build_aws
    from tests.aws_runtime import aws_test_settings, shared_clients

    clients = shared_clients(moto_endpoint)
    suffix = uuid.uuid4().hex[:8]
    names = {"table_name": f"mi-{suffix}", "bucket_name": f"mi-media-{suffix}"}
    queue = f"mi-uploads-{suffix}"
    provision(
        clients, table=names["table_name"], bucket=names["bucket_name"], queue_name=queue, cors_origins=[]
    )
    runtime = build_aws(aws_test_settings(tmp_path, **names, upload_queue_name=queue), clients=clients)
    try:
        assert runtime.upload_watcher is not None
        handler = functools.partial(
            object_created, runtime.services.ingest, expected_bucket=names["bucket_name"], blobs=runtime.blobs
        )
        watcher = UploadQueueWatcher(clients.get("sqs"), runtime.upload_watcher.queue_url, handler, wait_s=1)
        with TestClient(build_app(runtime), base_url=BASE_URL) as client:
            api = Api(client, runtime.services.keys.create_key("acme")[2])
            idx = api.index(default_features=["proxy"])
            out = create(api, idx["id"], "late.png", 64)
            key = original_key(runtime, api, out["asset"]["id"])
            # Given an asset deleted before its bytes were sent
            assert api.call("DELETE", f"/v1/assets/{out['asset']['id']}").status_code == 204
            # When its URL is used (S3 takes the bytes) and the notification is read
            assert (
                put(api, out["upload"]["url"], b"\x89PNG" + b"0" * 60, out["upload"]["headers"]).status_code
                == 200
            )
            outcomes: list[dict[str, Any]] = []
            for _ in range(5):
                outcomes += watcher.poll_once()
                if any(o["status"] == "deleted" for o in outcomes):
                    break
            # Then the late original is deleted
            assert [o["status"] for o in outcomes if o.get("asset_id") == out["asset"]["id"]] == ["deleted"]
            assert runtime.blobs.head(key) is None
    finally:
        runtime.close()


# ---- 3. concurrent multipart completion ---------------------------------------------------------------
def _multipart(api: Api, index_id: str, data: bytes) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    out = create(api, index_id, "big.mov", len(data))
    mp = out["upload"]["multipart"]
    parts = []
    for p in mp["parts"]:
        start = (p["part_number"] - 1) * mp["part_size"]
        resp = api.put(p["url"], data[start : start + mp["part_size"]])
        assert resp.status_code == 200, resp.text
        parts.append({"part_number": p["part_number"], "etag": resp.headers["etag"]})
    return out["asset"]["id"], parts, mp


def test_eight_concurrent_completes_complete_once(rt: Runtime, api: Api) -> None:
    idx = api.index(default_features=["proxy"])
    data = os.urandom(5 * MiB + 1)
    tally: dict[int, int] = {}
    for _round in range(10):
        # Given a two-part upload, completed by 8 clients at once
        asset_id, parts, _ = _multipart(api, idx["id"], data)

        def complete(_: int, asset_id: str = asset_id, parts: list[dict[str, Any]] = parts) -> httpx.Response:
            return api.call("POST", f"/v1/assets/{asset_id}/upload/complete", json={"parts": parts})

        with cf.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(complete, range(8)))

        # Then exactly one completes; the others are 409 upload_already_completed, none a 500
        codes = [r.status_code for r in answers]
        for c in codes:
            tally[c] = tally.get(c, 0) + 1
        assert codes.count(200) == 1, [(r.status_code, r.text[:120]) for r in answers]
        assert {error_code(r) for r in answers if r.status_code != 200} == {"upload_already_completed"}
        asset = api.ok("GET", f"/v1/assets/{asset_id}")
        assert asset["status"] == "processing" and asset["size_bytes"] == len(data)
        assert len(api.ok("GET", "/v1/tasks", params={"asset_id": asset_id})["data"]) == 1
        assert rt.blobs.get_bytes(original_key(rt, api, asset_id)) == data
    assert tally == {200: 10, 409: 70}


def test_completing_with_wrong_parts(rt: Runtime, api: Api) -> None:
    idx = api.index(default_features=["proxy"])
    data = os.urandom(5 * MiB + 1)
    asset_id, parts, mp = _multipart(api, idx["id"], data)
    path = f"/v1/assets/{asset_id}/upload/complete"

    def refused(parts: list[dict[str, Any]]) -> str:
        resp = api.call("POST", path, json={"parts": parts})
        assert resp.status_code == 400, resp.text
        return error_code(resp)

    # A wrong etag, a part number S3 never accepts, one past the upload's last part: refused, and
    # the claim is given back each time (the asset still awaits its upload)
    assert refused([parts[0], {"part_number": 2, "etag": '"' + "0" * 32 + '"'}]) == "upload_parts_invalid"
    assert refused([parts[0], {**parts[1], "part_number": 10_001}]) == "parameter_invalid"
    assert refused([parts[0], {**parts[1], "part_number": 0}]) == "parameter_invalid"
    assert refused([*parts, {**parts[1], "part_number": 3}]) == "upload_parts_invalid"
    assert api.ok("GET", f"/v1/assets/{asset_id}")["status"] == "awaiting_upload"
    if not is_s3(rt):
        # Too few parts: short of the declared size (S3 refuses by x-amz-mp-object-size; moto
        # completes and the adapter deletes the short object, which ends that upload there)
        assert refused(parts[:1]) == "upload_size_mismatch"
        # A part of another length than its URL was signed for is refused as it arrives
        long_part = api.put(mp["parts"][1]["url"], b"xy")
        assert (long_part.status_code, error_code(long_part)) == (400, "upload_size_mismatch")
    # Parts listed out of order (as browsers finish them) complete: they are sorted
    done = api.ok("POST", path, json={"parts": list(reversed(parts))})
    assert done["status"] == "processing"
    assert rt.blobs.get_bytes(original_key(rt, api, asset_id)) == data


def test_an_abort_racing_a_completion_loses_to_it(
    rt: Runtime, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a completion that has claimed the upload and is joining its parts
    idx = api.index(default_features=["proxy"])
    data = os.urandom(5 * MiB + 1)
    asset_id, parts, _ = _multipart(api, idx["id"], data)
    join = rt.blobs.complete_multipart
    aborts: list[httpx.Response] = []

    def joining(*args: Any, **kwargs: Any) -> Any:
        # When the client aborts the upload meanwhile
        aborts.append(api.call("DELETE", f"/v1/assets/{asset_id}/upload"))
        return join(*args, **kwargs)

    monkeypatch.setattr(rt.blobs, "complete_multipart", joining)
    done = api.ok("POST", f"/v1/assets/{asset_id}/upload/complete", json={"parts": parts})

    # Then the abort is refused and the completion stands, with its bytes
    assert [(r.status_code, error_code(r)) for r in aborts] == [(409, "upload_already_completed")]
    assert done["status"] == "processing"
    assert rt.blobs.get_bytes(original_key(rt, api, asset_id)) == data


def test_a_completion_that_died_after_its_object_landed_is_finished_by_a_retry(rt: Runtime, api: Api) -> None:
    # Given a completion that claimed the upload, joined its parts, and died before the ingest
    # started (ten minutes ago)
    from datetime import timedelta

    from mediaindex.domain.models import utcnow

    idx = api.index(default_features=["proxy"])
    data = os.urandom(5 * MiB + 1)
    asset_id, parts, mp = _multipart(api, idx["id"], data)
    tenant_id = tenant_of(rt, api)

    def claimed_long_ago(asset: Asset) -> Asset:
        assert asset.upload is not None
        asset.upload.completed = True
        asset.updated_at = utcnow() - timedelta(minutes=10)
        return asset

    rt.stores.assets.mutate(tenant_id, asset_id, claimed_long_ago)
    key = original_key(rt, api, asset_id)
    joined = [(p["part_number"], p["etag"]) for p in parts]
    rt.blobs.complete_multipart(key, mp["upload_id"], joined, expected_size=len(data), one_shot=True)

    # When the client retries the completion
    resp = api.call("POST", f"/v1/assets/{asset_id}/upload/complete", json={"parts": parts})

    # Then it hears the upload is complete, and the ingest has started, once
    assert (resp.status_code, error_code(resp)) == (409, "upload_already_completed")
    assert api.ok("GET", f"/v1/assets/{asset_id}")["status"] == "processing"
    assert len(api.ok("GET", "/v1/tasks", params={"asset_id": asset_id})["data"]) == 1


# ---- 4. stale multipart uploads -----------------------------------------------------------------------
def _age_upload(runtime: Runtime, upload_id: str, seconds: float) -> None:
    """Makes a local upload look idle for `seconds` (its start record and its parts)."""
    import json

    staging = runtime.settings.data_dir / "blobs" / "uploads" / upload_id
    meta = staging / "upload.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "created_at": time.time() - seconds}))
    for part in staging.iterdir():
        past = time.time() - seconds
        os.utime(part, (past, past))


def test_an_idle_multipart_upload_is_swept_and_its_asset_fails(rt: Runtime, api: Api) -> None:
    idx = api.index(default_features=["proxy"])
    data = os.urandom(5 * MiB + 1)
    out = create(api, idx["id"], "idle.mov", len(data))
    busy = create(api, idx["id"], "busy.mov", len(data))
    mp, asset_id = out["upload"]["multipart"], out["asset"]["id"]
    assert api.put(mp["parts"][0]["url"], data[: 5 * MiB]).status_code == 200

    if is_s3(rt):
        # No sweeper runs on AWS (the bucket's lifecycle rule aborts the parts after a day); the
        # service's expiry is the same on DynamoDB: the asset ends failed and the upload is aborted.
        assert rt.services.uploads.expire_upload(tenant_of(rt, api), asset_id, mp["upload_id"])
    else:
        # Given the upload idle for a day and a bit, the other one busy
        _age_upload(rt, mp["upload_id"], 25 * 3600)
        # When the sweep runs
        assert sweep_stale_uploads(rt.blobs, rt.services.uploads, rt.settings) == 1
        assert not (rt.settings.data_dir / "blobs" / "uploads" / mp["upload_id"]).exists()

    # Then the idle asset ended failed (upload_expired) and its upload takes nothing more
    asset = api.ok("GET", f"/v1/assets/{asset_id}")
    assert asset["status"] == "failed" and asset["error"]["code"] == "upload_expired"
    assert {f["state"] for f in asset["features"].values()} == {"cancelled"}
    late = api.call(
        "POST", f"/v1/assets/{asset_id}/upload/complete", json={"parts": [{"part_number": 1, "etag": "x"}]}
    )
    assert late.status_code == 409
    if not is_s3(rt):
        assert api.put(mp["parts"][1]["url"], data[5 * MiB :]).status_code == 404  # upload_not_found
    # And the busy one is untouched
    assert api.ok("GET", f"/v1/assets/{busy['asset']['id']}")["status"] == "awaiting_upload"


def test_the_local_runtime_schedules_the_sweep(data_dir: Path) -> None:
    # Given a serving runtime (workers started) that sweeps every 0.1 s
    runtime = build_local(
        make_settings(data_dir, start_workers=True, upload_sweep_interval_s=0.1, **SMALL_PARTS)
    )
    try:
        with TestClient(build_app(runtime), base_url=BASE_URL) as client:
            api = Api(client, runtime.services.keys.create_key("acme")[2])
            idx = api.index(default_features=["proxy"])
            out = create(api, idx["id"], "idle.mov", 5 * MiB + 1)
            # When its multipart upload has been idle for more than a day
            _age_upload(runtime, out["upload"]["multipart"]["upload_id"], 25 * 3600)
            # Then the sweeper ends it by itself
            deadline = time.monotonic() + 10
            while api.ok("GET", f"/v1/assets/{out['asset']['id']}")["status"] != "failed":
                assert time.monotonic() < deadline, "the sweeper did not run"
                time.sleep(0.05)
    finally:
        runtime.close()


# ---- 1. steps that outlive their asset ----------------------------------------------------------------
def _output_rows(runtime: Runtime, asset_id: str) -> int:
    """Rows the asset's outputs left, read beneath the repositories (which hide an orphan's)."""
    if is_s3(runtime):
        assert runtime.aws_clients is not None
        resp = runtime.aws_clients.dynamodb.query(
            TableName=runtime.settings.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"ASSET#{asset_id}"}},
        )
        return int(resp["Count"])
    conn = sqlite3.connect(runtime.settings.data_dir / "mediaindex.db")
    try:
        return sum(
            conn.execute(f"SELECT count(*) FROM {table} WHERE asset_id = ?", (asset_id,)).fetchone()[0]
            for table in ("derivatives", "segments", "tasks")
        )
    finally:
        conn.close()


class _WritesAfter:
    """The step's blob store, holding its first write until `released` is set: the step has read
    the original and done its work, and writes its outputs only after the asset's purge."""

    def __init__(self, blobs: Any, started: threading.Event, released: threading.Event) -> None:
        self._blobs, self._started, self._released = blobs, started, released

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._blobs, name)
        if name not in ("put_file", "put_bytes"):
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            self._started.set()
            assert self._released.wait(120), "the test never purged the asset"
            return attr(*args, **kwargs)

        return write


@pytest.mark.parametrize("step", ["render"])
def test_a_step_finishing_after_its_assets_purge_leaves_nothing(
    rt: Runtime, api: Api, talking_clip: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    # Given a clip whose `step` has done its work and is about to write its files
    assert rt.runner is not None and rt.executor is not None
    writing, purged = threading.Event(), threading.Event()
    load = rt.runner._load

    def gated(name: str) -> Callable[[StepContext], StepResult]:
        fn = load(name)
        if name != step:
            return fn

        def run(ctx: StepContext) -> StepResult:
            ctx.blobs = _WritesAfter(ctx.blobs, writing, purged)
            return fn(ctx)

        return run

    monkeypatch.setattr(rt.runner, "_load", gated)
    idx = api.index(default_features=["proxy", "preview"])
    asset = api.upload(idx["id"], "talk.mp4", talking_clip.read_bytes())
    prefixes = asset_prefixes(stored_asset(rt, api, asset["id"]))
    worker = threading.Thread(target=rt.executor.pool.run_until_idle)
    worker.start()
    try:
        assert writing.wait(180), f"{step} never ran"
        # When the asset is deleted before the step writes (proxy, poster, storyboard, thumbnails)
        assert api.call("DELETE", f"/v1/assets/{asset['id']}").status_code == 204
        assert rt.blobs.list_keys(prefixes[0]) == []  # its originals
    finally:
        purged.set()
        worker.join(timeout=300)

    # Then what the step wrote afterwards is gone too: no file, no row, no search document
    assert [k for p in prefixes for k in rt.blobs.list_keys(p)] == []
    assert _output_rows(rt, asset["id"]) == 0
    assert api.call("GET", f"/v1/assets/{asset['id']}").status_code == 404
    assert api.ok("GET", "/v1/tasks/active")["data"] == []
