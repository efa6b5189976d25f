"""API latency over loopback: GET /v1/assets/{id} and POST /v1/assets against a bare FastAPI route
on the same server (the floor: the same server, middlewares and client, no dependencies).

The GET pays for the key lookup, the quota admission (a requests-per-minute window is set, so it
is counted) and the asset read. Goal (issue "Performance, round two"): GET p50 at most 0.5 ms
above the floor. The three are timed in interleaved rounds, so a burst of load on a shared machine
falls on all of them. Prints one JSON line (a table on stderr).

    .venv/bin/python -m bench.api_latency [n]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, percentiles, serve
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from mediaindex.settings import Settings

GOAL_GET_OVERHEAD_MS = 0.5
ROUNDS = 10
# High enough never to refuse the bench, set so every request is counted in its window.
REQUESTS_PER_MINUTE = 10**9

Call = Callable[[httpx.Client], httpx.Response]


def _time(client: httpx.Client, n: int, fn: Call) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = fn(client)
        out.append(time.perf_counter() - t0)
        assert resp.status_code < 300, resp.text
    return out


def _interleaved(client: httpx.Client, n: int, calls: dict[str, Call]) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in calls}
    per_round = max(1, n // ROUNDS)
    for _ in range(ROUNDS):
        for name, fn in calls.items():
            samples[name] += _time(client, per_round, fn)
    return samples


def _against(floor: dict[str, float], p: dict[str, float]) -> dict[str, float]:
    return {
        **p,
        "overhead_ms": round(p["p50_ms"] - floor["p50_ms"], 3),
        "ratio": round(p["p50_ms"] / floor["p50_ms"], 2),
    }


def summarise(
    samples: dict[str, list[float]], load_start: tuple[float, ...], load_end: tuple[float, ...]
) -> dict[str, Any]:
    """The bench's record from its samples (seconds): the GET as project / floor / ratio first."""
    floor = percentiles(samples["floor"])
    get = _against(floor, percentiles(samples["get"]))
    post = _against(floor, percentiles(samples["post"]))
    return {
        "bench": "api_latency",
        "project_p50_ms": get["p50_ms"],
        "floor_p50_ms": floor["p50_ms"],
        "ratio": get["ratio"],
        "get_p50_overhead_ms": get["overhead_ms"],
        "floor_bare_route": floor,
        "get_asset": get,
        "post_asset": post,
        "goals": {
            f"get_p50_overhead_le_{GOAL_GET_OVERHEAD_MS:g}_ms": get["overhead_ms"] <= GOAL_GET_OVERHEAD_MS
        },
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in load_end],
    }


def measure(n: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        settings = Settings(
            data_dir=Path(tmp), port=port, start_workers=False, rate_limit_per_minute=REQUESTS_PER_MINUTE
        )
        runtime = build_local(settings)
        app = build_app(runtime, close_on_shutdown=False)

        @app.get("/bench/bare", include_in_schema=False)
        def bare() -> dict[str, str]:
            return {"ok": "yes"}

        key = runtime.services.keys.create_key("bench")[2]
        try:
            with (
                serve(app, port) as base,
                httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c,
            ):
                idx = c.post("/v1/indexes", json={"name": "bench"}).json()["id"]
                asset = c.post("/v1/assets", json={"index_id": idx, "name": "a.mp4"}).json()["asset"]["id"]
                calls: dict[str, Call] = {
                    "floor": lambda c: c.get("/bench/bare"),
                    "get": lambda c: c.get(f"/v1/assets/{asset}"),
                    "post": lambda c: c.post("/v1/assets", json={"index_id": idx, "name": "b.mp4"}),
                }
                for fn in calls.values():  # warm up
                    _time(c, 30, fn)
                return _interleaved(c, n, calls)
        finally:
            runtime.close()


def table(record: dict[str, Any]) -> str:
    rows = [("bare route (floor)", record["floor_bare_route"])]
    rows += [("GET /v1/assets/{id}", record["get_asset"]), ("POST /v1/assets", record["post_asset"])]
    lines = [f"{'request':<22}{'p50 ms':>9}{'p99 ms':>9}{'over floor':>12}"]
    for name, p in rows:
        lines.append(f"{name:<22}{p['p50_ms']:>9.3f}{p['p99_ms']:>9.3f}{p.get('overhead_ms', 0.0):>12.3f}")
    return "\n".join(lines)


def main(n: int = 500) -> dict[str, Any]:
    load_start = os.getloadavg()
    samples = measure(n)
    return summarise(samples, load_start, os.getloadavg())


if __name__ == "__main__":
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
    print(table(result), file=sys.stderr)
    print(json.dumps(result), flush=True)
