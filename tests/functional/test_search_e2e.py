"""Search end to end on the local runtime, with clips the test speaks itself: the phrase from the
second clip finds it first at the right second; filters, tenants, deletes and grouping behave."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from tests import mediagen
from tests.apiclient import Api, error_code
from tests.functional.conftest import BASE_URL, make_settings

pytestmark = pytest.mark.slow

LEAD_S = 2.0  # silence before each sentence: the phrase is spoken from about 2 s in
CLIPS = [
    ("kitchen.mp4", "add two cups of flour and stir the batter slowly", {"topic": "cooking"}),
    ("harbour.mp4", "the ferry leaves the harbour at seven in the morning", {"topic": "travel"}),
    ("weather.mp4", "heavy rain is expected across the northern mountains tonight", {"topic": "weather"}),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not mediagen.have_tools():
        pytest.skip("ffmpeg and espeak-ng are needed")
    root = tmp_path_factory.mktemp("search")
    runtime: Runtime = build_local(make_settings(root / "data"))
    with TestClient(build_app(runtime), base_url=BASE_URL) as client:
        api = Api(client, runtime.services.keys.create_key("acme")[2])
        other = Api(client, runtime.services.keys.create_key("globex")[2])
        idx = api.index("talks", default_features=["transcription", "embedding"])
        ids = {}
        for name, text, meta in CLIPS:
            path = mediagen.talking_video(root / name, text, size="320x240", lead_silence_s=LEAD_S)
            ids[name] = api.upload(idx["id"], name, path.read_bytes(), user_metadata=meta)["id"]
        runtime.executor.pool.run_until_idle()
        yield {"api": api, "other": other, "index": idx, "ids": ids, "services": runtime}
    runtime.close()


def _search(api: Api, index_id: str, **body: Any) -> list[dict[str, Any]]:
    return list(api.ok("POST", "/v1/search", json={"index_id": index_id, **body})["data"])


def test_every_clip_is_ready_with_a_transcript_and_segments(world: dict[str, Any]) -> None:
    api: Api = world["api"]
    for name, _, _ in CLIPS:
        asset = api.ok("GET", f"/v1/assets/{world['ids'][name]}")
        assert asset["status"] == "ready", asset
        assert asset["features"]["transcription"]["state"] == "completed"
        assert asset["features"]["embedding"]["state"] == "completed"
        transcript = api.ok("GET", f"/v1/assets/{asset['id']}/transcript")
        words = [w for s in transcript["segments"] for w in s["words"]]
        assert abs(words[0]["start"] - LEAD_S) <= 0.5, words[0]
        segments = api.ok("GET", f"/v1/assets/{asset['id']}/segments", params={"limit": 100})["data"]
        assert segments and any(s["text"] for s in segments)


def test_a_phrase_from_the_second_clip_finds_it_first_at_the_right_second(world: dict[str, Any]) -> None:
    hits = _search(world["api"], world["index"]["id"], query_text="ferry leaves the harbour")
    top = hits[0]
    assert top["asset_id"] == world["ids"]["harbour.mp4"], hits[:3]
    # The phrase is spoken from LEAD_S seconds in: the hit's range must contain that moment (±1 s).
    assert top["start"] - 1.0 <= LEAD_S <= top["end"] + 1.0, top
    assert top["scores"]["transcription"] is not None and "harbo" in (top["text"] or "").lower()


def test_user_metadata_filter_narrows_the_results(world: dict[str, Any]) -> None:
    hits = _search(
        world["api"],
        world["index"]["id"],
        query_text="morning",
        filter={"user_metadata": {"topic": "cooking"}},
        threshold=0.0,  # nothing about mornings is said in the kitchen: keep every candidate
    )
    assert hits and {h["asset_id"] for h in hits} == {world["ids"]["kitchen.mp4"]}
    # At the default threshold the unrelated kitchen clip is not an answer.
    travel = _search(
        world["api"],
        world["index"]["id"],
        query_text="morning",
        filter={"user_metadata": {"topic": "cooking"}},
    )
    assert travel == []


def test_group_by_asset_returns_one_hit_per_asset(world: dict[str, Any]) -> None:
    hits = _search(
        world["api"], world["index"]["id"], query_text="rain mountains", group_by="asset", threshold=0.0
    )
    assert len({h["asset_id"] for h in hits}) == len(hits) == 3
    assert hits[0]["asset_id"] == world["ids"]["weather.mp4"]


def test_another_tenant_sees_nothing(world: dict[str, Any]) -> None:
    other: Api = world["other"]
    resp = other.call("POST", "/v1/search", json={"index_id": world["index"]["id"], "query_text": "ferry"})
    assert resp.status_code == 404 and error_code(resp) == "index_not_found"
    own = other.index("empty")
    assert _search(other, own["id"], query_text="ferry leaves the harbour") == []


def test_a_query_needs_exactly_one_kind(world: dict[str, Any]) -> None:
    resp = world["api"].call("POST", "/v1/search", json={"index_id": world["index"]["id"]})
    assert resp.status_code == 400 and error_code(resp) == "query_required"


def test_a_deleted_asset_is_gone_from_results_at_once(world: dict[str, Any], tmp_path: Path) -> None:
    api: Api = world["api"]
    target = world["ids"]["weather.mp4"]
    query = "northern mountains tonight"
    assert _search(api, world["index"]["id"], query_text=query)[0]["asset_id"] == target
    assert api.call("DELETE", f"/v1/assets/{target}").status_code == 204
    hits = _search(api, world["index"]["id"], query_text=query, threshold=0.0)
    assert target not in {h["asset_id"] for h in hits}
