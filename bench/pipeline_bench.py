"""Time to `ready` on the local runtime for a 60 s 720p clip with speech (2 workers, tiny.en), beside
each step's own time from the job rows and faster-whisper run alone on the same audio.
Targets: time to ready at most the clip's duration; pipeline overhead at most 10 % over the tools."""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from mediaindex import samples
from mediaindex.bootstrap.local import build_local
from mediaindex.ml.registry import ModelRegistry
from mediaindex.pipeline.steps.transcription import extract_audio
from mediaindex.settings import Settings

TEXT = (
    "Welcome to the harbour tour. The ferry leaves at seven in the morning and returns at noon. "
    "On the way you will see the lighthouse, the old fish market and the island of gulls. "
)


def main(seconds: float = 60.0) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clip = samples.talking_video(
            root / "tour.mp4", TEXT * 3, size="1280x720", lead_silence_s=1.0, min_duration_s=seconds
        )
        settings = Settings(data_dir=root / "data", workers=2, rate_limit_per_minute=0)
        runtime = build_local(settings)
        # Models load once per server, not per asset: warm them as a running server would be.
        assert runtime.runner is not None
        models: ModelRegistry = runtime.runner.models
        models.transcriber()
        models.text_encoder()
        tenant, _, _ = runtime.services.keys.create_key("bench")
        idx = runtime.services.indexes.create(
            tenant.id, name="b", description=None, default_features=None, is_sample=False
        )
        asset, _ = runtime.services.assets.create_for_upload(
            tenant.id, index_id=idx.id, name="tour.mp4", features=[], save_original=True,
            user_metadata=None, content_type="video/mp4", size_bytes=clip.stat().st_size,
        )  # fmt: skip
        assert asset.upload is not None
        t0 = time.perf_counter()
        info = runtime.blobs.put_file(asset.upload.key, clip, "video/mp4")
        runtime.services.ingest.original_uploaded(tenant.id, asset.id, size=info.size, etag=info.etag)
        while (a := runtime.stores.assets.get(tenant.id, asset.id)) and a.status.value == "processing":
            time.sleep(0.2)
        ready_s = time.perf_counter() - t0
        assert a is not None
        db = sqlite3.connect(root / "data" / "mediaindex.db")
        steps = {
            step: round(end - start, 2)
            for step, start, end in db.execute(
                "SELECT step, created_at, updated_at FROM jobs ORDER BY created_at"
            )
        }
        runtime.close()

        wav = root / "audio.wav"
        extract_audio(clip, wav)  # the transcription step's own extraction, through the media runner
        t1 = time.perf_counter()
        models.transcriber().transcribe(wav)
        whisper_alone = time.perf_counter() - t1
    return {
        "bench": "pipeline",
        "clip_s": seconds,
        "status": a.status.value,
        "time_to_ready_s": round(ready_s, 2),
        "ready_over_duration": round(ready_s / seconds, 3),
        "step_queued_to_done_s": steps,
        "whisper_alone_s": round(whisper_alone, 2),
        "transcription_step_over_whisper_alone": round(steps.get("transcription", 0) / whisper_alone, 3),
        "targets": "time_to_ready <= clip duration; step overhead <= 10 % over the raw tool",
    }


if __name__ == "__main__":
    print(json.dumps(main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0), indent=2))
