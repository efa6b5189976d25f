"""Search relevance on a generated spoken corpus (bench/relevance): ingests 14 files into a fresh
local runtime, runs 82 queries as hybrid search, BM25 alone and vector alone, and prints a table of
top-1 accuracy, time accuracy, overlap and threshold behaviour against the goals, then one JSON line.

    python -m bench.relevance_bench                            # ingest, save the raw run, score it
    python -m bench.relevance_bench --raw /tmp/relevance-raw.json   # re-score a saved run, no ingest

Goals are judged on the test split by default (fit fusion weights on dev); --judge all for all."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.relevance.corpus import DEFAULT_CACHE, load_or_build
from bench.relevance.metrics import DEFAULT_THRESHOLD, score
from bench.relevance.report import json_line, table
from bench.relevance.runner import collect, load, save


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", type=Path, help="score this saved run instead of ingesting")
    ap.add_argument("--out", type=Path, default=Path("/tmp/relevance-raw.json"), help="where to save the run")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the generated corpus cache")
    ap.add_argument("--judge", choices=["dev", "test", "all"], default="test")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    args = ap.parse_args(argv)
    if args.raw:
        raw = load(args.raw)
    else:
        raw = collect(load_or_build(args.cache))
        save(raw, args.out)
    m = score(raw, args.threshold)
    print(table(raw, m, args.judge), flush=True)
    print(json_line(raw, m, args.judge), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
