"""AWS list prices and quotas the scale model uses (bench/aws_budget.py, docs/scale.md), and the model.

Prices: us-east-1, on-demand list prices as of the last check (2026-11), read from the AWS pricing
page named beside each; nothing here is fetched. Quotas: the documented default of each (the page
named), except the account capacity quotas marked *assumed*, which differ per account and are
raised by request. Update a value here and re-run `make bench`: docs/scale.md follows.

The model (`scale`) takes one asset's measured budget, already scaled to the reference asset, and
an upload rate, and returns the load on every quota, the first quota that rate exceeds, and the cost
per media hour."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

CHECKED = "2026-11"
REGION = "us-east-1"


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str


PRICES: dict[str, Price] = {
    "dynamodb_wru": Price(0.625e-6, "write request unit, on-demand", "Amazon DynamoDB pricing"),
    "dynamodb_rru": Price(0.125e-6, "read request unit, on-demand", "Amazon DynamoDB pricing"),
    "s3_put": Price(0.005e-3, "PUT, COPY, POST or LIST request (S3 Standard)", "Amazon S3 pricing"),
    "s3_get": Price(0.0004e-3, "GET, HEAD and other requests (S3 Standard)", "Amazon S3 pricing"),
    "sfn_transition": Price(0.025e-3, "state transition, Standard workflows", "AWS Step Functions pricing"),
    "lambda_request": Price(0.20e-6, "request", "AWS Lambda pricing"),
    "lambda_gb_s": Price(0.0000166667, "GB-second (x86)", "AWS Lambda pricing"),
    "http_api_request": Price(1.00e-6, "HTTP API request", "Amazon API Gateway pricing"),
    "fargate_vcpu_h": Price(0.04048, "vCPU-hour (Linux/x86)", "AWS Fargate pricing"),
    "fargate_gb_h": Price(0.004445, "GB-hour", "AWS Fargate pricing"),
    "g5_xlarge_h": Price(1.006, "g5.xlarge on-demand hour", "Amazon EC2 On-Demand pricing"),
    "g5_xlarge_spot_h": Price(0.35, "g5.xlarge Spot hour (typical; it moves)", "Amazon EC2 Spot pricing"),
}


@dataclass(frozen=True)
class Quota:
    per_s: float  # sustained rate per second, or a concurrency (what `unit` says)
    unit: str
    source: str
    assumed: bool = False


# The API stage's throttle as deployed by default (infra/api.py DEFAULT_RATE_LIMIT, a test keeps
# them equal): every tenant's requests share it.
API_STAGE_RPS = 1000


QUOTAS: dict[str, Quota] = {
    "batch_submit_job": Quota(50, "SubmitJob calls/s", "AWS Batch service quotas"),
    "fargate_launch": Quota(
        20, "Fargate task launches/s (sustained; burst 100)", "Amazon ECS service quotas"
    ),
    "sfn_start_execution": Quota(300, "StartExecution/s (refill; bucket 1,300)", "Step Functions quotas"),
    "sfn_transitions": Quota(5000, "state transitions/s (refill; bucket 5,000)", "Step Functions quotas"),
    "dynamodb_partition_wru": Quota(1000, "WRU/s on one partition key", "DynamoDB service quotas"),
    "dynamodb_table_wru": Quota(40000, "WRU/s per on-demand table (default max)", "DynamoDB service quotas"),
    "s3_prefix_put": Quota(3500, "PUT/COPY/POST/DELETE per s per prefix", "Amazon S3 performance guidelines"),
    "lambda_concurrency": Quota(1000, "concurrent executions per region", "AWS Lambda quotas"),
    "api_stage_rps": Quota(
        API_STAGE_RPS, "API requests/s through the stage's throttle (context api_rate_limit)", "infra/api.py"
    ),
    "fargate_vcpus": Quota(500, "concurrent Fargate On-Demand vCPUs", "AWS Fargate quotas", assumed=True),
    "gpu_vcpus": Quota(64, "concurrent G-instance vCPUs (16 g5.xlarge)", "Amazon EC2 quotas", assumed=True),
}

# What the model needs beyond the measurement, and why each value.
G5_VCPUS = 4  # the ml job definition takes the whole g5.xlarge (infra/compute.py: 4 vCPU, one GPU)
FARGATE_VCPUS, FARGATE_GB = 2, 4  # the media job definition (infra/compute.py)
LAMBDA_GB = 1.0  # the API function's 1024 MB; the events and upload functions are smaller
LAMBDA_S = 0.2  # assumed mean duration of one invocation, warm
# The GPU steps on a GPU: `python -m bench.gpu_bench` on an NVIDIA H200, 2026-11-28 (two runs, medians
# of 5 and 7; the production architectures with random weights, 100 decoded tokens a 30 s window;
# bench/results/gpu_bench-h200-2026-11-28.jsonl): seconds of work per second of media. On the GPU,
# split by what bounds it: matrix products of large batches (Whisper's encoder, CLIP, MiniLM) and
# memory traffic (Whisper's beam-search decode and word alignment, a few rows a step). On the host's
# CPU: faster-whisper's VAD and log-mel features; ffmpeg's keyframe decode, measured on this
# repository's 2-core machine (3.4 s per 900 keyframes, one run per 32).
GPU_BENCH_H200 = {
    "transcription": {"gpu_compute": 0.00084, "gpu_memory": 0.00046, "cpu": 0.0026},
    "embedding": {"gpu_compute": 0.00015, "gpu_memory": 0.0, "cpu": 0.001},
}
# g5.xlarge against that host, *assumed* from datasheets, not measured. Its A10G (AWS's variant of
# the A10, with less tensor throughput) does about 70 dense fp16 TFLOP/s against the H200's 989, and
# moves 0.6 TB/s against 4.8. Its 4 vCPUs (2 cores of an EPYC 7R32) are taken at half the bench
# host's per-core speed.
A10G_COMPUTE_SLOWDOWN = 14.0
A10G_MEMORY_SLOWDOWN = 8.0
G5_CPU_SLOWDOWN = 2.0


def g5_rtf(step: str) -> float:
    """A GPU step's task seconds per media second on g5.xlarge, from the H200 measurement."""
    m = GPU_BENCH_H200[step]
    return round(
        m["gpu_compute"] * A10G_COMPUTE_SLOWDOWN
        + m["gpu_memory"] * A10G_MEMORY_SLOWDOWN
        + m["cpu"] * G5_CPU_SLOWDOWN,
        4,
    )


