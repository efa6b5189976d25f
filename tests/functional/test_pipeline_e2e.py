"""The whole pipeline through the API on real media: what a user gets back for a talking video,
a silent video and an image."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from tests import mediagen
from tests.apiclient import Api
from tests.functional.conftest import BASE_URL, make_settings

pytestmark = pytest.mark.slow


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
        check=True,
        capture_output=True,
    )
    return dict(json.loads(out.stdout))


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not mediagen.have_tools():
        pytest.skip("ffmpeg and espeak-ng are needed")
    root = tmp_path_factory.mktemp("pipeline")
    runtime = build_local(make_settings(root / "data"))
    with TestClient(build_app(runtime), base_url=BASE_URL) as client:
        api = Api(client, runtime.services.keys.create_key("acme")[2])
        idx = api.index("all")
        files = {
            "talk.mp4": mediagen.talking_video(
                root / "talk.mp4", "the museum opens every morning", size="1280x960", lead_silence_s=1.5
            ),
            "silent.mp4": mediagen.silent_video(root / "silent.mp4", seconds=3),
            "card.png": mediagen.image(root / "card.png", size="2400x1200"),
        }
        ids = {name: api.upload(idx["id"], name, p.read_bytes())["id"] for name, p in files.items()}
        runtime.executor.pool.run_until_idle()
        yield {"api": api, "ids": ids, "root": root, "services": runtime}
    runtime.close()


def _download(world: dict[str, Any], asset: str, kind: str) -> tuple[dict[str, Any], Path]:
    api: Api = world["api"]
    derivs = [d for d in api.ok("GET", f"/v1/assets/{asset}/derivatives")["data"] if d["kind"] == kind]
    assert derivs, f"no {kind}"
    d = derivs[0]
    resp = api.client.get(d["url"])
    assert resp.status_code == 200 and len(resp.content) == d["size_bytes"]
    path = world["root"] / f"{asset}-{kind}"
    path.write_bytes(resp.content)
    return d, path


def test_talking_video_gets_a_playable_h264_proxy_at_most_720p(processed: dict[str, Any]) -> None:
    asset = processed["ids"]["talk.mp4"]
    _, path = _download(processed, asset, "proxy")
    info = ffprobe(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert video["codec_name"] == "h264" and audio["codec_name"] == "aac"
    assert video["height"] <= 720 and (video["width"], video["height"]) == (960, 720)  # 4:3 kept
    src = processed["api"].ok("GET", f"/v1/assets/{asset}")
    assert abs(float(info["format"]["duration"]) - src["duration_s"]) < 0.3
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True
    )
    assert decode.returncode == 0 and not decode.stderr.strip()  # plays to the end


def test_talking_video_gets_thumbnails_and_a_storyboard(processed: dict[str, Any]) -> None:
    api: Api = processed["api"]
    asset = processed["ids"]["talk.mp4"]
    derivs = api.ok("GET", f"/v1/assets/{asset}/derivatives")["data"]
    kinds = {d["kind"] for d in derivs}
    assert {"proxy", "poster", "thumbnail", "storyboard", "storyboard_vtt"} <= kinds
    thumb, path = _download(processed, asset, "thumbnail")
    stream = ffprobe(path)["streams"][0]
    assert (stream["width"], stream["height"]) == (thumb["width"], thumb["height"])
    _, vtt = _download(processed, asset, "storyboard_vtt")
    text = vtt.read_text()
    assert text.startswith("WEBVTT") and "#xywh=" in text


def test_transcript_has_the_words_where_they_are_spoken(processed: dict[str, Any]) -> None:
    api: Api = processed["api"]
    asset = processed["ids"]["talk.mp4"]
    transcript = api.ok("GET", f"/v1/assets/{asset}/transcript")
    words = [w for s in transcript["segments"] for w in s["words"]]
    text = " ".join(w["word"] for w in words).lower()
    assert "museum" in text and "morning" in text
    assert abs(words[0]["start"] - 1.5) <= 0.5
    srt = api.call("GET", f"/v1/assets/{asset}/transcript", params={"format": "srt"}).text
    assert srt.startswith("1\n") and " --> " in srt


def test_talking_video_has_segments_and_vectors(processed: dict[str, Any]) -> None:
    api: Api = processed["api"]
    asset = processed["ids"]["talk.mp4"]
    segments = api.ok("GET", f"/v1/assets/{asset}/segments", params={"limit": 100})["data"]
    assert any(s["kind"] == "speech" and "museum" in (s["text"] or "").lower() for s in segments)
    assert all(s["keyframe_url"] for s in segments if s["kind"] != "speech")
    hits = api.ok(
        "POST", "/v1/search", json={"index_id": _index_of(api, asset), "query_text": "museum opening time"}
    )
    assert hits["data"][0]["asset_id"] == asset


def _index_of(api: Api, asset: str) -> str:
    return str(api.ok("GET", f"/v1/assets/{asset}")["index_id"])


def test_silent_video_has_no_transcription(processed: dict[str, Any]) -> None:
    asset = processed["api"].ok("GET", f"/v1/assets/{processed['ids']['silent.mp4']}")
    assert asset["status"] == "ready"
    assert asset["features"]["transcription"]["state"] == "na"
    assert "audio" in asset["features"]["transcription"]["reason"]
    assert asset["features"]["proxy"]["state"] == "completed"


def test_image_gets_proxy_preview_and_embedding_only(processed: dict[str, Any]) -> None:
    api: Api = processed["api"]
    asset = api.ok("GET", f"/v1/assets/{processed['ids']['card.png']}")
    assert asset["media_type"] == "image" and asset["status"] == "ready"
    assert asset["features"]["transcription"]["state"] == "na"
    assert asset["features"]["proxy"]["state"] == "completed"
    assert asset["features"]["preview"]["state"] == "completed"
    # No CLIP model is configured here: embedding says so rather than pretending.
    assert asset["features"]["embedding"]["state"] == "na"
    assert "clip" in asset["features"]["embedding"]["reason"].lower()
    d, path = _download(processed, asset["id"], "proxy")
    stream = ffprobe(path)["streams"][0]
    assert max(stream["width"], stream["height"]) <= 2048 and d["content_type"] in (
        "image/webp",
        "image/jpeg",
    )
    segments = api.ok("GET", f"/v1/assets/{asset['id']}/segments")["data"]
    assert [s["kind"] for s in segments] == ["image"]
