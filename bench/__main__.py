"""`make bench`: runs every benchmark in its own process, passes on its JSON lines, and ends with one
table: each bench, whether it met its goals (where it states any), its headline figures and the
machine's load while it ran. Pass names to run a subset: `python -m bench api_latency search_bench`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
DEFAULT = [
    "api_latency",
    "cold_start",
    "encoder_cold_start",
    "media_bench",
    "transcribe_bench",
    "search_bench",
    "search_service_bench",
    "pipeline_bench",
    "search_under_ingest",
    "relevance_bench",
    "whisper_models",
    "aws_budget",
    "gpu_bench",
]
HEADLINE_FIELDS = 3
# Benches that need what not every machine has: the reason one is skipped where it is missing.
NEEDS: dict[str, tuple[Callable[[], bool], str]] = {
    "gpu_bench": (lambda: shutil.which("nvidia-smi") is not None, "needs a CUDA GPU (nvidia-smi)"),
}


def _records(stdout: str) -> list[dict[str, Any]]:
    out = []
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def verdict(record: dict[str, Any]) -> str:
    """pass / FAIL from a record's own goals (`goals` {name: bool}, `passed`/`failed` counts or a
    `pass` field); "-" for a bench that only measures."""
    goals = record.get("goals")
    if isinstance(goals, dict) and goals:
        return "pass" if all(goals.values()) else f"FAIL ({sum(not v for v in goals.values())})"
    if isinstance(record.get("failed"), int):
        return "pass" if record["failed"] == 0 else f"FAIL ({record['failed']})"
    if isinstance(record.get("pass"), bool):
        return "pass" if record["pass"] else "FAIL"
    return "-"


def headline(record: dict[str, Any]) -> str:
    """The first few plain numbers of a record, named."""
    numbers = [
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in record.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k not in ("passed", "failed")
    ]
    return ", ".join(numbers[:HEADLINE_FIELDS])


def table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("bench", "goals", "load", "headline")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = [f"{header[0]:<{widths[0]}}  {header[1]:<{widths[1]}}  {header[2]:<{widths[2]}}  {header[3]}"]
    lines += [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows]
    return "\n".join(lines)


def main(names: list[str]) -> int:
    failed = 0
    rows: list[tuple[str, str, str, str]] = []
    for name in names or DEFAULT:
        missing = "not present" if not (HERE / f"{name}.py").exists() else None
        if missing is None and name in NEEDS and not NEEDS[name][0]():
            missing = NEEDS[name][1]
        if missing:
            print(json.dumps({"bench": name, "skipped": missing}), flush=True)
            rows.append((name, "skipped", "", missing))
            continue
        print(f"# {name}", file=sys.stderr, flush=True)
        run = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"], cwd=HERE.parent, stdout=subprocess.PIPE, text=True
        )
        sys.stdout.write(run.stdout)
        sys.stdout.flush()
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        records = _records(run.stdout)
        if run.returncode != 0:
            failed += 1
            rows.append((name, f"error (exit {run.returncode})", load, ""))
        for record in records:
            label = str(record.get("bench", name))
            if label != name:
                label = f"{name}: {label}"
            rows.append((label, verdict(record), load, headline(record)))
        if not records and run.returncode == 0:
            rows.append((name, "-", load, "no JSON result"))
    print("\n" + table(rows), file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
