"""Tasks: re-runs, reads, cancel; idempotent POSTs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from mediaindex.domain.errors import UnavailableError
from mediaindex.domain.models import Asset, Task
from tests.apiclient import Api, error_code
from tests.functional.conftest import BASE_URL, make_settings


def _uploaded(api: Api, clip: Path, **index_fields: object) -> dict:  # type: ignore[type-arg]
    idx = api.index(**index_fields)  # type: ignore[arg-type]
    return api.upload(idx["id"], "talk.mp4", clip.read_bytes())


def test_proxy_and_preview_cannot_be_rerun(api: Api, talking_clip: Path) -> None:
    asset = _uploaded(api, talking_clip, default_features=["proxy"])
    resp = api.call("POST", "/v1/tasks", json={"asset_id": asset["id"], "feature_types": ["proxy"]})
    assert resp.status_code == 400 and error_code(resp) == "feature_not_rerunnable"


def test_rerun_needs_an_uploaded_asset(api: Api) -> None:
    idx = api.index()
    out = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "a.mp4"})
    resp = api.call(
        "POST", "/v1/tasks", json={"asset_id": out["asset"]["id"], "feature_types": ["transcription"]}
    )
    assert resp.status_code == 409 and error_code(resp) == "asset_not_uploaded"


def test_unknown_task_is_404(api: Api) -> None:
    resp = api.call("GET", "/v1/tasks/tsk_01m82nzj9zsf9pcy7msf3ccp7r")
    assert resp.status_code == 404 and error_code(resp) == "task_not_found"
    resp = api.call("POST", "/v1/tasks", json={"asset_id": "ast_nope", "feature_types": ["transcription"]})
    assert resp.status_code == 404 and error_code(resp) == "asset_not_found"


def test_cancel_stops_queued_work(api: Api, talking_clip: Path, runtime: Runtime) -> None:
    asset = _uploaded(api, talking_clip, default_features=["proxy", "preview"])
    task = api.ok("GET", "/v1/tasks", params={"asset_id": asset["id"]})["data"][0]
    cancelled = api.ok("POST", f"/v1/tasks/{task['id']}/cancel")
    assert cancelled["state"] == "cancelled"
    assert {f["state"] for f in cancelled["features"].values()} == {"cancelled"}
    resp = api.call("POST", f"/v1/tasks/{task['id']}/cancel")
    assert resp.status_code == 409 and error_code(resp) == "task_not_active"
    assert api.ok("GET", "/v1/tasks/active")["data"] == []
    if runtime.executor is not None:
        runtime.executor.pool.run_until_idle()
        assert api.ok("GET", f"/v1/assets/{asset['id']}/derivatives")["data"] == []


def _refuse_starts(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(task: Task, asset: Asset) -> None:
        raise UnavailableError("the executor is throttling")

    monkeypatch.setattr(runtime.orchestrator, "start", refuse)


def test_a_rerun_the_executor_refuses_is_503_and_leaves_nothing_busy(
    api: Api, talking_clip: Path, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    asset = _uploaded(api, talking_clip, default_features=["proxy"])
    with monkeypatch.context() as refused:
        _refuse_starts(runtime, refused)
        resp = api.call(
            "POST", "/v1/tasks", json={"asset_id": asset["id"], "feature_types": ["transcription"]}
        )
        assert resp.status_code == 503 and error_code(resp) == "service_unavailable"
    # The task that never started is settled, not queued for good: nothing is busy
    tasks = api.ok("GET", "/v1/tasks", params={"asset_id": asset["id"]})["data"]
    rerun = next(t for t in tasks if t["kind"] == "rerun")
    assert rerun["state"] == "failed"
    assert rerun["features"]["transcription"]["state"] == "failed"
    assert rerun["features"]["transcription"]["error"] == "execution_not_started"
    assert all(t["id"] != rerun["id"] for t in api.ok("GET", "/v1/tasks/active")["data"])
    # so the same re-run, asked again once the executor takes work, starts
    again = api.ok(
        "POST", "/v1/tasks", 201, json={"asset_id": asset["id"], "feature_types": ["transcription"]}
    )
    assert again["state"] == "queued" and again["id"] != rerun["id"]


def test_rerun_runs_only_the_asked_feature(
    api: Api, talking_clip: Path, run_pipeline: Callable[[], int]
) -> None:
    asset = _uploaded(api, talking_clip, default_features=["proxy"])
    run_pipeline()
    task = api.ok(
        "POST", "/v1/tasks", 201, json={"asset_id": asset["id"], "feature_types": ["transcription"]}
    )
    assert task["kind"] == "rerun" and set(task["features"]) == {"transcription"}
    resp = api.call("POST", "/v1/tasks", json={"asset_id": asset["id"], "feature_types": ["transcription"]})
    assert resp.status_code == 409 and error_code(resp) == "feature_busy"
    run_pipeline()
    done = api.ok("GET", f"/v1/tasks/{task['id']}")
    assert done["state"] == "completed", done
    txt = api.call("GET", f"/v1/assets/{asset['id']}/transcript", params={"format": "txt"})
    assert txt.status_code == 200 and "fox" in txt.text.lower()
    vtt = api.call("GET", f"/v1/assets/{asset['id']}/transcript", params={"format": "vtt"})
    assert vtt.text.startswith("WEBVTT") and "-->" in vtt.text
    asset_now = api.ok("GET", f"/v1/assets/{asset['id']}")
    assert asset_now["features"]["proxy"]["state"] == "completed"
    assert asset_now["features"]["transcription"]["state"] == "completed"


def test_idempotent_replay_returns_the_first_response_and_creates_nothing(api: Api) -> None:
    idx = api.index()
    body = {"index_id": idx["id"], "name": "a.mp4"}
    first = api.call("POST", "/v1/assets", json=body, headers={"Idempotency-Key": "k-1"})
    second = api.call("POST", "/v1/assets", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("idempotent-replayed") == "true"
    assert len(api.ok("GET", "/v1/assets")["data"]) == 1

    other = api.call("POST", "/v1/assets", json={**body, "name": "b.mp4"}, headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 409 and error_code(other) == "idempotency_key_reused"
    assert len(api.ok("GET", "/v1/assets")["data"]) == 1


def test_idempotency_keys_are_per_tenant(api: Api, other_api: Api) -> None:
    a = api.call("POST", "/v1/indexes", json={"name": "x"}, headers={"Idempotency-Key": "same"})
    b = other_api.call("POST", "/v1/indexes", json={"name": "x"}, headers={"Idempotency-Key": "same"})
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]


def test_failed_requests_are_not_remembered(api: Api) -> None:
    resp = api.call("POST", "/v1/indexes", json={"name": ""}, headers={"Idempotency-Key": "retry-me"})
    assert resp.status_code == 400
    resp = api.call("POST", "/v1/indexes", json={"name": "ok"}, headers={"Idempotency-Key": "retry-me"})
    assert resp.status_code == 201


def test_when_the_store_fails_too_the_caller_still_hears_the_refusal(
    api: Api,
    talking_clip: Path,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    asset = _uploaded(api, talking_clip, default_features=["proxy"])
    _refuse_starts(runtime, monkeypatch)

    def store_down(*args: object, **kwargs: object) -> None:
        raise UnavailableError("the table is unreachable")

    monkeypatch.setattr(runtime.stores.tasks, "mutate_with_asset", store_down)
    with caplog.at_level(logging.ERROR, logger="mediaindex.services.tasks"):
        resp = api.call(
            "POST", "/v1/tasks", json={"asset_id": asset["id"], "feature_types": ["transcription"]}
        )
    assert resp.status_code == 503 and "throttling" in resp.json()["error"]["message"]
    settling = [r.getMessage() for r in caplog.records if r.name == "mediaindex.services.tasks"]
    assert settling == ["settling a task that never started failed"]


def test_an_asset_url_whose_start_is_refused_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No upload event comes again for a URL: the asset fails with the refusal, not "processing" for good
    runtime = build_local(make_settings(tmp_path / "data", allow_private_urls=True))
    try:
        with TestClient(build_app(runtime), base_url=BASE_URL) as client:
            api = Api(client, runtime.services.keys.create_key("acme")[2])
            idx = api.index()
            _refuse_starts(runtime, monkeypatch)
            body = {"index_id": idx["id"], "name": "a.mp4", "asset_url": "http://127.0.0.1:9/a.mp4"}
            resp = api.call("POST", "/v1/assets", json=body)
            assert resp.status_code == 503 and error_code(resp) == "service_unavailable"
            [asset] = api.ok("GET", "/v1/assets")["data"]
            assert asset["status"] == "failed" and asset["error"]["code"] == "execution_not_started"
            assert api.ok("GET", "/v1/tasks/active")["data"] == []
    finally:
        runtime.close()
