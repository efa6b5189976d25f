"""Uploads and deletes racing on the real server (`mediaindex serve`, loopback HTTP, real threads):

- a PUT to a deleted asset's URL, before or while its bytes stream, leaves no file;
- an asset deleted while its pipeline steps run leaves no file and no row once they finish;
- 16 PUTs racing on one upload URL store exactly one body, 20 times over;
- 8 multipart completions racing on one upload complete it once (7 x 409, no 500), 20 times over."""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import mediagen
from tests.reliability.conftest import LiveServer, upload, wait_settled

MiB = 1024 * 1024
ROUNDS = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("delete-races")
    logs = root / "logs"
    logs.mkdir()
    live = LiveServer(
        root / "data",
        logs,
        MEDIAINDEX_MULTIPART_THRESHOLD_BYTES=str(5 * MiB),
        MEDIAINDEX_PART_SIZE_BYTES=str(5 * MiB),
    )
    live.start(create_key="acme")
    yield live
    live.stop()


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def files_of(server: LiveServer, asset_id: str) -> list[str]:
    root = server.data_dir / "blobs" / "objects"
    return [
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and asset_id in p.as_posix()
    ]


def rows_of(server: LiveServer, asset_id: str) -> int:
    return sum(
        server.db_rows(f"SELECT count(*) FROM {table} WHERE {column} = ?", asset_id)[0][0]
        for table, column in (
            ("assets", "id"),
            ("tasks", "asset_id"),
            ("derivatives", "asset_id"),
            ("segments", "asset_id"),
        )
    )


def create(api: httpx.Client, index_id: str, name: str, size: int) -> dict[str, Any]:
    resp = api.post("/v1/assets", json={"index_id": index_id, "name": name, "size_bytes": size})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def index(api: httpx.Client, name: str, features: list[str]) -> str:
    resp = api.post("/v1/indexes", json={"name": name, "default_features": features})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


# What a failure the server did not handle leaves in its log: a 500, an ASGI crash, a dead thread.
# (A step whose original a purge removed under it logs "step failed" and is retried: expected.)
_UNHANDLED = ("unhandled error", "Exception in ASGI application", "Exception in thread", "internal_error")


def server_errors(server: LiveServer) -> list[str]:
    """Each unhandled failure the server logged, with the lines that follow it."""
    found = []
    for log in server.logs:
        lines = log.read_text().splitlines()
        found += [
            "\n".join(lines[i : i + 25]) for i, line in enumerate(lines) if any(m in line for m in _UNHANDLED)
        ]
    return found


# ---- late uploads ----------------------------------------------------------------------------------------
def test_a_put_to_a_deleted_assets_url_leaves_no_file(server: LiveServer, api: httpx.Client) -> None:
    idx = index(api, "late-puts", ["proxy"])
    out = create(api, idx, "late.bin", 1024)
    assert api.delete(f"/v1/assets/{out['asset']['id']}").status_code == 204

    resp = httpx.put(out["upload"]["url"], content=os.urandom(1024), headers=out["upload"]["headers"])

    assert resp.status_code == 409 and resp.json()["error"]["code"] == "upload_not_accepted"
    assert files_of(server, out["asset"]["id"]) == []


def test_an_asset_deleted_while_its_bytes_stream_leaves_no_file(
    server: LiveServer, api: httpx.Client
) -> None:
    idx = index(api, "streaming-deletes", ["proxy"])
    for _ in range(5):
        # Given a PUT that has sent its first MiB and waits
        out = create(api, idx, "slow.bin", 4 * MiB)
        asset_id = out["asset"]["id"]
        sent_first, deleted = threading.Event(), threading.Event()

        def body(
            sent_first: threading.Event = sent_first, deleted: threading.Event = deleted
        ) -> Iterator[bytes]:
            yield os.urandom(MiB)
            sent_first.set()
            assert deleted.wait(30)
            for _ in range(3):
                yield os.urandom(MiB)

        with cf.ThreadPoolExecutor(1) as pool:
            headers = {k: v for k, v in out["upload"]["headers"].items()}
            pending = pool.submit(
                httpx.put, out["upload"]["url"], content=body(), headers=headers, timeout=60
            )
            assert sent_first.wait(30)
            time.sleep(0.2)  # the server is reading the body now
            # When the asset is deleted, then the rest of the bytes arrive
            assert api.delete(f"/v1/assets/{asset_id}").status_code == 204
            deleted.set()
            resp = pending.result()

        # Then the PUT is refused and no original stays
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "upload_not_accepted", resp.text
        assert files_of(server, asset_id) == []


