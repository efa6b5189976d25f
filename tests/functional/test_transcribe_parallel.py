"""Long speech transcribed in parts side by side (Transcriber with replicas, real Whisper and
Silero VAD): the same words at the same times as the one-pass transcript."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mediaindex.domain.transcripts import Transcript
from mediaindex.ml.registry import build_transcriber
from mediaindex.ml.transcriber import TINY_EN_MODEL_ID, Transcriber, default_model_path
from mediaindex.settings import Settings
from tests import mediagen

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not mediagen.have_tools(), reason="needs ffmpeg, ffprobe and espeak-ng"),
]

TOUR = (
    "Welcome to the harbour tour. The ferry leaves at seven in the morning and returns at noon. "
    "On the way you will see the lighthouse, the old fish market and the island of gulls. "
)


class Recording:
    """A real WhisperModel that notes the length of each audio it is given, and can fail on one."""

    def __init__(self, model: Any, fail_on_call: int | None = None) -> None:
        self._model = model
        self.fail_on_call = fail_on_call
        self.calls: list[float] = []
        self.languages: list[str | None] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def transcribe(self, audio: Any, **options: Any) -> Any:
        self.calls.append(len(audio) / 16_000 if not isinstance(audio, str) else -1.0)
        self.languages.append(options.get("language"))
        if self.fail_on_call == len(self.calls):
            raise RuntimeError("decoder ran out of memory")
        return self._model.transcribe(audio, **options)


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 35 s of speech after 1 s of silence, and 24 s of silence after it."""
    root = tmp_path_factory.mktemp("speech")
    return mediagen.speech_wav(root / "tour.wav", TOUR * 3, lead_silence_s=1.0, trail_silence_s=24.0)


@pytest.fixture(scope="module")
def whisper() -> Any:
    """tiny.en loaded with two replicas, one thread each."""
    return Transcriber(default_model_path(), model_id=TINY_EN_MODEL_ID, cpu_threads=1, replicas=2).load()


def words(t: Transcript) -> list[tuple[str, float]]:
    return [(re.sub(r"[^a-z0-9]", "", w.word.lower()), w.start) for s in t.segments for w in s.words]


LANDMARKS = ("welcome", "market", "morning", "noon", "island")  # three times each in TOUR * 3


def edits(heard: str, spoken: str) -> int:
    """Letters substituted, left out or added (Levenshtein)."""
    row = list(range(len(spoken) + 1))
    for i, h in enumerate(heard, 1):
        prev, row[0] = row[0], i
        for j, w in enumerate(spoken, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (h != w))
    return row[-1]


def letters(ws: list[tuple[str, float]]) -> str:
    return "".join(w for w, _ in ws)


def assert_same_words_at_same_times(one_pass: Transcript, parts: Transcript, spoken: str) -> None:
    a, b = words(one_pass), words(parts)
    script = re.sub(r"[^a-z0-9]", "", spoken.lower())
    # tiny.en mishears a word here and there ("fairy", "on" for "of", "light house") and another
    # window's context changes which: the parts hear the script about as well as the one pass
    # (within 3 words' letters), and mostly the same letters
    assert edits(letters(b), script) <= edits(letters(a), script) + 15
    assert edits(letters(b), letters(a)) <= len(letters(a)) // 20
    # And each landmark word, every time it is said, is at the same time in both
    for landmark in LANDMARKS:
        times_a = [t for w, t in a if w == landmark]
        times_b = [t for w, t in b if w == landmark]
        assert len(times_a) == len(times_b) == 3, landmark
        assert all(abs(x - y) <= 0.6 for x, y in zip(times_a, times_b, strict=True)), (times_a, times_b)


