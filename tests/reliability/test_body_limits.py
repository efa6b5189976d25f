"""Request bodies against the real server (`mediaindex serve` in its own process): before the
fix, four parallel unauthenticated 300 MB POSTs took it from 118 MiB to 2.1 GiB RSS (FastAPI read
each body whole before the key was checked). Now the key is checked before a byte of a body is
read, every body has a cap and a deadline, and the server's peak RSS (VmHWM) must stay within
50 MiB of where it was. Figures are printed (pytest -s) for docs/reliability.md."""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediaindex.api.background import serve_in_background
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from tests.functional.conftest import make_settings
from tests.reliability.conftest import LiveServer, free_port

MiB = 1024 * 1024
BODY = 300 * MiB
PARALLEL = 4


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak since start) of a process, in MiB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


class Counted:
    """A generated body of `size` bytes (`head`, then 1 MiB chunks; never held whole) that counts
    what was sent."""

    def __init__(self, size: int, head: bytes = b"") -> None:
        self.size = size
        self.head = head
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        if self.head:
            self.sent += len(self.head)
            yield self.head
        chunk = b" " * MiB
        while self.sent < self.size:
            self.sent += len(chunk)
            yield chunk


FORM_HEAD = (
    b'--x\r\nContent-Disposition: form-data; name="index_id"\r\n\r\nidx_x\r\n'
    b'--x\r\nContent-Disposition: form-data; name="asset_file"; filename="a.mp4"\r\n'
    b"Content-Type: video/mp4\r\n\r\n"
)


