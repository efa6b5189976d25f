"""Overhead of the proxy and preview steps over the same ffmpeg commands run raw, and what the
one-decode shot scan saves over separate passes.

Makes a 60 s 720p H.264/AAC clip, then times each step end to end (original fetched from the local
blob store, ffmpeg, outputs stored) against its exact ffmpeg command line run with subprocess.
Prints one JSON object; the target is at most 10% overhead.

`shots` compares, in CPU seconds (which a busy neighbour does not change much), the embedding
step's one decode (`media.shots.scan`: cuts and keyframe candidates) with the separate passes it
replaces (a decode for the cuts, then a seek per segment for its keyframe).

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
from mediaindex.domain.blob_keys import original_key  # noqa: E402
from mediaindex.domain.models import Asset, UploadInfo  # noqa: E402
from mediaindex.media import ffmpeg, probe, shots  # noqa: E402
from mediaindex.pipeline.context import StepContext  # noqa: E402
from mediaindex.pipeline.steps import embedding, preview, proxy  # noqa: E402
from mediaindex.settings import Settings  # noqa: E402

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
    separate = embedding.plan_segments(cuts or [], duration)
    for i, (start, end) in enumerate(separate):
        embedding.extract_keyframe(src, (start + end) / 2, root / f"seek-{i}.jpg")
    c1, t1 = _children_cpu(), time.perf_counter()
    found = shots.scan(src, root / "candidates", duration_s=duration)
    c2, t2 = _children_cpu(), time.perf_counter()
    return {
        "segments": len(separate),
        "same_segments": embedding.plan_segments(found.cuts or [], duration) == separate,
        "separate_cpu_s": round(c1 - c0, 3),
        "one_pass_cpu_s": round(c2 - c1, 3),
        "separate_s": round(t1 - t0, 3),
        "one_pass_s": round(t2 - t1, 3),
        "within_target": c2 - c1 <= c1 - c0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="media-bench-") as tmp:
        root = Path(tmp)
        src = make_clip(root / "clip.mp4", args.seconds)
        blobs = LocalBlobStore(root / "blobs", "http://127.0.0.1:8000", b"b" * 32)
        key = original_key("bench", "asset1", "mp4")
        blobs.put_file(key, src, "video/mp4")
        pf = probe.describe(src)
        asset = Asset(
            id="asset1", tenant_id="bench", index_id="idx", name="clip.mp4", upload=UploadInfo(key=key),
            media_type=pf.media_type, duration_s=pf.duration_s, width=pf.width, height=pf.height,
            facts=pf.facts, content_type=pf.content_type,
        )  # fmt: skip
        settings = Settings(data_dir=root / "data")

        def proxy_args(out: Path) -> list[str]:
            return proxy.plan(src, out, pf).args

        def preview_args(out: Path) -> list[str]:
            return preview.plan(src, out, pf).args

        steps: dict[str, tuple[Callable[[StepContext], object], Callable[[Path], list[str]]]] = {
            "proxy": (proxy.run, proxy_args),
            "preview": (preview.run, preview_args),
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
                    asset=asset, blobs=blobs, workdir=work, settings=settings, models=cast(Any, None)
                )

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
        print(
            json.dumps(
                {
                    "clip": {"seconds": args.seconds, "size": "1280x720", "fps": 30},
                    "repeat": args.repeat,
                    "load_1m": round(os.getloadavg()[0], 2),
                    "cpus": os.cpu_count(),
                    "pass": all(r["within_target"] for r in results.values()),
                    "target_overhead_pct": TARGET_OVERHEAD * 100,
                    "steps": results,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