def test_long_speech_in_two_parts_has_the_words_and_times_of_one_pass(
    long_speech: Path, whisper: Any
) -> None:
    # Given a minute with 35 s of speech, and a transcriber with two replicas
    recording = Recording(whisper)
    transcriber = Transcriber(
        default_model_path(), model_id=TINY_EN_MODEL_ID, replicas=2, language="en", session=recording
    )
    # When it transcribes the file in one pass, then as it chooses
    one_pass = transcriber.transcribe(long_speech, parts=1)
    parts = transcriber.transcribe(long_speech)
    # Then the second time Whisper was given two pieces of speech of about equal length
    assert recording.calls[0] == -1.0  # the file itself, in one pass
    halves = recording.calls[1:]
    assert len(halves) == 2 and all(12 < h < 25 for h in halves), halves
    # And both transcripts have the spoken words, at the same times, in order, numbered afresh
    assert_same_words_at_same_times(one_pass, parts, TOUR * 3)
    assert abs(parts.segments[0].words[0].start - 1.0) <= 0.5  # after the second of silence
    starts = [w for _, w in words(parts)]
    assert starts == sorted(starts)
    assert [s.id for s in parts.segments] == list(range(len(parts.segments)))
    assert parts.duration == one_pass.duration and parts.duration is not None and 55 < parts.duration < 62
    assert parts.language == one_pass.language == "en"


def test_short_speech_stays_in_one_piece(tmp_path: Path, whisper: Any) -> None:
    # Given 10 s of speech: too little to gain from a second Whisper window
    wav = mediagen.speech_wav(tmp_path / "short.wav", TOUR, lead_silence_s=1.0)
    recording = Recording(whisper)
    transcriber = Transcriber(default_model_path(), model_id=TINY_EN_MODEL_ID, replicas=2, session=recording)
    # When it is transcribed
    transcript = transcriber.transcribe(wav)
    # Then Whisper heard it whole, and the words are there
    assert len(recording.calls) == 1
    assert "ferry" in [w for w, _ in words(transcript)]


def test_silence_has_no_segments_and_its_duration(tmp_path: Path, whisper: Any) -> None:
    # Given 40 s without speech
    wav = tmp_path / "quiet.wav"
    subprocess.run(
        [*mediagen.FFMPEG, "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "40", str(wav)], check=True
    )
    transcriber = Transcriber(default_model_path(), model_id=TINY_EN_MODEL_ID, replicas=2, session=whisper)
    # When it is transcribed with two replicas
    transcript = transcriber.transcribe(wav)
    # Then there are no words, and the file's length is reported
    assert transcript.segments == []
    assert transcript.duration == pytest.approx(40.0, abs=0.1)


def test_a_part_that_fails_fails_the_transcription(long_speech: Path, whisper: Any) -> None:
    # Given a Whisper that fails on the second of the two parts
    recording = Recording(whisper, fail_on_call=2)
    transcriber = Transcriber(default_model_path(), model_id=TINY_EN_MODEL_ID, replicas=2, session=recording)
    # When the long speech is transcribed, then its error comes out: no transcript with a hole
    with pytest.raises(RuntimeError, match="out of memory"):
        transcriber.transcribe(long_speech)
    assert len(recording.calls) == 2


def test_a_multilingual_model_detects_the_language_once_for_all_parts(
    long_speech: Path, tmp_path: Path
) -> None:
    # Given the settings' multilingual model (base), told to detect the language, with 2 replicas
    base = build_transcriber(Settings(data_dir=tmp_path, workers=2, whisper_language="auto"))
    assert base.language is None
    base.replicas = 2
    recording = Recording(base.load())
    transcriber = Transcriber(base.model_path, model_id=base.model_id, replicas=2, session=recording)
    # When the long speech is transcribed in parts
    transcript = transcriber.transcribe(long_speech)
    # Then the language was detected once, before, and each part was told it
    assert len(recording.calls) == 2
    assert recording.languages == ["en", "en"]
    assert transcript.language == "en"
    heard = [w for w, _ in words(transcript)]
    assert heard.count("lighthouse") == 3 and heard.count("morning") == 3