def post_in_parallel(
    url: str, headers: dict[str, str], *, declare_length: bool, head: bytes = b""
) -> list[dict[str, Any]]:
    """PARALLEL POSTs of BODY bytes at once; each: status, seconds, bytes the client got to send."""
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(PARALLEL)

    def one() -> None:
        body = Counted(BODY, head)
        h = {**headers, **({"content-length": str(BODY)} if declare_length else {})}
        barrier.wait()
        t0 = time.monotonic()
        try:
            resp = httpx.post(url, content=body, headers=h, timeout=60)
            status, code = resp.status_code, resp.json()["error"]["code"]
        except httpx.HTTPError as e:  # the server hung up mid-body without an answer we could read
            status, code = 0, type(e).__name__
        results.append(
            {"status": status, "code": code, "s": time.monotonic() - t0, "sent_mib": body.sent / MiB}
        )

    threads = [threading.Thread(target=one) for _ in range(PARALLEL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    # What is measured is the request path: models loading in the background would add their own RSS.
    live_server.env["MEDIAINDEX_PRELOAD_MODELS"] = "false"
    live_server.start(create_key="acme")
    with live_server.client() as client:  # warm: routes, the key lookup, JSON parsing
        for i in range(3):
            assert client.post("/v1/indexes", json={"name": f"warm {i}"}).status_code == 201
            assert httpx.post(f"{live_server.url}/v1/indexes", json={"name": "x"}).status_code == 401
    return live_server


@pytest.mark.parametrize("declare_length", [False, True], ids=["chunked", "content-length"])
def test_unauthenticated_300_mb_bodies_do_not_grow_the_server(
    server: LiveServer, declare_length: bool
) -> None:
    assert server.proc is not None
    before = memory_mib(server.proc.pid)
    results = post_in_parallel(
        f"{server.url}/v1/indexes", {"content-type": "application/json"}, declare_length=declare_length
    )
    after = memory_mib(server.proc.pid)
    grew = after["VmHWM"] - before["VmHWM"]
    framing = "declared" if declare_length else "chunked"
    print(f"\nunauthenticated x{PARALLEL} x{BODY // MiB} MiB ({framing}): "
          f"peak RSS {before['VmHWM']:.0f} -> {after['VmHWM']:.0f} MiB (+{grew:.1f}); {results}")  # fmt: skip
    assert all(r["status"] == 401 and r["code"] == "unauthorized" for r in results), results
    assert all(r["s"] < 5 for r in results), results
    assert all(r["sent_mib"] < 64 for r in results), results  # refused long before the body ended
    assert grew < 50, f"the server's peak RSS grew by {grew:.1f} MiB"
    assert httpx.get(f"{server.url}/v1/health").status_code == 200


def test_authenticated_oversized_bodies_stop_at_their_cap(server: LiveServer) -> None:
    assert server.proc is not None and server.key
    auth = {"Authorization": f"Bearer {server.key}"}
    before = memory_mib(server.proc.pid)
    json_results = post_in_parallel(
        f"{server.url}/v1/indexes", {**auth, "content-type": "application/json"}, declare_length=False
    )
    form_results = post_in_parallel(
        f"{server.url}/v1/assets",
        {**auth, "content-type": "multipart/form-data; boundary=x"},
        declare_length=False,
        head=FORM_HEAD,
    )
    after = memory_mib(server.proc.pid)
    grew = after["VmHWM"] - before["VmHWM"]
    print(f"\nauthenticated x{PARALLEL} x{BODY // MiB} MiB, chunked: peak RSS +{grew:.1f} MiB; "
          f"json {json_results}; form {form_results}")  # fmt: skip
    assert all(r["status"] == 413 and r["code"] == "payload_too_large" for r in json_results), json_results
    assert all(r["sent_mib"] < 64 for r in json_results), json_results
    # The form route reads up to its form limit (32 MiB here, spooled to disk), then stops
    assert all(r["status"] == 413 and r["code"] == "asset_file_too_large" for r in form_results), form_results
    assert all(r["sent_mib"] < 32 + 64 for r in form_results), form_results
    assert grew < 50, f"the server's peak RSS grew by {grew:.1f} MiB"
    with server.client() as client:
        assert client.get("/v1/assets").json()["data"] == []


def _exchange(
    port: int, head: bytes, trickle: list[bytes], every_s: float, timeout_s: float = 15
) -> tuple[bytes, float]:
    """Sends `head`, then each of `trickle` every `every_s` seconds while the server is quiet;
    returns what the server answered and when (seconds from the start)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        t0 = time.monotonic()
        s.sendall(head)
        s.settimeout(every_s)
        answer = b""
        pending = list(trickle)
        while time.monotonic() - t0 < timeout_s:
            try:
                data = s.recv(65536)
            except TimeoutError:
                if pending:
                    try:
                        s.sendall(pending.pop(0))
                    except OSError:
                        break
                continue
            if not data:
                break
            answer += data
        return answer, time.monotonic() - t0


@pytest.fixture
def quick_deadline(tmp_path: Path) -> Iterator[LiveServer]:
    logs = tmp_path / "logs"
    logs.mkdir()
    server = LiveServer(tmp_path / "data", logs, MEDIAINDEX_BODY_READ_TIMEOUT_S="1")
    server.start(create_key="acme")
    yield server
    server.stop()


def test_a_trickled_body_is_dropped_at_its_deadline(quick_deadline: LiveServer) -> None:
    server = quick_deadline
    head = (
        f"POST /v1/indexes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
    ).encode()
    # A slowloris: one byte every 0.3 s, forever
    answer, took = _exchange(server.port, head, [b" "] * 100, every_s=0.3)
    status_line = answer.split(b"\r\n")[0]
    print(f"\nslowloris body: {status_line!r} after {took:.2f} s")
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"request_timeout"' in answer, answer
    assert b"connection: close" in answer.lower()
    assert took < 5
    # A Content-Length that promises more than is ever sent
    answer, took = _exchange(server.port, head, [], every_s=0.3)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert took < 5
    with server.client() as client:
        assert client.get("/v1/indexes").json()["data"] == []


def test_a_header_flood_is_refused_by_the_server_limits(data_dir: Path) -> None:
    """Headers come before the app: uvicorn's default parser buffered 2 x 200 MB of one header
    (76 -> 455 MiB RSS, minutes of CPU). Served with SERVER_LIMITS (h11, 64 KiB of request head),
    a 50 MB header is refused at once. `mediaindex serve` must pass the same limits."""
    runtime = build_local(make_settings(data_dir))
    port = free_port()
    stop = serve_in_background(
        build_app(runtime, close_on_shutdown=False), "127.0.0.1", port, access_log=False
    )
    try:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sent = 0
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            try:
                s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Flood: ")
                while sent < 50 * MiB:
                    s.sendall(b"a" * MiB)
                    sent += MiB
            except OSError:
                pass
        took = time.monotonic() - t0
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
        print(f"\nheader flood: refused after {sent // MiB} MiB sent, {took:.2f} s, peak RSS +{grew:.1f} MiB")
        assert sent < 50 * MiB and took < 5 and grew < 20
        assert httpx.get(f"http://127.0.0.1:{port}/v1/health").status_code == 200
    finally:
        stop()
        runtime.close()
