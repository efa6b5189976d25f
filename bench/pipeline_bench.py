"""Time to `ready` on the local runtime (2 workers, models loaded as a serving process has them)
against the 2-core floor: the CPU time of the raw tools the steps run (their exact ffmpeg command
lines, ffprobe and the hash, Whisper in one pass, the text encoder), each run alone, divided by the 2
cores. The pipeline may cut long speech into parts for Whisper (ml/speech_parts.py); any CPU that
adds counts against it, not into the floor.

Cases: a 60 s 720p talking clip and 60 s of speech as M4A; with --long, a 10-minute 720p clip too.
Target: time to ready at most 1.1x the floor. Each case runs `--repeat` times (default 3), the
floor's tools and the pipeline interleaved, and the ratio is median ready over median floor: one
run moves by +-5 % with the neighbours' load on a shared machine, as the issue's own figures
(medians of >= 3 interleaved runs) allowed for. Prints one JSON line per case (what `make bench`
collects, each run's figures in it too) and a table on stderr with the machine's load beside each
case: on a busy machine the ratio measures the neighbours, not the pipeline.

    .venv/bin/python -m bench.pipeline_bench [--long] [--repeat N] [--cases video_60s audio_60s video_600s]
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "layers"), str(Path(__file__).resolve().parents[1])]

from mediaindex import samples  # noqa: E402
from mediaindex.bootstrap.local import build_local  # noqa: E402
from mediaindex.bootstrap.pipeline import preload_models  # noqa: E402
from mediaindex.domain.models import MediaType  # noqa: E402
from mediaindex.media import ffmpeg, probe  # noqa: E402
from mediaindex.media.hashing import sha256_file  # noqa: E402
from mediaindex.ml.registry import ModelRegistry  # noqa: E402
from mediaindex.pipeline import audio_track  # noqa: E402
from mediaindex.pipeline.sentences import sentences  # noqa: E402
from mediaindex.pipeline.steps import render  # noqa: E402
from mediaindex.settings import Settings  # noqa: E402

CORES = 2
TARGET_RATIO = 1.1
TEXT = (
    "Welcome to the harbour tour. The ferry leaves at seven in the morning and returns at noon. "
    "On the way you will see the lighthouse, the old fish market and the island of gulls. "
)


@dataclass(frozen=True)
class Case:
    name: str
    seconds: float
    audio_only: bool = False


CASES = {
    "video_60s": Case("video_60s", 60.0),
    "audio_60s": Case("audio_60s", 60.0, audio_only=True),
    "video_600s": Case("video_600s", 600.0),
}
DEFAULT_CASES = ["video_60s", "audio_60s"]


def make_media(case: Case, root: Path) -> tuple[Path, str]:
    # About a third of the time is speech (espeak at 150 words a minute), the rest padding.
    text = TEXT * max(3, round(case.seconds / 30))
    if not case.audio_only:
        clip = samples.talking_video(
            root / "clip.mp4", text, size="1280x720", lead_silence_s=1.0, min_duration_s=case.seconds
        )
        return clip, "video/mp4"
    wav = samples.speech_wav(root / "speech.wav", text, lead_silence_s=1.0)
    clip = root / "clip.m4a"
    subprocess.run(
        [*samples.FFMPEG, "-i", str(wav), "-af", f"apad=whole_dur={case.seconds}", "-c:a", "aac",
         "-b:a", "64k", str(clip)],
        check=True, capture_output=True,
    )  # fmt: skip
    return clip, "audio/mp4"


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_of(fn: Callable[[], object]) -> float:
    """CPU seconds `fn` used: in its subprocesses and in this process (all threads)."""
    c0, p0 = _children_cpu(), time.process_time()
    fn()
    return (_children_cpu() - c0) + (time.process_time() - p0)


def _raw(args: list[str]) -> None:
    subprocess.run(ffmpeg.ffmpeg_command(args), check=True, capture_output=True)


def raw_tools_cpu(src: Path, models: ModelRegistry, work: Path) -> dict[str, float]:
    """Each tool the pipeline runs on `src`, run alone: its CPU seconds."""
    pf = probe.describe(src)
    out: dict[str, float] = {}

    def probe_tools() -> None:
        pf_again = probe.describe(src)
        probe.check_decodes(src, pf_again)
        sha256_file(src)

    out["probe"] = cpu_of(probe_tools)
    # The render step's one run: proxy, previews and (for video) the shots and keyframes.
    d = work / "render"
    video = pf.media_type == MediaType.VIDEO
    r = render.plan(src, d, pf, with_proxy=True, with_preview=True, with_scan=video)
    out["render"] = cpu_of(lambda: _raw(r.args))
    wav = work / "audio.wav"
    out["audio_extract"] = cpu_of(lambda: audio_track.extract(src, wav))
    transcriber = models.transcriber()
    result: list[object] = []
    # faster-whisper's own single pass: what cutting the speech into parts adds counts against
    # the pipeline, not into the floor.
    out["whisper"] = cpu_of(lambda: result.append(transcriber.transcribe(wav, parts=1)))
    encoder = models.text_encoder()
    texts = [s.text for s in sentences(result[0])]  # type: ignore[arg-type]
    out["text_encoder"] = cpu_of(lambda: encoder.encode(texts))
    return {k: round(v, 3) for k, v in out.items()}


def _status_reader(runtime: Any, tenant_id: str, asset_id: str) -> Callable[[], str | None]:
    """The asset's status, read inside SQLite (json_extract): polled every 20 ms, parsing the whole
    asset in Python instead cost about 0.8 CPU s per 60 s clip, charged to the pipeline (py-spy)."""
    db = runtime.stores.assets._db
    sql = "SELECT json_extract(doc, '$.status') FROM assets WHERE id = ? AND tenant_id = ?"

    def status() -> str | None:
        row = db.connection().execute(sql, (asset_id, tenant_id)).fetchone()
        return str(row[0]) if row else None

    return status


def time_to_ready(
    src: Path, content_type: str, settings: Settings
) -> tuple[float, float, str, dict[str, float]]:
    """Seconds from the upload to `ready`, the CPU seconds the runtime used meanwhile (all its
    threads and tools), the asset's status and each job's time from queued to done."""
    runtime = build_local(settings)
    try:
        assert runtime.runner is not None
        # As a serving process has them: preloaded before the asset comes, on a thread at the
        # workers' priority (the threads the models start keep it).
        preload_models(runtime.runner.models, nice=settings.background_nice).join()
        tenant, _, _ = runtime.services.keys.create_key("bench")
        idx = runtime.services.indexes.create(
            tenant.id, name="b", description=None, default_features=None, is_sample=False
        )
        asset, _ = runtime.services.assets.create_for_upload(
            tenant.id, index_id=idx.id, name=src.name, features=[], save_original=True,
            user_metadata=None, content_type=content_type, size_bytes=src.stat().st_size,
        )  # fmt: skip
        assert asset.upload is not None
        status_of = _status_reader(runtime, tenant.id, asset.id)
        t0, c0, p0 = time.perf_counter(), _children_cpu(), time.process_time()
        info = runtime.blobs.put_file(asset.upload.key, src, content_type)
        runtime.services.ingest.original_uploaded(tenant.id, asset.id, size=info.size, etag=info.etag)
        while status_of() == "processing":
            time.sleep(0.02)
        ready_s = time.perf_counter() - t0
        cpu_s = (_children_cpu() - c0) + (time.process_time() - p0)
        a = runtime.stores.assets.get(tenant.id, asset.id)
        assert a is not None
        db = runtime.executor.queue._db if runtime.executor else None
        steps: dict[str, float] = {}
        if db is not None:
            rows = db.connection().execute("SELECT step, created_at, updated_at FROM jobs").fetchall()
            steps = {str(step): round(end - start, 2) for step, start, end in rows}
        return ready_s, cpu_s, a.status.value, steps
    finally:
        runtime.close()


def run_case(case: Case, repeat: int = 3) -> dict[str, object]:
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        root = Path(tmp)
        src, content_type = make_media(case, root)
        load_before = os.getloadavg()[0]
        models: ModelRegistry | None = None
        for i in range(repeat):
            # A fresh data directory per run: each upload meets an empty runtime, as the first did.
            settings = Settings(
                data_dir=root / f"data-{i}", workers=CORES, rate_limit_per_minute=0, preload_models=False
            )
            models = models or ModelRegistry(settings)
            work = root / f"raw-{i}"
            work.mkdir()
            tools = raw_tools_cpu(src, models, work)
            ready_s, project_cpu_s, status, steps = time_to_ready(src, content_type, settings)
            runs.append({
                "project_s": round(ready_s, 2), "floor_s": round(sum(tools.values()) / CORES, 2),
                "project_cpu_s": round(project_cpu_s, 2), "status": status,
                "raw_tools_cpu_s": tools, "step_queued_to_done_s": steps,
            })  # fmt: skip
        load_after = os.getloadavg()[0]
    ready_s = statistics.median(float(r["project_s"]) for r in runs)  # type: ignore[arg-type]
    floor_s = statistics.median(float(r["floor_s"]) for r in runs)  # type: ignore[arg-type]
    cpu_s = statistics.median(float(r["project_cpu_s"]) for r in runs)  # type: ignore[arg-type]
    ratio = ready_s / floor_s
    all_ready = all(r["status"] == "ready" for r in runs)
    return {
        "bench": "pipeline",
        "case": case.name,
        "status": "ready" if all_ready else "failed",
        "runs": len(runs),
        "project_s": round(ready_s, 2),
        "floor_s": round(floor_s, 2),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "pass": all_ready and ratio <= TARGET_RATIO,
        # Each run's own ratio: the spread the median smooths.
        "run_ratios": [round(float(r["project_s"]) / float(r["floor_s"]), 3) for r in runs],  # type: ignore[arg-type]
        # The pipeline's CPU time over the raw tools': what it does twice or adds, whatever the
        # machine's load (the wall-clock ratio needs a quiet machine).
        "project_cpu_s": round(cpu_s, 2),
        "cpu_over_raw": round(cpu_s / (floor_s * CORES), 3),
        "load_1m": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
        "per_run": runs,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--long", action="store_true", help="add the 10-minute clip (several minutes)")
    ap.add_argument("--cases", nargs="+", choices=sorted(CASES), help="run these cases only")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs per case (median taken)")
    args = ap.parse_args(argv)
    names = args.cases or DEFAULT_CASES + (["video_600s"] if args.long else [])
    rows = []
    for name in names:
        row = run_case(CASES[name], max(1, args.repeat))
        print(json.dumps(row), flush=True)
        rows.append(row)
    cols = f"{'case':<12} {'project_s':>9} {'floor_s':>8} {'ratio':>6}  {'pass':<5}"
    print(f"{cols} {'cpu_over_raw':>12}  {'run ratios':<21}  load_1m", file=sys.stderr)
    for r in rows:
        print(
            f"{r['case']!s:<12} {r['project_s']!s:>9} {r['floor_s']!s:>8} {r['ratio']!s:>6}  "
            f"{'PASS' if r['pass'] else 'FAIL':<5} {r['cpu_over_raw']!s:>12}  "
            f"{r['run_ratios']!s:<21}  {r['load_1m']}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
