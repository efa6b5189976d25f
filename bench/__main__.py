"""`make bench`: runs every benchmark in its own process and prints one JSON line per result.
Pass names to run a subset: `python -m bench api_latency search_bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
DEFAULT = [
    "api_latency",
    "cold_start",
    "media_bench",
    "transcribe_bench",
    "search_bench",
    "pipeline_bench",
    "relevance_bench",
    "aws_budget",
]


def main(names: list[str]) -> int:
    failed = 0
    for name in names or DEFAULT:
        if not (HERE / f"{name}.py").exists():
            print(f'{{"bench": "{name}", "skipped": "not present"}}', flush=True)
            continue
        print(f"# {name}", file=sys.stderr, flush=True)
        rc = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=HERE.parent)
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
