"""Shared bench helpers: percentiles and a local server on a free loopback port."""

from __future__ import annotations

import socket
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mediaindex.api.background import serve_in_background


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
        "n": len(ms),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    stop = serve_in_background(app, "127.0.0.1", port, access_log=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop()