# The CPU steps on this repository's 2-core machine (an Intel Xeon), 2026-11-28: CPU seconds per media
# second and the cores they kept busy. render: its one ffmpeg run on a camera-like 1080p source
# (`python -m bench.media_bench`, `render_cost`: 15 Mbit/s H.264 with film grain; a clean test
# pattern takes 0.45); probe (ffprobe, the decode check, the 16 kHz audio track): 1.09 CPU s per
# media minute on one core (bench/aws_budget.py's clips). Fargate's vCPUs are *assumed* to do this
# machine's work per second.
CPU_BENCH = {
    "probe": {"cpu": 0.018, "cores": 1.0},
    "render": {"cpu": 0.625, "cores": 1.88},
}


def fargate_rtf(step: str) -> float:
    """A CPU step's task seconds per media second on Fargate's 2 vCPU."""
    m = CPU_BENCH[step]
    return round(m["cpu"] / m["cores"], 4)


# Task time per second of media, per step (docs/deploy.md's Cost table): the CPU steps on Fargate and
# the GPU steps on g5.xlarge, each derived above from a measurement.
TASK_RTF = {
    "probe": fargate_rtf("probe"),
    "render": fargate_rtf("render"),
    "transcription": g5_rtf("transcription"),
    "embedding": g5_rtf("embedding"),
}
JOB_START_S = 30.0  # assumed per job: container start and model load on a warm instance or task
# GPU steps run in batches (adapters/aws/gpu_batches.py): the deployed defaults of infra (context
# `gpu_batch_max_items`, `gpu_batch_window_s`). A batch fills with the messages of one window, up to
# its maximum: at a trickle each job holds one step, at scale a full batch shares one job start.
GPU_BATCH_MAX_ITEMS = 16
GPU_BATCH_WINDOW_S = 20.0


@dataclass(frozen=True)
class Budget:
    """One asset's requests and compute (the reference asset's, when the model uses it)."""

    media_s: float
    dynamodb_wru: float
    dynamodb_rru: float
    hot_partition_wru: float  # WRU on the partition key it shares with other uploads (its tenant's)
    s3_put_class: float  # PUT, COPY, POST, LIST (multipart parts included)
    s3_get_class: float  # GET, HEAD
    s3_prefix_puts: float  # PUT-class requests under its tenant's key prefix
    sfn_start: float
    sfn_transitions: float
    batch_jobs: float  # jobs of its own (the CPU steps); the GPU steps' jobs are shared, below
    fargate_jobs: float
    lambda_invocations: float
    api_requests: float
    fargate_s: float  # Fargate task seconds (all CPU steps)
    gpu_work_s: float  # GPU instance seconds of the GPU steps' own work (no job start)
    gpu_items: float = 0.0  # GPU steps, each an item of a batch job


def gpu_batch_fill(b: Budget, per_min: float) -> float:
    """Items per GPU batch job at this rate: one window's GPU messages (one tenant's), at least one,
    at most a full batch."""
    arriving = per_min / 60 * b.gpu_items * GPU_BATCH_WINDOW_S
    return min(float(GPU_BATCH_MAX_ITEMS), max(1.0, arriving))


def gpu_jobs(b: Budget, per_min: float) -> float:
    """GPU batch jobs per asset at this rate (a share of each job)."""
    return b.gpu_items / gpu_batch_fill(b, per_min) if b.gpu_items else 0.0


def gpu_s(b: Budget, per_min: float) -> float:
    """GPU instance seconds per asset at this rate: its work, and its share of the job starts."""
    return b.gpu_work_s + JOB_START_S * gpu_jobs(b, per_min)


