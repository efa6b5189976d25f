"""One place that knows which models this deployment uses. Each is built on first use, once, under
a lock (workers share one registry), loaded through its own InferenceModel.load(), and may be
injected ready-made for tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from mediaindex.ml.base import InferenceModel, ModelLoadError
from mediaindex.ml.clip import ClipEncoder
from mediaindex.ml.text_encoder import DEFAULT_MODEL_ID, TextEncoder, model_id_for
from mediaindex.ml.text_encoder import default_model_path as default_text_path
from mediaindex.ml.transcriber import TINY_EN_MODEL_ID, TINY_EN_MODEL_SHA256, Transcriber
from mediaindex.ml.transcriber import default_model_path as default_whisper_path
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

    def transcriber(self) -> Transcriber:
        model = self._model("transcriber", Transcriber, self._build_transcriber)
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
        return ClipEncoder(path) if path is not None else None

    def _build_text_encoder(self) -> TextEncoder:
        path = self.settings.text_model_path
        if path is None:
            return TextEncoder(default_text_path(), model_id=DEFAULT_MODEL_ID)
        return TextEncoder(path, model_id=model_id_for(path))

    def _build_transcriber(self) -> Transcriber:
        s = self.settings
        common = {"device": s.whisper_device, "compute_type": s.whisper_compute_type}
        if s.whisper_model_path is not None:
            name = s.whisper_model or s.whisper_model_path.name
            return Transcriber(s.whisper_model_path, model_id=f"faster-whisper/{name}", **common)
        if s.whisper_model != "tiny.en":
            # Models are baked into images at build time, never fetched at run time.
            raise ModelLoadError(
                f"whisper model {s.whisper_model!r} needs MEDIAINDEX_WHISPER_MODEL_PATH; "
                "only tiny.en ships in a package"
            )
        return Transcriber(
            default_whisper_path(), model_id=TINY_EN_MODEL_ID, expected_sha256=TINY_EN_MODEL_SHA256, **common
        )
