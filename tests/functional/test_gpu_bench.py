"""bench/gpu_bench.py, the GPU steps' real-time factors, runs its plumbing on a CPU with Whisper
tiny's shape: the model it builds decodes exactly the tokens asked for, and its figures add up."""

from __future__ import annotations

import pytest

from tests.bench_line import bench_record

pytest.importorskip("ctranslate2")
pytest.importorskip("faster_whisper")
pytest.importorskip("transformers")


def test_the_gpu_bench_times_every_part_of_a_batched_transcription() -> None:
    from mediaindex.ml.transcriber import default_model_path

    # tiny.en's: an English-only prompt
    [vocabulary] = [p for p in default_model_path().glob("vocabulary.*") if p.suffix in (".json", ".txt")]
    record, table = bench_record(
        "gpu_bench", "--device", "cpu", "--arch", "tiny", "--vocabulary", str(vocabulary),
        "--tokens", "6", "9", "--repeat", "1", "--skip", "embedding",
    )  # fmt: skip
    t = record["transcription"]
    assert record["device"] == "cpu" and "embedding" not in record
    assert t["media_s"] == 16 * 30 and t["tokens_per_window"] == 6
    assert set(t["by_tokens"]) == {"6", "9"}
    # Each window decoded exactly the tokens asked for (the model's weights are random, so the count is
    # forced); their times are not compared: one repeat on a shared CPU orders them by noise
    assert t["by_tokens"]["6"]["decoded_per_window"] == [6]
    assert t["by_tokens"]["9"]["decoded_per_window"] == [9]
    assert t["by_tokens"]["9"]["rtf_gpu"] > 0 and t["by_tokens"]["6"]["rtf_gpu"] > 0
    # each RTF is its parts over the media's duration
    assert t["rtf_gpu"] == t["by_tokens"]["6"]["rtf_gpu"]
    parts = t["encode_s"] + t["by_tokens"]["6"]["generate_s"] + t["by_tokens"]["6"]["align_s"]
    assert t["rtf_gpu"] == pytest.approx(parts / t["media_s"], rel=0.01)
    assert t["rtf_cpu_parts"] == pytest.approx((t["vad_s"] + t["features_s"]) / t["media_s"], rel=0.02)
    assert t["rtf"] == pytest.approx(t["rtf_gpu"] + t["rtf_cpu_parts"], abs=2e-5)
    assert "transcription" in table