def request_costs(b: Budget) -> dict[str, float]:
    """USD per asset for each priced thing."""
    p = {k: v.usd for k, v in PRICES.items()}
    fargate_h = b.fargate_s / 3600
    return {
        "dynamodb": b.dynamodb_wru * p["dynamodb_wru"] + b.dynamodb_rru * p["dynamodb_rru"],
        "s3_requests": b.s3_put_class * p["s3_put"] + b.s3_get_class * p["s3_get"],
        "step_functions": b.sfn_transitions * p["sfn_transition"],
        "lambda": b.lambda_invocations * (p["lambda_request"] + LAMBDA_GB * LAMBDA_S * p["lambda_gb_s"]),
        "api_gateway": b.api_requests * p["http_api_request"],
        "fargate": fargate_h * (FARGATE_VCPUS * p["fargate_vcpu_h"] + FARGATE_GB * p["fargate_gb_h"]),
    }


def loads(b: Budget, per_min: float) -> dict[str, float]:
    """What `per_min` uploads a minute put on each quota, in the quota's unit. Concurrency is
    Little's law: arrivals per second times seconds each holds the resource."""
    per_s = per_min / 60
    return {
        "batch_submit_job": per_s * (b.batch_jobs + gpu_jobs(b, per_min)),
        "fargate_launch": per_s * b.fargate_jobs,
        "sfn_start_execution": per_s * b.sfn_start,
        "sfn_transitions": per_s * b.sfn_transitions,
        "dynamodb_partition_wru": per_s * b.hot_partition_wru,  # every upload of one tenant
        "dynamodb_table_wru": per_s * b.dynamodb_wru,
        # Keys are <kind>/<tenant>/<asset>/...: one tenant's writes share a prefix until S3 splits it.
        "s3_prefix_put": per_s * b.s3_prefix_puts,
        "lambda_concurrency": per_s * b.lambda_invocations * LAMBDA_S,
        "api_stage_rps": per_s * b.api_requests,
        "fargate_vcpus": per_s * b.fargate_s * FARGATE_VCPUS,
        "gpu_vcpus": per_s * gpu_s(b, per_min) * G5_VCPUS,
    }


def max_rate_per_min(b: Budget) -> dict[str, float]:
    """The upload rate (per minute) at which each quota is reached. Loads grow with the rate, if not
    in proportion (batches fill): each ceiling is found by bisection."""
    out: dict[str, float] = {}
    for k, q in QUOTAS.items():
        if loads(b, 1e9)[k] <= q.per_s:
            out[k] = math.inf
            continue
        lo, hi = 0.0, 1e9
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if loads(b, mid)[k] <= q.per_s else (lo, mid)
        out[k] = hi
    return out


def scale(b: Budget, per_min: float) -> dict[str, Any]:
    """The model at one rate: each quota's utilisation, the first exceeded, the cost per media hour."""
    load = loads(b, per_min)
    ceilings = max_rate_per_min(b)
    used = {k: load[k] / QUOTAS[k].per_s for k in load}
    exceeded = sorted((k for k in used if used[k] > 1), key=lambda k: ceilings[k])
    closest = max(used, key=lambda k: used[k])
    media_h_per_h = per_min * 60 * b.media_s / 3600
    # GPU instances held: the GPU work in flight (Little's law), whole instances, at least one while
    # uploads keep coming (Batch keeps it through its scale-down delay, longer than the gaps).
    held_s = gpu_s(b, per_min)
    instances = max(1, math.ceil(per_min / 60 * held_s)) if held_s > 0 else 0
    costs = request_costs(b)
    assets_per_h = per_min * 60
    per_media_h = {k: v * assets_per_h / media_h_per_h for k, v in costs.items()}
    gpu_cost = {
        kind: instances * PRICES[key].usd / media_h_per_h
        for kind, key in (("gpu_on_demand", "g5_xlarge_h"), ("gpu_spot", "g5_xlarge_spot_h"))
    }
    return {
        "uploads_per_min": per_min,
        "media_hours_per_hour": round(media_h_per_h, 2),
        "first_limit": exceeded[0] if exceeded else None,
        "exceeded": exceeded,
        # The first exceeded that is not an account's capacity (those are raised by asking).
        "first_rate_limit": next((k for k in exceeded if not QUOTAS[k].assumed), None),
        "first_limit_at_per_min": round(ceilings[exceeded[0]], 1) if exceeded else None,
        "closest": closest,
        "closest_utilisation": round(used[closest], 3),
        "utilisation": {k: round(v, 4) for k, v in used.items()},
        "gpu_instances": instances,
        "gpu_batch_fill": round(gpu_batch_fill(b, per_min), 2) if b.gpu_items else None,
        "gpu_s_per_asset": round(held_s, 2),
        "usd_per_asset_without_gpu": round(sum(costs.values()), 5),
        "usd_per_media_hour": {
            **{k: round(v, 4) for k, v in {**per_media_h, **gpu_cost}.items()},
            "total_on_demand": round(sum(per_media_h.values()) + gpu_cost["gpu_on_demand"], 4),
            "total_spot": round(sum(per_media_h.values()) + gpu_cost["gpu_spot"], 4),
        },
    }
