"""One place that knows which models this deployment uses. Each is built on first use, once, under
a lock (workers share one registry), loaded through its own InferenceModel.load(), and may be
injected ready-made for tests."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from mediaindex.ml.base import InferenceModel
from mediaindex.ml.clip import ClipEncoder
from mediaindex.ml.onnx_models import OnnxClipEncoder, OnnxTextEncoder, is_onnx_export
from mediaindex.ml.text_encoder import DEFAULT_MODEL_ID, TextEncoder, model_id_for
from mediaindex.ml.text_encoder import default_model_path as default_text_path
from mediaindex.ml.transcriber import Transcriber
from mediaindex.ml.whisper_models import default_cache_dir, model_dir, whisper_spec
from mediaindex.settings import Settings

M = TypeVar("M", bound=InferenceModel[Any])
_UNSET: Any = object()


class ModelRegistry:
    def __init__(
        self,
        settings: Settings,
        *,
        transcriber: Transcriber | None = None,
        text_encoder: TextEncoder | None = None,
        clip: ClipEncoder | None = _UNSET,
    ) -> None:
        """`clip=None` says there is no CLIP model (visual embedding ends `na`); left out, it is
        built from settings like the others."""
        self.settings = settings
        given = {"transcriber": transcriber, "text_encoder": text_encoder, "clip": clip}
        self._models: dict[str, InferenceModel[Any] | None] = {
            name: model for name, model in given.items() if model is not None and model is not _UNSET
        }
        if clip is None:
            self._models["clip"] = None
        self._lock = threading.Lock()

    def _model(self, name: str, kind: type[M], build: Callable[[], M | None]) -> M | None:
        """The model `name` (built by `build` the first time), loaded; None when there is none."""
        with self._lock:
            if name not in self._models:
                self._models[name] = build()
            model = self._models[name]
        if model is None:
            return None
        assert isinstance(model, kind)
        model.load()
        return model

    def transcriber(self, name: str | None = None) -> Transcriber:
        """The settings' Whisper model, or the packaged model `name` (an index re-indexed onto
        another size); each is built once and kept. ModelLoadError for a name not offered here."""
        if name is None or name == self.settings.whisper_model:
            model = self._model("transcriber", Transcriber, self._build_transcriber)
        else:
            s = self.settings.model_copy(update={"whisper_model": name, "whisper_model_path": None})
            model = self._model(f"transcriber:{name}", Transcriber, lambda: build_transcriber(s))
        assert model is not None
        return model

    def text_encoder(self) -> TextEncoder:
        model = self._model("text_encoder", TextEncoder, self._build_text_encoder)
        assert model is not None
        return model

    def clip(self) -> ClipEncoder | None:
        """None when no CLIP path is configured: visual embedding then ends `na`."""
        return self._model("clip", ClipEncoder, self._build_clip)

    def _build_clip(self) -> ClipEncoder | None:
        path = self.settings.clip_model_path
        if path is None:
            return None
        # The encoder Lambda image carries ONNX exports of the same weights (no torch there).
        return OnnxClipEncoder(path) if is_onnx_export(path) else ClipEncoder(path)

    def _build_text_encoder(self) -> TextEncoder:
        path = self.settings.text_model_path
        if path is None:
            return TextEncoder(default_text_path(), model_id=DEFAULT_MODEL_ID)
        if is_onnx_export(path):
            return OnnxTextEncoder(path)
        return TextEncoder(path, model_id=model_id_for(path))

    def _build_transcriber(self) -> Transcriber:
        return build_transcriber(self.settings)


def build_transcriber(s: Settings) -> Transcriber:
    """The Whisper model the settings choose, not loaded yet (a model shipped in parts is joined
    into the cache here, once)."""
    language = s.whisper_language or None  # set but empty reads as unset
    if s.whisper_model_path is not None:
        # A directory baked into an image (large-v3-turbo on the GPU one): any name, no pin.
        path, pin = s.whisper_model_path, None
        model_id = f"faster-whisper/{s.whisper_model or path.name}"
    else:
        # Otherwise a model a package ships, never one fetched at run time.
        spec = whisper_spec(s.whisper_model)
        path, pin, model_id = (
            model_dir(spec, s.whisper_cache_dir or default_cache_dir()),
            spec.sha256,
            spec.model_id,
        )
        language = language or spec.language
    return Transcriber(
        path,
        model_id=model_id,
        expected_sha256=pin,
        device=s.whisper_device,
        compute_type=s.whisper_compute_type,
        language=None if language == "auto" else language,
        cpu_threads=_cpu_threads(s),
        replicas=_replicas(s),
    )


def _cpu_threads(s: Settings) -> int:
    """On CPU, the cores shared out between the workers that run steps side by side (transcription
    beside a proxy's ffmpeg); 0 (the library's default) on a GPU."""
    if s.whisper_device != "cpu":
        return 0
    return max(1, (os.cpu_count() or 1) // s.workers)


def _replicas(s: Settings) -> int:
    """On CPU, as many CTranslate2 workers (sharing the weights) as fill the cores at _cpu_threads
    each: a long file transcribed while nothing else runs is cut into that many parts decoded side
    by side (one thread each beside another worker's ffmpeg stays efficient, where 2 intra-op
    threads of one decode were slower); two files at once share them. 1 on a GPU, which batches."""
    if s.whisper_device != "cpu":
        return 1
    return max(1, (os.cpu_count() or 1) // _cpu_threads(s))
