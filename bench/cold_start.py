"""Cold start of the API Lambda: import functions/api/handler.py and build the app (the work of a
first invoke before any request reaches AWS), against importing fastapi + mangum alone.

Each measurement runs in a fresh interpreter, as a new Lambda sandbox would, with the deployment's
environment (aws runtime, state machine and OpenSearch configured, dummy credentials: building the
app sends no request). Prints JSON: medians in ms, the ratio, the handler's own share (handler minus
the fastapi+mangum baseline) against the 200 ms target, the phases (the handler module with
Powertools, the app's modules, build_runtime with its clients, create_app), and the heavy modules imported
(torch, aws_cdk, faster_whisper must never be there; the script fails when they are).

    .venv/bin/python bench/cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 200.0  # issue "Performance, round two": the handler's own share
FORBIDDEN = ("torch", "aws_cdk", "faster_whisper")
WATCHED = (*FORBIDDEN, "ctranslate2", "transformers", "onnxruntime", "numpy", "opensearchpy", "boto3")

BASELINE = """
import time
t = time.perf_counter()
import fastapi, mangum
print(time.perf_counter() - t)
"""

# The same work as handler.configure(), in phases, so the report says where the time goes.
HANDLER = """
import json, sys, time
marks = [time.perf_counter()]
import handler
marks.append(time.perf_counter())
import mangum, mediaindex.api.app
marks.append(time.perf_counter())
from mediaindex.bootstrap import build_runtime
from mediaindex.bootstrap.aws import lambda_settings
runtime = build_runtime(lambda_settings())
marks.append(time.perf_counter())
handler.configure(runtime)
marks.append(time.perf_counter())
watched = {watched!r}
phases = ["handler_module", "app_modules", "build_runtime", "create_app"]
print(json.dumps({{"import_s": marks[1] - marks[0], "total_s": marks[-1] - marks[0],
                  "phases": {{p: marks[i + 1] - marks[i] for i, p in enumerate(phases)}},
                  "modules": sorted(m for m in watched if m in sys.modules)}}))
"""


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAINDEX_", "AWS_"))}
    env.update(
        # The Lambda layout: the function folder is the cwd/first path entry, the layer on the path.
        PYTHONPATH=os.pathsep.join([str(ROOT / "functions" / "api"), str(ROOT / "layers")]),
        AWS_LAMBDA_FUNCTION_NAME="mediaindex-api",  # the handler's cold-start path, as in a sandbox
        MEDIAINDEX_RUNTIME="aws",
        MEDIAINDEX_AWS_REGION="us-east-1",
        MEDIAINDEX_TABLE_NAME="mediaindex",
        MEDIAINDEX_BUCKET_NAME="mediaindex-media",
        MEDIAINDEX_STATE_MACHINE_ARN="arn:aws:states:us-east-1:111111111111:stateMachine:mediaindex",
        MEDIAINDEX_OPENSEARCH_URL="https://search-mediaindex.us-east-1.es.amazonaws.com",
        MEDIAINDEX_QUERY_ENCODER_FUNCTION="mediaindex-encoder",
        MEDIAINDEX_DATA_DIR=str(tmp),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # dummy: nothing is sent
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_METRICS_NAMESPACE="mediaindex",
        PYTHONDONTWRITEBYTECODE="0",
    )
    return env


def _run(code: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT / "functions" / "api", capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"subprocess failed:\n{out.stderr[-4000:]}")
    return out.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        env = _env(Path(tmp))
        _run(BASELINE, env)  # warm the OS page cache and .pyc files, as a deployed layer would be
        _run(HANDLER.format(watched=WATCHED), env)
        baseline = [float(_run(BASELINE, env)) for _ in range(args.runs)]
        runs = [json.loads(_run(HANDLER.format(watched=WATCHED), env)) for _ in range(args.runs)]
    base_ms = statistics.median(baseline) * 1000
    import_ms = statistics.median(r["import_s"] for r in runs) * 1000
    total_ms = statistics.median(r["total_s"] for r in runs) * 1000
    modules = sorted({m for r in runs for m in r["modules"]})
    forbidden = [m for m in FORBIDDEN if m in modules]
    own_ms = total_ms - base_ms
    result = {
        "runs": args.runs,
        "fastapi_mangum_import_ms": round(base_ms, 1),
        "handler_import_ms": round(import_ms, 1),
        "handler_import_and_build_ms": round(total_ms, 1),
        "ratio_vs_fastapi_mangum": round(total_ms / base_ms, 2),
        "phases_ms": {
            p: round(statistics.median(r["phases"][p] for r in runs) * 1000, 1) for p in runs[0]["phases"]
        },
        "handler_own_ms": round(own_ms, 1),
        "target_own_ms": TARGET_MS,
        "within_target": own_ms <= TARGET_MS,
        "imported_watched_modules": modules,
        "forbidden_imported": forbidden,
        "no_forbidden_modules": not forbidden,
    }
    print(json.dumps(result, indent=2))
    assert not forbidden, f"the API Lambda imported {forbidden}"
    return 0


if __name__ == "__main__":
    sys.exit(main())
