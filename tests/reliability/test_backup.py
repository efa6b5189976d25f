"""Backup while the server runs and writes, restore into a fresh dir, serve from it: the same assets,
derivatives, blob bytes and search answers come back."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediaindex.backup import backup, restore
from tests import mediagen
from tests.reliability.conftest import REPO, LiveServer, upload, wait_settled


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mediaindex.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def _blobs(data_dir: Path) -> dict[str, str]:
    root = data_dir / "blobs" / "objects"
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def _state(api: httpx.Client, index_id: str, asset_id: str) -> dict[str, Any]:
    derivatives = api.get(f"/v1/assets/{asset_id}/derivatives").json()["data"]
    hits = api.post(
        "/v1/search",
        json={"index_id": index_id, "query_text": "lazy dog", "search_options": ["transcription"]},
    ).json()
    return {
        "assets": api.get("/v1/assets", params={"index_id": index_id}).json()["data"],
        # URLs carry the server's address and a fresh expiry: compare everything else.
        "derivatives": [{k: v for k, v in d.items() if k != "url"} for d in derivatives],
        "transcript": api.get(f"/v1/assets/{asset_id}/transcript", params={"format": "json"}).json(),
        "hits": [{k: v for k, v in h.items() if k != "thumbnail_url"} for h in hits["data"]],
    }


@pytest.mark.slow
def test_backup_of_a_live_server_restores_to_the_same_service(
    live_server: LiveServer, tmp_path: Path
) -> None:
    if not mediagen.have_tools():
        pytest.skip("ffmpeg, ffprobe and espeak-ng are needed")
    clip = mediagen.talking_video(tmp_path / "talk.mp4", "the quick brown fox jumps over the lazy dog")
    # Given a server that has indexed a talking clip (transcript, segments and vectors)
    live_server.start(create_key="acme")
    with live_server.client() as api:
        idx = api.post(
            "/v1/indexes",
            json={"name": "clips", "default_features": ["preview", "transcription", "embedding"]},
        ).json()
        asset = upload(api, idx["id"], clip)
        done = wait_settled(api, asset["id"], timeout_s=180)
        assert done["status"] == "ready", done
        before = _state(api, idx["id"], asset["id"])
    assert before["hits"] and before["hits"][0]["asset_id"] == asset["id"]
    blobs_before = _blobs(live_server.data_dir)

    # When it is backed up with the CLI while clients keep writing
    stop = threading.Event()
    writes: list[int] = []

    def write() -> None:
        with live_server.client() as w:
            while not stop.is_set():
                writes.append(w.post("/v1/indexes", json={"name": f"busy-{len(writes)}"}).status_code)

    writer = threading.Thread(target=write)
    writer.start()
    archive = tmp_path / "backup" / "mi.tar"
    try:
        out = _cli("--data-dir", str(live_server.data_dir), "backup", str(archive))
    finally:
        stop.set()
        writer.join()
    assert out.returncode == 0, out.stderr
    assert writes and set(writes) == {201}
    assert archive.stat().st_mode & 0o077 == 0  # it holds the URL signing secret

    # And restored into a fresh dir (a non-empty one is refused)
    busy = tmp_path / "busy"
    (busy / "x").mkdir(parents=True)
    refused = _cli("--data-dir", str(busy), "restore", str(archive))
    assert refused.returncode != 0 and "not empty" in refused.stderr
    fresh = tmp_path / "restored"
    out = _cli("--data-dir", str(fresh), "restore", str(archive))
    assert out.returncode == 0, out.stderr

    # Then a server on the restored dir serves the same assets, derivatives, transcript and search
    restored = LiveServer(fresh, live_server.log_dir)
    restored.key = live_server.key
    restored.start()
    try:
        with restored.client() as api:
            after = _state(api, idx["id"], asset["id"])
            proxy_like = next(d for d in api.get(f"/v1/assets/{asset['id']}/derivatives").json()["data"])
            served = httpx.get(proxy_like["url"], timeout=30)
            assert served.status_code == 200 and served.headers["content-type"] == proxy_like["content_type"]
            busy_indexes = [i for i in api.get("/v1/indexes", params={"limit": 100}).json()["data"]]
    finally:
        restored.stop()
    assert after == before
    assert _blobs(fresh) == blobs_before
    # The snapshot is one consistent moment of the writes: a prefix of them, none torn.
    assert 1 <= len(busy_indexes) <= 1 + len(writes)


def test_restore_refuses_a_foreign_or_tampered_archive(tmp_path: Path) -> None:
    import tarfile

    # Given a tar that is not a backup, and a backup whose database was altered
    plain = tmp_path / "plain.tar"
    (tmp_path / "hello.txt").write_text("hi")
    with tarfile.open(plain, "w") as tar:
        tar.add(tmp_path / "hello.txt", arcname="hello.txt")
    with pytest.raises(ValueError, match="not a mediaindex backup"):
        restore(plain, tmp_path / "a")

    data = tmp_path / "data"
    (data / "search").mkdir(parents=True)
    import sqlite3

    sqlite3.connect(data / "mediaindex.db").execute("CREATE TABLE t (x)").connection.commit()
    good = backup(data, tmp_path / "good.tar").archive
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(good) as src, tarfile.open(tampered, "w") as dst:
        for m in src.getmembers():
            f = src.extractfile(m)
            payload = f.read() if f else b""
            if m.name == "mediaindex.db":
                payload = payload[:-1] + bytes([payload[-1] ^ 1])
            import io

            dst.addfile(m, io.BytesIO(payload))
    # When they are restored, Then both are refused and nothing is left behind
    with pytest.raises(ValueError, match="damaged"):
        restore(tampered, tmp_path / "b")
    assert not (tmp_path / "b").exists()
    assert restore(good, tmp_path / "c").databases == ["mediaindex.db"]
