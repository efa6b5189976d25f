"""SIGKILL the real server while a pipeline step runs, start it again, and check that the work ends
once: the asset settles, one derivative per (kind, index), no orphan blob, no job left behind."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests import mediagen
from tests.reliability.conftest import LiveServer, upload, wait_settled

FEATURES = ["proxy", "preview", "transcription"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not mediagen.have_tools():
        pytest.skip("ffmpeg, ffprobe and espeak-ng are needed")
    d = tmp_path_factory.mktemp("kill9")
    # Long enough (about 8 s) that proxy and transcription take a visible while on 2 cores.
    return mediagen.talking_video(
        d / "talk.mp4", "the quick brown fox jumps over the lazy dog", min_duration_s=8.0
    )


def _wait_running(server: LiveServer, step: str, timeout_s: float = 60.0) -> float:
    """Polls the jobs table until `step` runs; returns how long that took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        rows = server.db_rows("SELECT state FROM jobs WHERE step = ?", step)
        if rows and rows[0][0] == "running":
            return time.monotonic() - t0
        if rows and rows[0][0] in ("done", "failed"):
            pytest.fail(f"{step} finished before the test could catch it running")
        time.sleep(0.01)
    pytest.fail(f"{step} never ran")


def _blob_keys(data_dir: Path) -> set[str]:
    root = data_dir / "blobs" / "objects"
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("step", ["probe", "render", "transcription"])
def test_kill9_mid_step_resumes_once(live_server: LiveServer, clip: Path, step: str) -> None:
    # Given a server working on a talking clip
    live_server.start(create_key="acme")
    with live_server.client() as api:
        idx = api.post("/v1/indexes", json={"name": "clips", "default_features": FEATURES}).json()
        asset = upload(api, idx["id"], clip)

    # When it is killed with SIGKILL while `step` runs
    _wait_running(live_server, step)
    live_server.kill9()
    assert live_server.db_rows("SELECT state FROM jobs WHERE step = ?", step) == [("running",)]

    # And started again on the same data
    t0 = time.monotonic()
    live_server.start()
    with live_server.client() as api:
        done = wait_settled(api, asset["id"])
        resumed_s = time.monotonic() - t0

        # Then the asset ends ready, every feature completed
        assert done["status"] == "ready", done
        assert {f: s["state"] for f, s in done["features"].items()} == dict.fromkeys(FEATURES, "completed")
        # The spoken words, as far as tiny.en in int8 hears them: its output for this padded clip varies
        # with the CPU's kernels ("brown fox" came out "round-fark" on one machine), "quick" and "lazy"
        # do not.
        text = api.get(f"/v1/assets/{asset['id']}/transcript", params={"format": "txt"}).text.lower()
        assert {"quick", "lazy"} <= set(text.replace(".", " ").split()), text

    # With exactly one derivative per (kind, index): the primary key forbids two, so count kinds
    rows = live_server.db_rows("SELECT kind, idx, doc FROM derivatives WHERE asset_id = ?", asset["id"])
    kinds = sorted({r[0] for r in rows})
    assert {"proxy", "poster", "thumbnail", "transcript"} <= set(kinds), kinds
    assert sum(1 for r in rows if r[0] == "proxy") == 1

    # No orphan file: every stored object is the original or a recorded derivative
    (original_doc,) = live_server.db_rows("SELECT doc FROM assets WHERE id = ?", asset["id"])[0]
    owned = {json.loads(original_doc)["upload"]["key"]} | {json.loads(r[2])["key"] for r in rows}
    keyframes = live_server.db_rows("SELECT doc FROM segments WHERE asset_id = ?", asset["id"])
    owned |= {json.loads(r[0]).get("keyframe_key") for r in keyframes} - {None}
    assert _blob_keys(live_server.data_dir) == owned

    # And no job or task left behind
    assert live_server.db_rows("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')") == [(0,)]
    assert live_server.db_rows("SELECT count(*) FROM tasks WHERE state IN ('queued', 'processing')") == [(0,)]
    (attempts,) = live_server.db_rows("SELECT attempts FROM jobs WHERE step = ?", step)[0]
    assert attempts == 2  # the killed attempt counts, the resumed one finished
    # Nor any secret in the server's output: the key only on the one line that hands it out
    secret = (live_server.data_dir / "signing.key").read_text().strip()
    assert live_server.key
    for log in live_server.logs:
        for line in log.read_text(errors="replace").splitlines():
            assert secret not in line
            assert "sig=" not in line or "sig=REDACTED" in line, line  # signed URLs are bearer tokens
            assert live_server.key not in line or "(shown once)" in line, line
    print(f"kill9[{step}]: resumed and settled in {resumed_s:.1f} s; {len(rows)} derivatives")
