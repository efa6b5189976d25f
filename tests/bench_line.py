"""Runs one bench as `make bench` does: its record (the one JSON line it must print) and its stderr
(the table it shows a person)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.__main__ import _records

ROOT = Path(__file__).resolve().parents[1]


def bench_record(module: str, *args: str) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = _records(done.stdout)
    assert len(records) == 1 and len(done.stdout.strip().splitlines()) == 1
    return records[0], done.stderr
