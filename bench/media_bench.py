"""Overhead of the render step over its own ffmpeg command run raw, and what one decode saves.

Makes a 60 s 720p H.264/AAC clip, then times the render step end to end (original fetched from the
local blob store, one ffmpeg run for the proxy, previews, shots and keyframes, outputs stored)
against its exact ffmpeg command line run with subprocess. Target: at most 10% overhead.

In CPU seconds (which a busy neighbour does not change much):
- `one_decode`: the render step's one run against a run for each part alone (the proxy, the
  previews, the shot scan), as earlier releases ran them: the decode they no longer repeat.
- `render_cost`: the render step's run on a camera-like 1080p source (15 Mbit/s, film grain), in
  CPU seconds and busy cores per media second: bench/aws_prices.py prices Fargate's render from it.
- `shots`: the one-decode shot scan (`media.shots.scan`: cuts and keyframe candidates) against the
  separate passes it replaced (a decode for the cuts, then a seek per segment for its keyframe).

Prints one JSON line (what `make bench` collects).

    .venv/bin/python bench/media_bench.py [--seconds 60] [--repeat 3]

On a shared machine ffmpeg's own run-to-run spread can exceed the overhead, so the bench also
reports `added_outside_ffmpeg_s`: the step's time minus its own ffmpeg run (fetching the original,
probing the output, storing files), measured inside the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "layers"), str(Path(__file__).resolve().parents[1])]

from mediaindex.adapters.local.fs_blobs import LocalBlobStore  # noqa: E402
from mediaindex.domain.blob_keys import LAYOUT_TENANT_FIRST, original_key  # noqa: E402
from mediaindex.domain.models import ALL_FEATURES, Asset, Feature, UploadInfo  # noqa: E402
from mediaindex.media import ffmpeg, probe, shots  # noqa: E402
from mediaindex.pipeline import visual_plan  # noqa: E402
from mediaindex.pipeline.context import StepContext  # noqa: E402
from mediaindex.pipeline.steps import embedding, render  # noqa: E402
from mediaindex.settings import Settings  # noqa: E402

RENDERED = frozenset({Feature.PROXY, Feature.PREVIEW})

TARGET_OVERHEAD = 0.10


def make_clip(path: Path, seconds: float) -> Path:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def shots_vs_separate(src: Path, duration: float, root: Path) -> dict[str, Any]:
    """CPU seconds and wall time of the one-pass scan and of the separate passes, and whether they
    plan the same segments."""
    c0, t0 = _children_cpu(), time.perf_counter()
    cuts = embedding.detect_cuts(src)
    separate = visual_plan.plan_segments(cuts or [], duration)
    for i, (start, end) in enumerate(separate):
        visual_plan.extract_keyframe(src, (start + end) / 2, root / f"seek-{i}.jpg")
    c1, t1 = _children_cpu(), time.perf_counter()
    found = shots.scan(src, root / "candidates", duration_s=duration)
    c2, t2 = _children_cpu(), time.perf_counter()
    return {
        "segments": len(separate),
        "same_segments": visual_plan.plan_segments(found.cuts or [], duration) == separate,
        "separate_cpu_s": round(c1 - c0, 3),
        "one_pass_cpu_s": round(c2 - c1, 3),
        "separate_s": round(t1 - t0, 3),
        "one_pass_s": round(t2 - t1, 3),
        "within_target": c2 - c1 <= c1 - c0,
    }


def one_decode_vs_parts(src: Path, pf: probe.ProbeFacts, root: Path) -> dict[str, Any]:
    """CPU seconds of the render step's one run against one run per part."""

    def cpu(args: list[str]) -> float:
        c0 = _children_cpu()
        subprocess.run(ffmpeg.ffmpeg_command(args), check=True, capture_output=True)
        return _children_cpu() - c0

    def render_args(name: str, **parts: bool) -> list[str]:
        flags = {"with_proxy": False, "with_preview": False, "with_scan": False, **parts}
        return render.plan(src, root / name, pf, **flags).args

    one = cpu(render_args("all", with_proxy=True, with_preview=True, with_scan=True))
    parts = {
        "proxy": cpu(render_args("proxy", with_proxy=True)),
        "preview": cpu(render_args("preview", with_preview=True)),
        "shots": cpu(render_args("shots", with_scan=True)),
    }
    return {
        "one_run_cpu_s": round(one, 3),
        "parts_cpu_s": {k: round(v, 3) for k, v in parts.items()},
        "saved_pct": round(100 * (1 - one / sum(parts.values())), 1),
        "within_target": one <= sum(parts.values()),
    }


