"""Cold start of the API Lambda: import functions/api/handler.py, build the app and serve the first
request (GET /v1/health through the handler, the work of a first invoke before any request reaches
AWS), against importing fastapi + mangum and serving one bare route through Mangum.

Each measurement runs in a fresh interpreter, as a new Lambda sandbox would, with the deployment's
environment (aws runtime, state machine, OpenSearch, encoder and purge functions configured, dummy
credentials: neither building the app nor the health check sends a request). Baseline and handler
runs alternate, so load on a shared machine falls on both. The first request is part of the
measure because the app builds each route on its first use: a cold start pays for the route it
serves. Prints one JSON line (a table on stderr): medians in ms as project (handler import, build,
first request) / floor (fastapi + mangum, one bare request) / ratio, the handler's own share (the
difference) against the 200 ms goal, the same in CPU time (steadier on a busy machine), the phases
(the handler module with Powertools, the app's modules, build_runtime with its clients,
create_app, the first request), and the heavy modules imported (torch, aws_cdk, faster_whisper,
httpx must never be there; the script fails when they are). `deployed_layer`: the same from the
layer as bundled for Lambda, its files dated as CDK's asset zip dates them and no bytecode written
(Lambda's /opt is read-only): what a real cold start pays, compiling included.

    .venv/bin/python -m bench.cold_start [--runs 5] [--no-layer]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 200.0  # issue "Performance, round two": the handler's own share
FORBIDDEN = ("torch", "aws_cdk", "faster_whisper", "httpx")
WATCHED = (*FORBIDDEN, "ctranslate2", "transformers", "onnxruntime", "numpy", "opensearchpy", "boto3")

# API Gateway's HTTP API event (payload v2) and a Lambda context, as a first invoke gets them.
INVOKE = """
import contextlib, io
EVENT = {"version": "2.0", "routeKey": "$default", "rawPath": "/v1/health", "rawQueryString": "",
         "headers": {"host": "api.example.com"}, "isBase64Encoded": False,
         "requestContext": {"http": {"method": "GET", "path": "/v1/health", "sourceIp": "192.0.2.1"},
                            "requestId": "bench-1", "stage": "$default"}}
CONTEXT = type("Context", (), {"function_name": "mediaindex-api", "memory_limit_in_mb": 1024,
               "invoked_function_arn": "arn:aws:lambda:us-east-1:111111111111:function:mediaindex-api",
               "aws_request_id": "bench-1"})()

def invoke(handler):
    with contextlib.redirect_stdout(io.StringIO()):  # Powertools prints the invoke's metrics
        answer = handler(EVENT, CONTEXT)
    assert answer["statusCode"] == 200, answer
"""

# The floor: FastAPI and Mangum, one route that builds no validator, one request through them.
BASELINE = (
    """
import json, time
t, c = time.perf_counter(), time.process_time()
import fastapi, mangum
"""
    + INVOKE
    + """
