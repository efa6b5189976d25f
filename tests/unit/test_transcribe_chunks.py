"""Where long speech is cut for Whisper to transcribe the parts side by side (ml/speech_parts.py),
and how many model replicas the registry gives the transcriber for that."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from mediaindex.ml import speech_parts
from mediaindex.ml.registry import build_transcriber
from mediaindex.ml.speech_parts import Chunk, part_count, pause_near, split_speech
from mediaindex.settings import Settings

SR = speech_parts.SAMPLE_RATE


def s(seconds: float) -> int:
    return round(seconds * SR)


def chunk(start_s: float, end_s: float) -> Chunk:
    return {"start": s(start_s), "end": s(end_s)}


def noisy(seconds: float, quiet: list[tuple[float, float]] = [], level: float = 0.001) -> np.ndarray:  # noqa: B006
    """Loud noise (speech, as far as energy goes), `level` times as loud at `quiet`."""
    audio = np.random.default_rng(7).uniform(-0.5, 0.5, s(seconds)).astype(np.float32)
    for lo, hi in quiet:
        audio[s(lo) : s(hi)] *= level
    return audio


def samples_of(audio: np.ndarray, chunks: list[Chunk]) -> np.ndarray:
    return np.concatenate([audio[c["start"] : c["end"]] for c in chunks])


def test_speech_is_worth_one_part_per_min_part_s_at_most_the_replicas() -> None:
    assert part_count([chunk(0, 10)], 2) == 1  # too short to gain from a second window
    assert part_count([chunk(0, 20), chunk(25, 40)], 2) == 2
    assert part_count([chunk(0, 40)], 8) == 2  # 40 s of speech: two parts of 15 s or more
    assert part_count([chunk(0, 600)], 4) == 4
    assert part_count([chunk(0, 600)], 1) == 1
    assert part_count([], 4) == 1


def test_a_cut_goes_into_the_pause_between_chunks_near_the_middle() -> None:
    # Given 36 s of speech in three chunks, with pauses after 14 s and 28 s of it
    chunks = [chunk(0, 14), chunk(16, 30), chunk(32, 40)]
    audio = noisy(41, quiet=[(14, 16), (30, 32)])
    # When it is cut in two
    groups = split_speech(audio, chunks, 2)
    # Then the cut is the pause nearest 18 s of speech; no chunk is split
    assert groups == [[chunk(0, 14)], [chunk(16, 30), chunk(32, 40)]]


def test_one_long_chunk_is_cut_in_the_middle_of_its_longest_pause_near_the_middle() -> None:
    # Given 40 s of speech without a pause VAD keeps: a silent breath (0.4 s) at 16 s, a gap between
    # words (0.15 s, 40 dB down) at 19 s, nearer the middle
    audio = noisy(40, quiet=[(16.0, 16.4), (19.0, 19.15)], level=0.01)
    audio[s(16.0) : s(16.4)] = 0.0
    chunks = [chunk(0, 40)]
    # When it is cut in two
    first, second = split_speech(audio, chunks, 2)
    # Then the chunk is split in the middle of the longer pause, and nothing is lost or heard twice
    cut = first[0]["end"]
    assert s(16.15) <= cut <= s(16.25)
    assert first == [{"start": 0, "end": cut}]
    assert second == [{"start": cut, "end": s(40)}]
    assert np.array_equal(samples_of(audio, first + second), samples_of(audio, chunks))


def test_of_pauses_about_as_long_the_nearest_is_cut_in_its_middle_not_at_its_edge() -> None:
    # Given 30 s of speech in one chunk with a 0.9 s pause ending just before the middle (a sentence
    # ends at 14.0 s, the next starts at 14.9 s) and another as long further away
    audio = noisy(30, quiet=[(14.0, 14.9), (8.0, 8.9)])
    # When it is cut in two
    first, second = split_speech(audio, [chunk(0, 30)], 2)
    # Then the cut is the nearer pause's middle: both parts keep silence around the cut, and the
    # next sentence's first sound is not clipped
    assert s(14.4) <= first[0]["end"] == second[0]["start"] <= s(14.5)


def test_without_a_gap_between_words_the_cut_is_the_quietest_moment_near_the_middle() -> None:
    # Given 40 s of steady noise, a little softer (10 dB: no gap between words) at 22 s
    audio = noisy(40, quiet=[(22.0, 22.2)], level=0.3)
    first, second = split_speech(audio, [chunk(0, 40)], 2)
    assert s(22.0) <= first[0]["end"] == second[0]["start"] <= s(22.2)


def test_three_parts_keep_every_sample_once_in_order_and_about_equal() -> None:
    # Given a minute of speech in chunks of uneven lengths
    chunks = [chunk(0.5, 9), chunk(11.5, 31), chunk(33, 34), chunk(36, 58)]
    audio = noisy(60, quiet=[(9, 11.5), (31, 33), (34, 36)])
    # When it is cut in three
    groups = split_speech(audio, chunks, 3)
    # Then the parts, joined in order, are the speech exactly, each part about a third of it
    assert len(groups) == 3
    flat = [c for g in groups for c in g]
    assert np.array_equal(samples_of(audio, flat), samples_of(audio, chunks))
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(flat))
    third = speech_parts.speech_samples(chunks) / 3
    reach = speech_parts.SEARCH_S * SR * 2
    assert all(abs(speech_parts.speech_samples(g) - third) <= reach for g in groups)


def test_one_part_or_no_speech_is_left_whole() -> None:
    audio = noisy(30)
    assert split_speech(audio, [chunk(0, 30)], 1) == [[chunk(0, 30)]]
    assert split_speech(audio, [], 3) == [[]]


def test_a_span_shorter_than_a_gap_is_cut_in_its_middle() -> None:
    audio = noisy(1, quiet=[(0.5, 0.6)])
    assert pause_near(audio, 100, 200, 120) == 150
    assert s(0.5) <= pause_near(audio, 0, s(1), 0) <= s(0.6)


@pytest.mark.parametrize(
    ("cores", "workers", "device", "threads", "replicas"),
    [
        (2, 2, "cpu", 1, 2),  # two workers on two cores: one thread each, a file in two parts alone
        (16, 2, "cpu", 8, 2),
        (16, 16, "cpu", 1, 16),
        (2, 1, "cpu", 2, 1),  # one worker: its threads are every core, one pass
        (2, 4, "cpu", 1, 2),
        (16, 2, "cuda", 0, 1),  # a GPU batches instead
    ],
)
def test_the_replicas_times_their_threads_fill_the_cores(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cores: int,
    workers: int,
    device: str,
    threads: int,
    replicas: int,
) -> None:
    monkeypatch.setattr("mediaindex.ml.registry.os.cpu_count", lambda: cores)
    settings = Settings(
        data_dir=tmp_path, workers=workers, whisper_device=device, whisper_model_path=tmp_path
    )
    transcriber = build_transcriber(settings)
    assert (transcriber.cpu_threads, transcriber.replicas) == (threads, replicas)
