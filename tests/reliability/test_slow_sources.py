"""Slow sources against the real server: a loopback "trickle" server that promises 1 MB and sends
1 byte a second. Before the fixes the fetch timeout was per read, not per download: two trickling
asset_url sources held both pipeline workers, 45 slow query_image_url searches used up the API's
request threads so that other tenants' GETs timed out, and SIGTERM then took 50 s."""

from __future__ import annotations

import http.server
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from tests.apiclient import Api
from tests.functional.conftest import BASE_URL, make_settings
from tests.reliability.conftest import REPO, LiveServer


class _Trickle(http.server.BaseHTTPRequestHandler):
    open_now = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            type(self).open_now += 1
        try:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            for _ in range(1_000_000):
                self.wfile.write(b"\x89")
                self.wfile.flush()
                time.sleep(1.0)
        except OSError:
            pass
        finally:
            with self.lock:
                type(self).open_now -= 1

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def trickle() -> Iterator[tuple[str, type[_Trickle]]]:
    handler = type("Trickle", (_Trickle,), {"open_now": 0, "lock": threading.Lock()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.request_queue_size = 128
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_a_trickling_asset_url_fails_at_the_deadline_and_frees_the_worker(
    tmp_path: Path, trickle: tuple[str, type[_Trickle]]
) -> None:
    base, _ = trickle
    settings = make_settings(
        tmp_path / "data", allow_private_urls=True, fetch_deadline_s=2.0, fetch_rate_grace_s=60
    )
    runtime = build_local(settings)
    try:
        with TestClient(build_app(runtime, close_on_shutdown=False), base_url=BASE_URL) as client:
            api = Api(client, runtime.services.keys.create_key("acme")[2])
            idx = api.index("slow")
            # Given two assets whose sources trickle 1 byte a second
            ids = [
                api.ok(
                    "POST",
                    "/v1/assets",
                    201,
                    json={"index_id": idx["id"], "name": f"s{i}.png", "asset_url": f"{base}/{i}.png"},
                )["asset"]["id"]
                for i in range(2)
            ]
            # When the pipeline fetches them
            t0 = time.monotonic()
            runtime.executor.pool.run_until_idle()
            took = time.monotonic() - t0
            # Then each fetch ends at its 2 s deadline, failed with asset_url_unreachable
            for asset_id in ids:
                done = api.ok("GET", f"/v1/assets/{asset_id}")
                assert done["status"] == "failed" and done["error"]["code"] == "asset_url_unreachable", done
                assert "within 2 s" in done["error"]["message"]
            assert took < 30, (
                took
            )  # the source would take days: the deadline ended it (generous for a loaded CI machine)
            assert runtime.blobs.list_keys("originals/") == []
            print(f"2 trickling asset_url sources, deadline 2 s: both failed in {took:.1f} s")
    finally:
        runtime.close()


def test_a_trickling_asset_url_fails_under_the_minimum_rate(
    tmp_path: Path, trickle: tuple[str, type[_Trickle]]
) -> None:
    base, _ = trickle
    settings = make_settings(
        tmp_path / "data",
        allow_private_urls=True,
        fetch_deadline_s=600,
        fetch_rate_grace_s=1.5,
        fetch_min_rate_bytes_s=1024,
    )
    runtime = build_local(settings)
    try:
        with TestClient(build_app(runtime, close_on_shutdown=False), base_url=BASE_URL) as client:
            api = Api(client, runtime.services.keys.create_key("acme")[2])
            idx = api.index("slow")
            body = {"index_id": idx["id"], "name": "s.png", "asset_url": f"{base}/s.png"}
            asset_id = api.ok("POST", "/v1/assets", 201, json=body)["asset"]["id"]
            t0 = time.monotonic()
            runtime.executor.pool.run_until_idle()
            took = time.monotonic() - t0
            done = api.ok("GET", f"/v1/assets/{asset_id}")
            assert (
                done["error"]["code"] == "asset_url_unreachable"
                and "minimum average" in done["error"]["message"]
            )
            assert took < 30, (
                took
            )  # the source would take days: the deadline ended it (generous for a loaded CI machine)
    finally:
        runtime.close()


def _second_key(server: LiveServer, tenant: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "mediaindex.cli", "keys", "create", "--tenant", tenant],
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _search(client: httpx.Client, index_id: str, image_url: str) -> tuple[int, str, float]:
    t0 = time.monotonic()
    try:
        resp = client.post(
            "/v1/search",
            json={"index_id": index_id, "query_image_url": image_url, "search_options": ["visual"]},
        )
    except httpx.HTTPError as e:
        return 0, type(e).__name__, time.monotonic() - t0
    if resp.status_code < 400:
        return resp.status_code, "ok", time.monotonic() - t0
    try:
        code = str(resp.json()["error"]["code"])
    except ValueError:  # a request cut off by the server's shutdown: uvicorn's plain 500
        code = resp.text[:40]
    return resp.status_code, code, time.monotonic() - t0


def _searcher(server: LiveServer) -> httpx.Client:
    """One client for many concurrent searches (a connection each), made once: per-request
    clients cost more than the answers measured here."""
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=60,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )


@pytest.mark.slow
def test_45_slow_image_searches_do_not_starve_another_tenant(
    tmp_path: Path, trickle: tuple[str, type[_Trickle]]
) -> None:
    base, _ = trickle
    logs = tmp_path / "logs"
    logs.mkdir()
    server = LiveServer(
        tmp_path / "data", logs, MEDIAINDEX_ALLOW_PRIVATE_URLS="true", MEDIAINDEX_QUERY_IMAGE_DEADLINE_S="8"
    )
    try:
        server.start(create_key="acme")
        other = _second_key(server, "globex")
        with server.client() as api:
            idx = api.post("/v1/indexes", json={"name": "photos"}).json()
        theirs = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {other}"}, timeout=30)
        their_idx = theirs.post("/v1/indexes", json={"name": "theirs"}).json()
        # Given 45 searches by one tenant whose query image trickles in at 1 byte a second
        searcher = _searcher(server)
        with ThreadPoolExecutor(45) as pool:
            futures = [pool.submit(_search, searcher, idx["id"], f"{base}/q{i}.png") for i in range(45)]
            time.sleep(1.0)
            # When another tenant reads meanwhile, it is answered at once
            latencies = []
            for _ in range(20):
                t0 = time.monotonic()
                resp = theirs.get(f"/v1/indexes/{their_idx['id']}")
                latencies.append(time.monotonic() - t0)
                assert resp.status_code == 200, resp.text
                time.sleep(0.05)
            results = [f.result() for f in futures]
        theirs.close()
        searcher.close()
        # Then the searches either held one of the few fetch slots until the deadline (400
        # asset_url_unreachable) or were refused at once with 503 service_busy
        codes: dict[tuple[int, str], int] = {}
        for status, code, _ in results:
            codes[(status, code)] = codes.get((status, code), 0) + 1
        assert set(codes) <= {(400, "asset_url_unreachable"), (503, "service_busy")}, codes
        busy = [t for s, _, t in results if s == 503]
        slow = [t for s, _, t in results if s == 400]
        assert len(slow) <= 4 and len(busy) >= 41, codes
        assert max(busy) < 2.0 and max(slow) < 8.0 + 2.0, (busy, slow)
        assert max(latencies) < 1.0, latencies
        print(
            f"45 slow image searches: {codes}; other tenant's GET"
            f" p50 {statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        )
    finally:
        server.stop()


@pytest.mark.slow
def test_sigterm_with_slow_work_in_flight_exits_fast(
    tmp_path: Path, trickle: tuple[str, type[_Trickle]]
) -> None:
    base, handler = trickle
    logs = tmp_path / "logs"
    logs.mkdir()
    server = LiveServer(tmp_path / "data", logs, MEDIAINDEX_ALLOW_PRIVATE_URLS="true", MEDIAINDEX_WORKERS="2")
    try:
        server.start(create_key="acme")
        with server.client() as api:
            idx = api.post("/v1/indexes", json={"name": "slow"}).json()
            # Given both workers stuck on trickling asset_url sources
            ids = []
            for i in range(2):
                body = {"index_id": idx["id"], "name": f"s{i}.png", "asset_url": f"{base}/a{i}.png"}
                ids.append(api.post("/v1/assets", json=body).json()["asset"]["id"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            running = server.db_rows("SELECT count(*) FROM jobs WHERE step = 'fetch' AND state = 'running'")
            if running[0][0] == 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the fetches never ran")
        # And slow image searches in flight
        pool = ThreadPoolExecutor(8)
        searcher = _searcher(server)
        searches = [pool.submit(_search, searcher, idx["id"], f"{base}/q{i}.png") for i in range(8)]
        time.sleep(1.0)
        # When the server gets SIGTERM
        assert server.proc is not None
        t0 = time.monotonic()
        os.kill(server.proc.pid, signal.SIGTERM)
        rc = server.proc.wait(timeout=30)
        took = time.monotonic() - t0
        pool.shutdown(wait=True)
        # Then it exits within 10 s, and the interrupted fetches were not failed: they resume later
        assert took < 10.0, took
        # (uvicorn re-raises the signal it caught once it has shut down: -SIGTERM is a clean exit)
        assert rc in (0, -signal.SIGTERM), server.logs[-1].read_text()[-2000:]
        assert "Application shutdown complete" in server.logs[-1].read_text()
        assert server.db_rows("SELECT state FROM jobs WHERE step = 'fetch'") == [("running",), ("running",)]
        for asset_id in ids:
            doc: Any = server.db_rows("SELECT status FROM assets WHERE id = ?", asset_id)
            assert doc == [("processing",)], doc
        deadline = time.monotonic() + 5
        while handler.open_now and time.monotonic() < deadline:
            time.sleep(0.05)
        assert handler.open_now == 0  # every connection to the slow source was closed
        cut = [f.result()[:2] for f in searches]
        print(
            f"SIGTERM with 2 slow fetches and 8 slow searches in flight: exit in {took:.1f} s; searches {cut}"
        )
        searcher.close()
    finally:
        server.stop()
