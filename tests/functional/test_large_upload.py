"""A 200 MiB multipart upload through the local blob router streams: the server's peak memory
grows far less than the file, and the stored object has the sent bytes' sha256.

The server runs in its own process so its peak RSS (VmHWM) measures the server alone."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
# Parts larger than the allowed growth: buffering any one of them in memory fails the test.
PART_SIZES = [100 * MiB, 96 * MiB, 4 * MiB]
MAX_GROWTH = 100 * MiB
KEY = "originals/ten_1/ast_1/original.mp4"

SERVER = textwrap.dedent(
    """
    import socket, sys
    from pathlib import Path
    import uvicorn
    from mediaindex.adapters.local.fs_blobs import LocalBlobStore
    from tests.contract.conftest_blobs import SECRET, blob_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    store = LocalBlobStore(Path(sys.argv[1]), f"http://127.0.0.1:{port}", SECRET)
    app = blob_app(store, lambda key, info: None)

    # Test-only control routes: the API service would sign and complete in-process.
    @app.post("/_test/create")
    def create() -> dict:
        upload_id = store.create_multipart(sys.argv[2], "video/mp4")
        urls = [store.presign_part(sys.argv[2], upload_id, n, 600).url for n in range(1, 4)]
        return {"upload_id": upload_id, "urls": urls, "get": store.presign_get(sys.argv[2], 600).url}

    @app.post("/_test/complete/{upload_id}")
    def complete(upload_id: str, parts: list[list]) -> dict:
        info = store.complete_multipart(sys.argv[2], upload_id, [(int(n), e) for n, e in parts])
        return {"size": info.size, "sha256": info.sha256}

    print(port, flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    """
)


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "layers"), str(REPO)])}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp_path / "blobs"), KEY],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/_blobs/x", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def body(size: int, sha: hashlib._Hash) -> Iterator[bytes]:
    # Generated as sent, 1 MiB at a time, so the client holds no part either.
    left = size
    while left:
        chunk = os.urandom(min(MiB, left))
        sha.update(chunk)
        left -= len(chunk)
        yield chunk


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_200_mib_multipart_upload_streams_to_the_right_sha256(server: tuple[str, int]) -> None:
    base, pid = server
    with httpx.Client(timeout=120) as http:
        # Given a multipart upload, and the server's peak memory once it has served a request
        plan = http.post(f"{base}/_test/create").json()
        before = peak_rss(pid)

        # When 200 MiB go up in three parts over HTTP, are completed, and come back down
        sent = hashlib.sha256()
        parts = []
        for n, (url, size) in enumerate(zip(plan["urls"], PART_SIZES, strict=True), start=1):
            resp = http.put(url, content=body(size, sent), headers={"Content-Length": str(size)})
            assert resp.status_code == 200, resp.text
            parts.append([n, resp.headers["etag"]])
        done = http.post(f"{base}/_test/complete/{plan['upload_id']}", json=parts).json()
        got = hashlib.sha256()
        with http.stream("GET", plan["get"]) as resp:
            assert resp.status_code == 200
            for chunk in resp.iter_bytes():
                got.update(chunk)
        growth = peak_rss(pid) - before

    # Then the object is whole and right, and the server never held a part, let alone the file
    assert done == {"size": sum(PART_SIZES), "sha256": sent.hexdigest()}
    assert got.hexdigest() == sent.hexdigest()
    assert growth < MAX_GROWTH, f"server peak RSS grew by {growth / MiB:.0f} MiB"