def camera_like_clip(path: Path, seconds: float) -> Path:
    """1080p25 H.264 at 15 Mbit/s (a camera's rate) of a test pattern under temporal film grain:
    noise is what makes real footage dearer to encode than a clean pattern."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={seconds},noise=alls=6:allf=t",
         "-f", "lavfi", "-i", f"sine=frequency=300:duration={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-b:v", "15M", "-maxrate", "15M", "-bufsize", "30M",
         "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


def render_cost(root: Path, seconds: float, repeat: int) -> dict[str, Any]:
    """The render step's one ffmpeg run on a camera-like 1080p source: CPU seconds and busy cores per
    second of media, the figures bench/aws_prices.py's TASK_RTF takes for Fargate's render."""
    root.mkdir(parents=True, exist_ok=True)
    src = camera_like_clip(root / "camera.mp4", seconds)
    pf = probe.describe(src)
    runs = []
    for i in range(repeat):
        args = render.plan(
            src, root / f"render-{i}", pf, with_proxy=True, with_preview=True, with_scan=True
        ).args
        c0, t0 = _children_cpu(), time.perf_counter()
        subprocess.run(ffmpeg.ffmpeg_command(args), check=True, capture_output=True)
        runs.append((_children_cpu() - c0, time.perf_counter() - t0))
    cpu_s, wall_s = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    media_s = pf.duration_s or seconds
    return {
        "source": "1920x1080 25 fps H.264 15 Mbit/s, film grain",
        "seconds": media_s,
        "cpu_s_per_media_s": round(cpu_s / media_s, 3),
        "busy_cores": round(cpu_s / wall_s, 2),
        "wall_s_per_media_s": round(wall_s / media_s, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--render-cost-seconds", type=float, default=20.0, help="0: skip the 1080p render cost")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="media-bench-") as tmp:
        root = Path(tmp)
        src = make_clip(root / "clip.mp4", args.seconds)
        blobs = LocalBlobStore(root / "blobs", "http://127.0.0.1:8000", b"b" * 32)
        key = original_key("bench", "asset1", "mp4", LAYOUT_TENANT_FIRST)
        blobs.put_file(key, src, "video/mp4")
        pf = probe.describe(src)
        asset = Asset(
            id="asset1", tenant_id="bench", index_id="idx", name="clip.mp4", upload=UploadInfo(key=key),
            media_type=pf.media_type, duration_s=pf.duration_s, width=pf.width, height=pf.height,
            facts=pf.facts, content_type=pf.content_type,
        )  # fmt: skip
        settings = Settings(data_dir=root / "data")

        def render_args(out: Path) -> list[str]:
            return render.plan(src, out, pf, with_proxy=True, with_preview=True, with_scan=True).args

        steps: dict[str, tuple[Callable[[StepContext], object], Callable[[Path], list[str]]]] = {
            "render": (render.run, render_args),
        }
        # Time spent inside the step's own ffmpeg run, so the step's additions (fetching the original,
        # probing the output, storing files) are measured directly as well as by the noisier ratio.
        in_ffmpeg: list[float] = []
        real_run_ffmpeg = ffmpeg.run_ffmpeg

        def timed_run_ffmpeg(argv: list[str], **kw: Any) -> ffmpeg.ToolOutput:
            t0 = time.perf_counter()
            try:
                return real_run_ffmpeg(argv, **kw)
            finally:
                in_ffmpeg.append(time.perf_counter() - t0)

        ffmpeg.run_ffmpeg = timed_run_ffmpeg  # type: ignore[assignment]
        results: dict[str, Any] = {}
        for name, (run, raw_args) in steps.items():
            step_times: list[float] = []
            raw_times: list[float] = []
            added: list[float] = []
            for i in range(args.repeat):
                raw_dir = root / f"raw-{name}-{i}"
                raw_dir.mkdir()
                cmd = ffmpeg.ffmpeg_command(raw_args(raw_dir))
                work = root / f"step-{name}-{i}"
                work.mkdir()
                ctx = StepContext(
                    asset=asset, blobs=blobs, workdir=work, settings=settings, models=cast(Any, None),
                    features=RENDERED, task_features=frozenset(ALL_FEATURES),
                )  # fmt: skip

                # Alternate which goes first: a busy neighbour or a warm cache then favours neither.
                for which in ("raw", "step") if i % 2 == 0 else ("step", "raw"):
                    if which == "raw":
                        raw_times.append(timed(partial(subprocess.run, cmd, check=True, capture_output=True)))
                    else:
                        in_ffmpeg.clear()
                        step_times.append(timed(partial(run, ctx)))
                        added.append(step_times[-1] - sum(in_ffmpeg))
            step_s, raw_s = statistics.median(step_times), statistics.median(raw_times)
            added_s = statistics.median(added)
            results[name] = {
                "step_s": round(step_s, 3),
                "raw_ffmpeg_s": round(raw_s, 3),
                "ratio": round(step_s / raw_s, 4),
                "overhead_pct": round(100 * (step_s / raw_s - 1), 2),
                # What the step adds around ffmpeg, measured inside the step run.
                "added_outside_ffmpeg_s": round(added_s, 3),
                "added_pct": round(100 * added_s / raw_s, 2),
                "within_target": added_s / raw_s <= TARGET_OVERHEAD,
                "ratio_within_target": step_s / raw_s <= 1 + TARGET_OVERHEAD,
                "runs_step_s": [round(t, 3) for t in step_times],
                "runs_raw_s": [round(t, 3) for t in raw_times],
            }
        ffmpeg.run_ffmpeg = real_run_ffmpeg
        results["shots"] = shots_vs_separate(src, pf.duration_s or args.seconds, root)
        results["one_decode"] = one_decode_vs_parts(src, pf, root / "parts")
        if args.render_cost_seconds > 0:
            results["render_cost"] = render_cost(root / "cost", args.render_cost_seconds, args.repeat)
        print(
            json.dumps(
                {
                    "bench": "media",
                    "clip": {"seconds": args.seconds, "size": "1280x720", "fps": 30},
                    "repeat": args.repeat,
                    "load_1m": round(os.getloadavg()[0], 2),
                    "cpus": os.cpu_count(),
                    # render_cost is a measurement for the cost model, with no goal of its own
                    "pass": all(r["within_target"] for r in results.values() if "within_target" in r),
                    "target_overhead_pct": TARGET_OVERHEAD * 100,
                    "steps": results,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
