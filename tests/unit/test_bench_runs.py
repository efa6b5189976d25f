"""The search benchmarks run against today's code (a fake of a port they use must keep up with
it): each at a tiny size, its JSON line checked. `make bench` runs them at full size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(module: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1]
    result: dict[str, object] = json.loads(line)
    return result


def test_the_search_service_bench_runs_and_reports_both_paths() -> None:
    result = _bench("search_service_bench", "--segments", "3000", "--queries", "5")
    assert result["segments"] == 3000
    service, knn = result["service_p50_ms"], result["knn_p50_ms"]
    assert isinstance(service, float) and isinstance(knn, float) and service > 0 and knn > 0
