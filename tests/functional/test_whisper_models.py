"""Each packaged Whisper model, chosen by MEDIAINDEX_WHISPER_MODEL, transcribes generated speech through
the registry (real packages, real joining into the cache, real faster-whisper on CPU)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from mediaindex.ml.registry import ModelRegistry
from mediaindex.ml.whisper_models import WHISPER_MODELS
from mediaindex.settings import Settings
from tests import mediagen

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not mediagen.have_tools(), reason="needs ffmpeg, ffprobe and espeak-ng"),
]

SPOKEN = "the quick brown fox jumps over the lazy dog"
SPANISH = "el perro come su comida en la cocina todos los días por la mañana"


def words(text: str) -> set[str]:
    return set(re.sub(r"[^a-zñáéíóú ]", " ", text.lower()).split())


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mediagen.talking_video(
        tmp_path_factory.mktemp("speech") / "talking.mp4", SPOKEN, size="320x240", lead_silence_s=1.0
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("whisper-cache")


def registry(tmp_path: Path, cache: Path, **settings: object) -> ModelRegistry:
    return ModelRegistry(Settings(data_dir=tmp_path, whisper_cache_dir=cache, **settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(WHISPER_MODELS))
def test_the_chosen_model_hears_the_words_at_the_right_time(
    tmp_path: Path, cache: Path, speech: Path, name: str
) -> None:
    # Given MEDIAINDEX_WHISPER_MODEL set to a packaged model
    transcriber = registry(tmp_path, cache, whisper_model=name).transcriber()
    # When it transcribes a video whose speech starts after 1 s of silence
    transcript = transcriber.transcribe(speech)
    # Then the distinctive spoken words are there, in English, from that model
    assert {"quick", "brown", "fox", "lazy"} <= words(transcript.text), transcript.text
    assert transcript.language == "en"
    assert transcript.model_id == f"faster-whisper/{name}"
    # And the first word starts within half a second of 1.0 s
    first = transcript.segments[0].words[0]
    assert abs(first.start - 1.0) <= 0.5, first


@pytest.fixture(scope="module")
def spanish(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wav = tmp_path_factory.mktemp("es") / "es.wav"
    subprocess.run(["espeak-ng", "-v", "es", "-s", "140", "-w", str(wav), SPANISH], check=True, timeout=60)
    return wav


MULTILINGUAL = next(n for n, spec in sorted(WHISPER_MODELS.items()) if spec.multilingual)


def test_a_multilingual_model_told_auto_detects_the_language(
    tmp_path: Path, cache: Path, spanish: Path
) -> None:
    # Given a multilingual model with MEDIAINDEX_WHISPER_LANGUAGE=auto, and Spanish speech
    transcriber = registry(tmp_path, cache, whisper_model=MULTILINGUAL, whisper_language="auto").transcriber()
    # When it transcribes it
    transcript = transcriber.transcribe(spanish)
    # Then it reports Spanish and writes Spanish words
    assert transcript.language == "es", transcript.text
    assert {"perro", "come", "días", "mañana"} <= words(transcript.text), transcript.text


def test_a_multilingual_model_left_unset_is_told_english(tmp_path: Path, cache: Path, spanish: Path) -> None:
    # Given the multilingual model with MEDIAINDEX_WHISPER_LANGUAGE unset (its registered "en")
    transcriber = registry(tmp_path, cache, whisper_model=MULTILINGUAL).transcriber()
    # When it hears Spanish, Then it does not detect: the transcript says English, as it was told
    assert transcriber.transcribe(spanish).language == "en"
