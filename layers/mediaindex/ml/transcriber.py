"""Speech to text with faster-whisper (CTranslate2).

It produces the transcript values of mediaindex.domain.transcripts; faster-whisper itself is imported
in load()."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mediaindex.domain.transcripts import Transcript, TranscriptSegment, Word
from mediaindex.ml.base import InferenceModel, verify_sha256
from mediaindex.ml.speech_parts import SAMPLE_RATE, Chunk, part_count, split_speech
from mediaindex.ml.whisper_models import WHISPER_MODELS, package_dirs

# tiny.en's pin and id, for callers that load it by path (the choice of model is whisper_models').
TINY_EN_MODEL_SHA256 = WHISPER_MODELS["tiny.en"].sha256
TINY_EN_MODEL_ID = WHISPER_MODELS["tiny.en"].model_id
BATCH_SIZE = 16


def default_model_path() -> Path:
    """tiny.en's directory, where its package put it."""
    return package_dirs(WHISPER_MODELS["tiny.en"])[0]


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
        language: str | None = None,
        cpu_threads: int = 0,
        replicas: int = 1,
        session: Any | None = None,
    ) -> None:
        super().__init__(model_path, model_id=model_id, session=session)
        self.device = device
        self.compute_type = compute_type
        self.expected_sha256 = expected_sha256
        # None: a multilingual model detects the language from the first 30 s; an English-only one says "en".
        self.language = language
        # 0: CTranslate2's default (every core). Beside other workers' ffmpeg, fewer threads do the
        # same work with less contention (measured: 4.1 -> 3.7 CPU-s per minute of speech).
        self.cpu_threads = cpu_threads
        # CTranslate2 workers (num_workers), cpu_threads threads each, sharing one copy of the
        # weights: how many parts of one file (or files) Whisper decodes at the same time.
        self.replicas = replicas
        self._batched: Any | None = None

    def _load(self) -> Any:
        self.require_file("config.json", "CTranslate2 Whisper model")
        if self.expected_sha256:
            verify_model(self.model_path, self.expected_sha256)
        from faster_whisper import WhisperModel

        return WhisperModel(
            str(self.model_path),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            num_workers=self.replicas,
        )

    def _prepare(self, session: Any) -> None:
        if self.device == "cuda":
            from faster_whisper import BatchedInferencePipeline

            self._batched = BatchedInferencePipeline(model=session)

    def transcribe(self, audio_path: Path, *, parts: int | None = None) -> Transcript:
        """The words of `audio_path`, with their times. On CPU with several replicas, speech long
        enough is cut at pauses into up to `parts` parts (None: one a replica) transcribed side by
        side; `parts=1` reads the file in one pass, as faster-whisper alone does."""
        session = self.load()
        # temperature 0 without fallback: the same audio gives the same text and times. Without the
        # previous text as a prompt, one misheard segment cannot start a loop that repeats to the end
        # (base did, on 1 of 6 voices of bench/whisper_models.py).
        options: dict[str, Any] = {
            "temperature": 0.0,
            "word_timestamps": True,
            "condition_on_previous_text": False,
            "language": self.language,
        }
        if self._batched is not None:
            segments, info = self._batched.transcribe(
                str(audio_path), batch_size=BATCH_SIZE, vad_filter=True, **options
            )
            return self._transcript(segments, info.language, info.duration)
        most = self.replicas if parts is None else parts
        if most <= 1:
            segments, info = session.transcribe(str(audio_path), beam_size=5, vad_filter=True, **options)
            return self._transcript(segments, info.language, info.duration)
        return self._transcribe_in_parts(session, audio_path, most, options)

    def _transcribe_in_parts(
        self, session: Any, audio_path: Path, most: int, options: dict[str, Any]
    ) -> Transcript:
        """What faster-whisper's VAD filter does (the speech chunks joined, transcribed, their
        times mapped back onto the file), once a part, the parts on their own replicas."""
        from faster_whisper.audio import decode_audio
        from faster_whisper.transcribe import restore_speech_timestamps
        from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

        audio = decode_audio(str(audio_path), sampling_rate=SAMPLE_RATE)
        duration = audio.shape[0] / SAMPLE_RATE
        chunks = get_speech_timestamps(audio, VadOptions())
        if not chunks:  # no speech: nothing to cut, and faster-whisper knows what to report
            segments, info = session.transcribe(audio, beam_size=5, vad_filter=True, **options)
            return self._transcript(segments, info.language, duration)
        groups = split_speech(audio, chunks, part_count(chunks, most))

        def speech(group: list[Chunk]) -> Any:
            return np.concatenate(collect_chunks(audio, group)[0])

        if options["language"] is None and len(groups) > 1 and session.model.is_multilingual:
            # Once, from the first 30 s of speech as the whole-file pass would, so parts agree.
            options = {
                **options,
                "language": session.detect_language(audio=speech(chunks)[: 30 * SAMPLE_RATE])[0],
            }

        def one(group: list[Chunk]) -> tuple[list[Any], str]:
            segments, info = session.transcribe(speech(group), beam_size=5, vad_filter=False, **options)
            return list(restore_speech_timestamps(segments, group, SAMPLE_RATE)), info.language

        with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="whisper-part") as pool:
            done = list(pool.map(one, groups))
        return self._transcript([s for segments, _ in done for s in segments], done[0][1], duration)

    def _transcript(
        self, segments: Iterable[Any], language: str | None, duration: float | None
    ) -> Transcript:
        out: list[TranscriptSegment] = []
        for s in segments:  # may be a generator: decoding happens while iterating
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
            language=language,
            duration=round(float(duration), 3) if duration is not None else None,
            model_id=self.model_id,
            segments=out,
        )