# ---- steps that outlive their asset ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not mediagen.have_tools():
        pytest.skip("ffmpeg, ffprobe and espeak-ng are needed")
    d = tmp_path_factory.mktemp("delete-races-media")
    # Long enough (about 8 s) that each step takes a visible while on 2 cores.
    return mediagen.talking_video(
        d / "talk.mp4", "the quick brown fox jumps over the lazy dog", min_duration_s=8.0
    )


def _wait_running(server: LiveServer, task_asset: str, step: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = server.db_rows(
            "SELECT jobs.state FROM jobs JOIN tasks ON tasks.id = jobs.task_id"
            " WHERE tasks.asset_id = ? AND jobs.step = ?",
            task_asset,
            step,
        )
        if rows and rows[0][0] == "running":
            return
        if rows and rows[0][0] in ("done", "failed"):
            pytest.fail(f"{step} finished before the test could catch it running")
        time.sleep(0.01)
    pytest.fail(f"{step} never ran")


@pytest.mark.slow
@pytest.mark.parametrize("step", ["render", "transcription"])
def test_an_asset_deleted_while_a_step_runs_leaves_nothing(
    server: LiveServer, api: httpx.Client, clip: Path, tmp_path: Path, step: str
) -> None:
    # Given a clip whose `step` is running (one worker)
    idx = index(api, f"running-{step}", ["proxy", "preview", "transcription"])
    asset = upload(api, idx, clip)
    _wait_running(server, asset["id"], step)

    # When the asset is deleted
    assert api.delete(f"/v1/assets/{asset['id']}").status_code == 204

    # Then, once the worker has moved on (the one worker takes the next asset after this step),
    # no file and no row of the deleted asset is left
    nxt = tmp_path / "next.png"
    mediagen.image(nxt, size="64x48")
    other = upload(api, index(api, f"after-{step}", ["proxy"]), nxt)
    assert wait_settled(api, other["id"])["status"] == "ready"
    assert files_of(server, asset["id"]) == []
    assert rows_of(server, asset["id"]) == 0
    assert server_errors(server) == []


# ---- racing uploads and completions --------------------------------------------------------------------
def test_sixteen_racing_puts_store_one_body(server: LiveServer, api: httpx.Client) -> None:
    idx = index(api, "racing-puts", ["proxy"])
    outcomes: dict[int, int] = {}
    for _ in range(ROUNDS):
        out = create(api, idx, "race.bin", 64 * 1024)
        bodies = [os.urandom(64 * 1024) for _ in range(16)]
        up = out["upload"]
        with cf.ThreadPoolExecutor(16) as pool:
            codes = list(
                pool.map(
                    lambda b, up=up: httpx.put(up["url"], content=b, headers=up["headers"]).status_code,
                    bodies,
                )
            )
        for c in codes:
            outcomes[c] = outcomes.get(c, 0) + 1
        assert codes.count(200) == 1 and set(codes) == {200, 409}, codes
        [stored] = files_of(server, out["asset"]["id"])
        assert (server.data_dir / "blobs" / "objects" / stored).read_bytes() == bodies[codes.index(200)]
    assert outcomes == {200: ROUNDS, 409: 15 * ROUNDS}


def test_eight_racing_completes_complete_once(server: LiveServer, api: httpx.Client) -> None:
    idx = index(api, "racing-completes", ["proxy"])
    data = os.urandom(5 * MiB + 1)
    outcomes: dict[int, int] = {}
    for _ in range(ROUNDS):
        out = create(api, idx, "big.mov", len(data))
        mp = out["upload"]["multipart"]
        parts = []
        for p in mp["parts"]:
            start = (p["part_number"] - 1) * mp["part_size"]
            resp = httpx.put(p["url"], content=data[start : start + mp["part_size"]])
            assert resp.status_code == 200, resp.text
            parts.append({"part_number": p["part_number"], "etag": resp.headers["etag"]})
        path = f"/v1/assets/{out['asset']['id']}/upload/complete"
        with cf.ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda _, path=path, parts=parts: api.post(path, json={"parts": parts}), range(8))
            )
        codes = [r.status_code for r in answers]
        for c in codes:
            outcomes[c] = outcomes.get(c, 0) + 1
        assert codes.count(200) == 1, [(r.status_code, r.text[:100]) for r in answers]
        assert {r.json()["error"]["code"] for r in answers if r.status_code != 200} == {
            "upload_already_completed"
        }
    assert outcomes == {200: ROUNDS, 409: 7 * ROUNDS}
    assert server_errors(server) == []
