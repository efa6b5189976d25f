"""faster-whisper alone vs the transcription step on a generated ~60 s speech clip.

The step adds ffmpeg audio extraction (16 kHz mono WAV), the pinned-model checks and storing the
JSON; this prints how much that costs relative to the raw model call, and both real-time factors.

    .venv/bin/python bench/transcribe_bench.py [--seconds 60] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "layers")]

from mediaindex.domain.blob_keys import LAYOUT_TENANT_FIRST, original_key  # noqa: E402
from mediaindex.domain.models import Asset, MediaType, UploadInfo  # noqa: E402
from mediaindex.ml.registry import ModelRegistry  # noqa: E402
from mediaindex.pipeline.context import StepContext  # noqa: E402
from mediaindex.pipeline.steps import transcription  # noqa: E402
from mediaindex.settings import Settings  # noqa: E402
from tests import mediagen  # noqa: E402
from tests.functional.test_ml import MemoryBlobs  # noqa: E402

SENTENCE = (
    "Media indexing makes a library of video searchable by what is said and what is shown. "
    "Each clip is uploaded, probed, transcribed and embedded, then found again at the right second. "
)


def make_clip(dest: Path, seconds: float) -> Path:
    # espeak-ng at 150 words a minute: repeat the text until the clip is long enough.
    words_needed = int(seconds / 60 * 150)
    text = ""
    while len(text.split()) < words_needed:
        text += SENTENCE
    return mediagen.talking_video(dest, text, size="320x240", lead_silence_s=1.0)


def best_of(repeat: int, fn: object) -> float:
    assert callable(fn)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        clip = make_clip(tmp / "speech.mp4", args.seconds)
        duration = transcription_duration(clip)
        settings = Settings(data_dir=tmp / "data")
        registry = ModelRegistry(settings)
        transcriber = registry.transcriber()  # load once, outside the timings
        model = transcriber.load()

        def raw() -> None:
            # What a caller of faster-whisper would write, with the same options as the step.
            segments, _ = model.transcribe(
                str(clip), beam_size=5, temperature=0.0, vad_filter=True, word_timestamps=True
            )
            list(segments)

        blobs = MemoryBlobs()
        asset_id = "ast_bench"
        key = original_key("ten_bench", asset_id, "mp4", LAYOUT_TENANT_FIRST)
        blobs.put_file(key, clip, "video/mp4")
        asset = Asset(
            id=asset_id, tenant_id="ten_bench", index_id="idx_bench", name="speech.mp4",
            media_type=MediaType.VIDEO, upload=UploadInfo(key=key),
        )  # fmt: skip
        runs = iter(range(10_000))

        def step() -> None:
            work = tmp / f"work{next(runs)}"
            work.mkdir()
            transcription.run(
                StepContext(asset=asset, blobs=blobs, workdir=work, settings=settings, models=registry)
            )

        raw_s = best_of(args.repeat, raw)
        step_s = best_of(args.repeat, step)
        print(
            json.dumps(
                {
                    "clip_seconds": round(duration, 2),
                    "model": transcriber.model_id,
                    "device": settings.whisper_device,
                    "compute_type": settings.whisper_compute_type,
                    "faster_whisper_s": round(raw_s, 3),
                    "step_s": round(step_s, 3),
                    "step_over_raw_ratio": round(step_s / raw_s, 3),
                    "rtf_raw": round(raw_s / duration, 4),
                    "rtf_step": round(step_s / duration, 4),
                },
                indent=2,
            )
        )


def transcription_duration(path: Path) -> float:
    from mediaindex.media.probe import media_duration

    return media_duration(path)


if __name__ == "__main__":
    main()
