"""API latency over loopback: GET /v1/assets/{id} and POST /v1/assets against a bare FastAPI route
on the same server (the floor). Target: p50 overhead at most 2 ms above the floor."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import free_port, percentiles, serve
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from mediaindex.settings import Settings


def _time(client: httpx.Client, n: int, fn) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = fn(client)
        out.append(time.perf_counter() - t0)
        assert resp.status_code < 300, resp.text
    return out


def main(n: int = 500) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        settings = Settings(data_dir=Path(tmp), port=port, start_workers=False, rate_limit_per_minute=0)
        runtime = build_local(settings)
        app = build_app(runtime, close_on_shutdown=False)

        @app.get("/bench/bare", include_in_schema=False)
        def bare() -> dict[str, str]:
            return {"ok": "yes"}

        key = runtime.services.keys.create_key("bench")[2]
        with (
            serve(app, port) as base,
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c,
        ):
            idx = c.post("/v1/indexes", json={"name": "bench"}).json()["id"]
            asset = c.post("/v1/assets", json={"index_id": idx, "name": "a.mp4"}).json()["asset"]["id"]
            _time(c, 50, lambda c: c.get("/bench/bare"))  # warm up
            floor = percentiles(_time(c, n, lambda c: c.get("/bench/bare")))
            get = percentiles(_time(c, n, lambda c: c.get(f"/v1/assets/{asset}")))
            post = percentiles(
                _time(c, n, lambda c: c.post("/v1/assets", json={"index_id": idx, "name": "b.mp4"}))
            )
        runtime.close()
    return {
        "bench": "api_latency",
        "floor_bare_route": floor,
        "get_asset": {
            **get,
            "p50_overhead_ms": round(get["p50_ms"] - floor["p50_ms"], 3),
            "p50_ratio": round(get["p50_ms"] / floor["p50_ms"], 2),
        },
        "post_asset": {
            **post,
            "p50_overhead_ms": round(post["p50_ms"] - floor["p50_ms"], 3),
            "p50_ratio": round(post["p50_ms"] / floor["p50_ms"], 2),
        },
        "target": "p50 overhead <= 2 ms",
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500), indent=2))
