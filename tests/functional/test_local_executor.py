"""The local executor on real media: bad files fail with their codes and leave nothing behind,
crashing steps are retried then fail alone, and a restart mid-job loses nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from mediaindex.pipeline import steps as step_registry
from tests import mediagen
from tests.apiclient import Api
from tests.functional.conftest import BASE_URL, make_settings


@pytest.fixture
def local(data_dir: Path) -> Iterator[tuple[Runtime, Api]]:
    runtime = build_local(make_settings(data_dir))
    with TestClient(build_app(runtime), base_url=BASE_URL) as client:
        yield runtime, Api(client, runtime.services.keys.create_key("acme")[2])
    runtime.close()


def _run(runtime: Runtime) -> int:
    return int(runtime.executor.pool.run_until_idle())


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda d, clip: d / "empty.mp4", "asset_file_empty"),
        (lambda d, clip: d / "notes.mp4", "unsupported_media"),
        (lambda d, clip: mediagen.truncated(clip, d / "cut.mp4"), "media_corrupt"),
    ],
    ids=["zero-byte", "text-named-mp4", "truncated"],
)
def test_bad_files_end_failed_with_their_code(
    local: tuple[Runtime, Api], tmp_path: Path, talking_clip: Path, make: object, code: str
) -> None:
    runtime, api = local
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("shopping list: eggs, milk\n" * 20)
    path: Path = make(tmp_path, talking_clip)  # type: ignore[operator]
    idx = api.index(default_features=["proxy", "preview"])
    out = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": path.name})
    resp = api.put(out["upload"]["url"], path.read_bytes(), out["upload"]["headers"])
    assert resp.status_code == 200
    _run(runtime)
    asset = api.ok("GET", f"/v1/assets/{out['asset']['id']}")
    assert asset["status"] == "failed" and asset["error"]["code"] == code, asset
    assert {f["state"] for f in asset["features"].values()} == {"failed"}
    assert api.ok("GET", f"/v1/assets/{asset['id']}/derivatives")["data"] == []
    assert [k for k in runtime.blobs.list_keys("derived/") if asset["id"] in k.split("/")] == []
    task = api.ok("GET", "/v1/tasks", params={"asset_id": asset["id"]})["data"][0]
    assert task["state"] == "failed"


def test_a_crashing_step_is_retried_then_fails_alone(
    local: tuple[Runtime, Api], talking_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, api = local
    calls = {"render": 0}
    real_get = step_registry.get_step

    def crash(ctx: object) -> object:
        calls["render"] += 1
        raise RuntimeError("simulated crash")

    runner = runtime.runner
    monkeypatch.setattr(runner, "_load", lambda name: crash if name == "render" else real_get(name))
    idx = api.index(default_features=["proxy", "preview", "transcription"])
    asset = api.upload(idx["id"], "talk.mp4", talking_clip.read_bytes())
    _run(runtime)
    done = api.ok("GET", f"/v1/assets/{asset['id']}")
    assert calls["render"] == runtime.settings.job_max_attempts
    # Both features of the step failed; the transcription beside it completed
    for feature in ("proxy", "preview"):
        assert done["features"][feature]["state"] == "failed"
        assert done["features"][feature]["error"] == "step_failed"
    assert done["features"]["transcription"]["state"] == "completed"
    assert done["status"] == "ready"  # one feature completed, nothing left running
    assert api.ok("GET", "/v1/tasks/active")["data"] == []


def test_a_restart_mid_job_loses_nothing(data_dir: Path, talking_clip: Path) -> None:
    runtime = build_local(make_settings(data_dir))
    with TestClient(build_app(runtime), base_url=BASE_URL) as client:
        api = Api(client, runtime.services.keys.create_key("acme")[2])
        key = api.key
        idx = api.index(default_features=["proxy"])
        asset = api.upload(idx["id"], "talk.mp4", talking_clip.read_bytes())
        # A worker claims the first step and the process dies before it finishes.
        claimed = runtime.executor.queue.claim()
        assert claimed is not None and claimed.step == "probe"
    runtime.close()

    restarted = build_local(make_settings(data_dir))
    try:
        assert restarted.executor.queue.recover_after_restart() == 1
        _run(restarted)
        with TestClient(build_app(restarted), base_url=BASE_URL) as client:
            api = Api(client, key)
            done = api.ok("GET", f"/v1/assets/{asset['id']}")
            assert done["status"] == "ready" and done["features"]["proxy"]["state"] == "completed"
            kinds = [d["kind"] for d in api.ok("GET", f"/v1/assets/{asset['id']}/derivatives")["data"]]
            assert kinds == ["proxy"]  # exactly one, not one per attempt
    finally:
        restarted.close()


def test_a_hung_step_is_reaped_and_retried(local: tuple[Runtime, Api], talking_clip: Path) -> None:
    runtime, api = local
    idx = api.index(default_features=["proxy"])
    api.upload(idx["id"], "talk.mp4", talking_clip.read_bytes())
    queue = runtime.executor.queue
    job = queue.claim()
    assert job is not None
    # Its lease runs out (the worker hangs): the reaper puts it back with one attempt used.
    db = runtime.executor.queue._db
    with db.transaction() as tx:
        tx.execute("UPDATE jobs SET lease_until = 0 WHERE id = ?", (job.id,))
    assert runtime.executor.pool.reap() == 1
    _run(runtime)
    assert queue.counts() == {"done": 2}
    # The hung worker finally reports: its stale attempt changes nothing.
    assert queue.complete(job) is False


def test_a_repeated_upload_event_restarts_a_stranded_ingest(
    local: tuple[Runtime, Api], small_image: Path
) -> None:
    runtime, api = local
    idx = api.index(default_features=["proxy"])
    out = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "still.png"})
    asset_id = out["asset"]["id"]
    tenant_id = runtime.services.keys.authenticate(api.key).tenant_id
    key = runtime.stores.assets.get(tenant_id, asset_id).upload.key  # type: ignore[union-attr]
    info = runtime.blobs.put_file(key, small_image, "image/png")
    # The orchestrator call fails after the task row is saved: the task is stranded in `queued`.
    real_start = runtime.orchestrator.start
    runtime.orchestrator.start = lambda task, asset: (_ for _ in ()).throw(ConnectionError("down"))  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        runtime.services.ingest.original_uploaded(tenant_id, asset_id, size=info.size, etag=info.etag)
    runtime.orchestrator.start = real_start  # type: ignore[method-assign]
    assert _run(runtime) == 0
    # The event is delivered again (S3/EventBridge retry): the queued task starts, once.
    runtime.services.ingest.original_uploaded(tenant_id, asset_id, size=info.size, etag=info.etag)
    runtime.services.ingest.original_uploaded(tenant_id, asset_id, size=info.size, etag=info.etag)
    _run(runtime)
    assert api.ok("GET", f"/v1/assets/{asset_id}")["status"] == "ready"
    assert runtime.executor.queue.counts() == {"done": 2}


def test_jobs_queued_by_the_previous_release_under_the_retired_step_names_still_run(
    local: tuple[Runtime, Api], talking_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task queued before the upgrade names `proxy` and `preview`, the steps `render` merged: the
    first claimed runs render for both features, the other finds nothing left to do."""
    runtime, api = local
    ran: list[str] = []
    real_get = step_registry.get_step

    def spy(name: str) -> object:
        fn = real_get(name)

        def run(ctx: object) -> object:
            ran.append(name)
            return fn(ctx)  # type: ignore[arg-type]

        return run

    monkeypatch.setattr(runtime.runner, "_load", spy)
    idx = api.index(default_features=["proxy", "preview"])
    asset = api.upload(idx["id"], "talk.mp4", talking_clip.read_bytes())
    db = runtime.executor.queue._db
    with db.transaction() as tx:
        # The plan as the previous release stored it, its first job still queued
        assert tx.execute("UPDATE task_plans SET steps = ?", ('["probe", "proxy", "preview"]',)).rowcount == 1
        assert [r[0] for r in tx.execute("SELECT step FROM jobs")] == ["probe"]
    _run(runtime)
    done = api.ok("GET", f"/v1/assets/{asset['id']}")
    assert done["status"] == "ready"
    assert {f: s["state"] for f, s in done["features"].items()} == {
        "proxy": "completed",
        "preview": "completed",
    }
    kinds = {d["kind"] for d in api.ok("GET", f"/v1/assets/{asset['id']}/derivatives")["data"]}
    assert {"proxy", "poster", "thumbnail", "storyboard"} <= kinds
    # One decode: whichever of the two was claimed first ran the render step; the other found
    # both features settled and ran nothing
    assert ran[0] == "probe" and len(ran) == 2 and ran[1] in ("proxy", "preview")
    assert runtime.executor.queue.counts() == {"done": 3}
