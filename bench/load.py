"""A bounded load test of the local server, over loopback only: N client threads for T seconds mix
reads (GET asset, list), creates (POST asset), uploads (POST + signed PUT of a small PNG) and
searches against a `mediaindex serve` this script starts and stops itself. Prints one JSON object:
counts, errors (must be 0), p50/p99 per operation, and whether the assets and bytes that went in
are exactly what is stored afterwards (each original's size and sha256 on disk).

    python -m bench.load --clients 8 --seconds 20
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, percentiles

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only: this script never sends load anywhere else
MIX = (("get_asset", 30), ("list", 20), ("create", 15), ("upload", 15), ("search", 20))


def png(rng: random.Random, side: int = 48) -> bytes:
    """A small valid PNG of random pixels: every upload is distinct bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class Load:
    def __init__(self, url: str, key: str, index_id: str, seed_asset: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}
        self.index_id = index_id
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.asset_ids = [seed_asset]
        self.sent: dict[str, tuple[int, str]] = {}  # asset id -> (size, sha256) of uploaded bytes
        self.created: list[str] = []

    def _op(self, c: httpx.Client, name: str, rng: random.Random) -> None:
        t0 = time.perf_counter()
        if name == "get_asset":
            r = c.get(f"/v1/assets/{rng.choice(self.asset_ids)}")
            ok = r.status_code == 200
        elif name == "list":
            r = c.get("/v1/assets", params={"index_id": self.index_id, "limit": 20})
            ok = r.status_code == 200
        elif name == "create":
            r = c.post("/v1/assets", json={"index_id": self.index_id, "name": f"later-{rng.random()}.mp4"})
            ok = r.status_code == 201
            if ok:
                with self.lock:
                    self.created.append(r.json()["asset"]["id"])
        elif name == "upload":
            data = png(rng)
            r = c.post(
                "/v1/assets", json={"index_id": self.index_id, "name": "tile.png", "size_bytes": len(data)}
            )
            ok = r.status_code == 201
            if ok:
                out = r.json()
                # Signed URLs carry their own authorisation: the API key never goes to storage.
                put = httpx.put(
                    out["upload"]["url"], content=data, headers=out["upload"]["headers"], timeout=30
                )
                ok = put.status_code == 200
                r = put
                if ok:
                    with self.lock:
                        self.sent[out["asset"]["id"]] = (len(data), hashlib.sha256(data).hexdigest())
                        self.asset_ids.append(out["asset"]["id"])
        else:
            r = c.post(
                "/v1/search",
                json={"index_id": self.index_id, "query_text": rng.choice(["fox", "dog", "harbour"])},
            )
            ok = r.status_code == 200
        took = time.perf_counter() - t0
        with self.lock:
            self.latency[name].append(took)
            if not ok:
                self.errors.append(f"{name}: {r.status_code} {r.text[:200]}")

    def client(self, seed: int, stop_at: float) -> None:
        rng = random.Random(seed)
        names = [n for n, _ in MIX]
        weights = [w for _, w in MIX]
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=30) as c:
            while time.monotonic() < stop_at:
                name = rng.choices(names, weights)[0]
                try:
                    self._op(c, name, rng)
                except httpx.HTTPError as e:
                    with self.lock:
                        self.errors.append(f"{name}: {type(e).__name__}: {e}")


def _start_server(data: Path, port: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    env = {
        **os.environ,
        "MEDIAINDEX_DATA_DIR": str(data),
        "MEDIAINDEX_RATE_LIMIT_PER_MINUTE": "0",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    log = data.parent / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mediaindex.cli", "serve", "--host", HOST, "--port", str(port),
         "--create-key", "bench", "--log-level", "warning"],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "(shown once): " in text and "listening on" in text:
            try:
                if httpx.get(f"http://{HOST}:{port}/v1/health", timeout=1).status_code == 200:
                    key = text.split("(shown once): ", 1)[1].split()[0]
                    return proc, key, log
            except httpx.HTTPError:
                pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {text[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _verify(api: httpx.Client, load: Load, index_id: str, data: Path) -> dict[str, Any]:
    """Waits for the pipeline to drain, then compares what went in with what is stored."""
    t0 = time.monotonic()
    while time.monotonic() < t0 + 300 and api.get("/v1/tasks/active").json()["data"]:
        time.sleep(0.5)
    drain_s = time.monotonic() - t0
    listed: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"index_id": index_id, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/assets", params=params).json()
        listed.update({a["id"]: a for a in page["data"]})
        cursor = page.get("next_cursor")
        if not cursor:
            break
    went_in = {load.asset_ids[0], *load.created, *load.sent}
    objects = data / "blobs" / "objects"
    stored_bytes = 0
    mismatched = []
    for asset_id, (size, digest) in load.sent.items():
        found = list(objects.glob(f"originals/**/{asset_id}/original.*"))  # either key layout
        blob = found[0].read_bytes() if found else b""
        stored_bytes += len(blob)
        if len(blob) != size or hashlib.sha256(blob).hexdigest() != digest:
            mismatched.append(asset_id)
    statuses: dict[str, int] = defaultdict(int)
    for a in listed.values():
        statuses[a["status"]] += 1
    return {
        "assets_in": len(went_in),
        "assets_listed": len(listed),
        "assets_match": set(listed) == went_in,
        "bytes_in": sum(s for s, _ in load.sent.values()),
        "bytes_stored": stored_bytes,
        "originals_mismatched": len(mismatched),
        "asset_status_after": dict(statuses),
        "pipeline_drain_s": round(drain_s, 1),
        "active_tasks_after": len(api.get("/v1/tasks/active").json()["data"]),
    }


def main(clients: int = 8, seconds: float = 20.0, seed: int = 7) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mi-load-") as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        url = f"http://{HOST}:{port}"
        proc, key, log = _start_server(data, port)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
                idx = api.post("/v1/indexes", json={"name": "load", "default_features": ["proxy"]}).json()
                seed_asset = api.post("/v1/assets", json={"index_id": idx["id"], "name": "seed.mp4"}).json()
                # One search first: the query encoder loads once per server, not per request.
                t0 = time.perf_counter()
                api.post("/v1/search", json={"index_id": idx["id"], "query_text": "warm up"})
                warmup_s = time.perf_counter() - t0
                load = Load(url, key, idx["id"], seed_asset["asset"]["id"])
                stop_at = time.monotonic() + seconds
                threads = [
                    threading.Thread(target=load.client, args=(seed + i, stop_at)) for i in range(clients)
                ]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                wall = time.perf_counter() - t0
                check = _verify(api, load, idx["id"], data)
        finally:
            _stop(proc)
        server_errors = [ln for ln in log.read_text(errors="replace").splitlines() if "Traceback" in ln]
    total = sum(len(v) for v in load.latency.values())
    result = {
        "bench": "load",
        "clients": clients,
        "seconds": round(wall, 2),
        "requests": total,
        "throughput_rps": round(total / wall, 1),
        "errors": len(load.errors),
        "error_samples": load.errors[:5],
        "server_tracebacks": len(server_errors),
        "search_warmup_s": round(warmup_s, 2),
        "ops": {name: percentiles(v) for name, v in sorted(load.latency.items())},
        "integrity": check,
    }
    result["ok"] = (
        result["errors"] == 0
        and not server_errors
        and check["assets_match"]
        and check["bytes_in"] == check["bytes_stored"]
        and check["originals_mismatched"] == 0
    )
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0)
    args = p.parse_args()
    out = main(args.clients, args.seconds)
    print(json.dumps(out))
    sys.exit(0 if out["ok"] else 1)