app = fastapi.FastAPI()
app.get("/v1/health")(lambda: {"status": "ok"})
invoke(mangum.Mangum(app, lifespan="off"))
print(json.dumps({"total_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}))
"""
)

# The same work as handler.configure() and a first invoke, in phases, so the report says where
# the time goes.
HANDLER = (
    """
import json, sys, time
marks, cpu = [time.perf_counter()], time.process_time()
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
"""
    + INVOKE
    + """
invoke(handler.handler)
marks.append(time.perf_counter())
watched = __WATCHED__
phases = ["handler_module", "app_modules", "build_runtime", "create_app", "first_request"]
print(json.dumps({"import_s": marks[1] - marks[0], "total_s": marks[-1] - marks[0],
                  "cpu_s": time.process_time() - cpu,
                  "phases": {p: marks[i + 1] - marks[i] for i, p in enumerate(phases)},
                  "modules": sorted(m for m in watched if m in sys.modules)}))
"""
).replace("__WATCHED__", repr(WATCHED))


def lambda_env(tmp: Path) -> dict[str, str]:
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
        # As deployed (infra/api.py): index purges go to this function; without it the API would
        # start a sweep thread that reaches for DynamoDB while the app is being built.
        MEDIAINDEX_PURGE_FUNCTION="mediaindex-purge",
        MEDIAINDEX_DATA_DIR=str(tmp),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # dummy: nothing is sent
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_METRICS_NAMESPACE="mediaindex",
        PYTHONDONTWRITEBYTECODE="0",
    )
    return env


def _run(code: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT / "functions" / "api", capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"subprocess failed:\n{out.stderr[-4000:]}")
    record: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return record


def _ms(values: Iterable[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def summarise(
    baseline: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    load_start: tuple[float, ...],
    load_end: tuple[float, ...],
) -> dict[str, Any]:
    """The bench's record from its runs (seconds): project / floor / ratio first, then the goals."""
    base_ms = _ms(r["total_s"] for r in baseline)
    total_ms = _ms(r["total_s"] for r in runs)
    own_ms = round(total_ms - base_ms, 1)
    modules = sorted({m for r in runs for m in r["modules"]})
    forbidden = [m for m in FORBIDDEN if m in modules]
    return {
        "bench": "cold_start",
        "project_ms": total_ms,
        "floor_ms": base_ms,
        "ratio": round(total_ms / base_ms, 2),
        "handler_own_ms": own_ms,
        "handler_own_cpu_ms": round(_ms(r["cpu_s"] for r in runs) - _ms(r["cpu_s"] for r in baseline), 1),
        "handler_import_ms": _ms(r["import_s"] for r in runs),
        "phases_ms": {p: _ms(r["phases"][p] for r in runs) for p in runs[0]["phases"]},
        "runs": len(runs),
        "target_own_ms": TARGET_MS,
        "imported_watched_modules": modules,
        "forbidden_imported": forbidden,
        "goals": {
            f"handler_own_le_{TARGET_MS:g}_ms": own_ms <= TARGET_MS,
            "no_forbidden_modules": not forbidden,
        },
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in load_end],
    }


def table(record: dict[str, Any]) -> str:
    rows = [
        ("fastapi + mangum, 1 request", record["floor_ms"]),
        ("import, build, 1st request", record["project_ms"]),
        ("handler's own share", record["handler_own_ms"]),
        ("  the same, CPU time", record["handler_own_cpu_ms"]),
        *((f"  phase {p}", v) for p, v in record["phases_ms"].items()),
    ]
    lines = [f"{name:<28}{ms:>9.1f} ms" for name, ms in rows]
    if "deployed_layer" in record:
        lines.append(f"{'as deployed (layer), own':<28}{record['deployed_layer']['handler_own_ms']:>9.1f} ms")
    lines.append(f"imported: {', '.join(record['imported_watched_modules']) or 'none watched'}")
    return "\n".join(lines)


CDK_ZIP_EPOCH = 315532800  # 1980-01-01: the date CDK's asset zips give every file


def deployed_layer(tmp: Path, runs: int) -> dict[str, float]:
    """The same runs over the layer as Lambda gets it: bundled (infra/layer.py, this machine's
    platform), every file dated as CDK's zip dates it, and no bytecode written (/opt is read-only),
    so a module whose .pyc is missing or stale is compiled at every cold start."""
    sys.path[:0] = [str(ROOT), str(ROOT / "layers")]
    from infra import layer

    layer.bundle(tmp / "layer", platform=f"manylinux2014_{platform.machine()}")
    for path in (tmp / "layer").rglob("*"):
        os.utime(path, (CDK_ZIP_EPOCH, CDK_ZIP_EPOCH), follow_symlinks=False)
    env = {
        **lambda_env(tmp),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / "api"), str(tmp / "layer" / "python")]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    base = [_run(BASELINE, env)["total_s"] for _ in range(runs)]
    total = [_run(HANDLER, env)["total_s"] for _ in range(runs)]
    return {
        "floor_ms": _ms(base),
        "project_ms": _ms(total),
        "handler_own_ms": round(_ms(total) - _ms(base), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--no-layer", action="store_true", help="skip the bundled layer's measure (15 s to build)"
    )
    args = parser.parse_args()
    load_start = os.getloadavg()
    baseline: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = lambda_env(Path(tmp))
        _run(BASELINE, env)  # warm the OS page cache and .pyc files, as a deployed layer would be
        _run(HANDLER, env)
        for _ in range(args.runs):
            baseline.append(_run(BASELINE, env))
            runs.append(_run(HANDLER, env))
        layer_ms = None if args.no_layer else deployed_layer(Path(tmp), args.runs)
    result = summarise(baseline, runs, load_start, os.getloadavg())
    if layer_ms is not None:
        result["deployed_layer"] = layer_ms
    print(table(result), file=sys.stderr)
    print(json.dumps(result), flush=True)
    return 0 if not result["forbidden_imported"] else 1


if __name__ == "__main__":
    sys.exit(main())
