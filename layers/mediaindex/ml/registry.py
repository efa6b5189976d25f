"""One place that knows which models this deployment uses. Each is built on first use, once, under
a lock (workers share one registry), and may be injected ready-made for tests."""

from __future__ import annotations

import threading

from mediaindex.ml.clip import ClipEncoder
from mediaindex.ml.fingerprint import ModelLoadError
from mediaindex.ml.text_encoder import DEFAULT_MODEL_ID, TextEncoder, model_id_for
from mediaindex.ml.text_encoder import default_model_path as default_text_path
from mediaindex.ml.transcriber import TINY_EN_MODEL_ID, TINY_EN_MODEL_SHA256, Transcriber
from mediaindex.ml.transcriber import default_model_path as default_whisper_path
from mediaindex.settings import Settings

_UNSET = object()


class ModelRegistry:
    def __init__(
        self,
        settings: Settings,
        *,
        transcriber: Transcriber | None = None,
        text_encoder: TextEncoder | None = None,
        clip: ClipEncoder | object | None = _UNSET,
    ) -> None:
        self.settings = settings
        self._transcriber = transcriber
        self._text_encoder = text_encoder
        self._clip = clip
        self._lock = threading.Lock()

    def transcriber(self) -> Transcriber:
        with self._lock:
            if self._transcriber is None:
                self._transcriber = self._build_transcriber()
        self._transcriber.load()
        return self._transcriber

    def text_encoder(self) -> TextEncoder:
        with self._lock:
            if self._text_encoder is None:
                path = self.settings.text_model_path
                if path is None:
                    self._text_encoder = TextEncoder(default_text_path(), model_id=DEFAULT_MODEL_ID)
                else:
                    self._text_encoder = TextEncoder(path, model_id=model_id_for(path))
        self._text_encoder.load()
        return self._text_encoder

    def clip(self) -> ClipEncoder | None:
        """None when no CLIP path is configured: visual embedding then ends `na`."""
        with self._lock:
            if self._clip is _UNSET:
                path = self.settings.clip_model_path
                self._clip = ClipEncoder(path) if path is not None else None
            clip = self._clip
        if clip is None:
            return None
        assert isinstance(clip, ClipEncoder)
        clip.load()
        return clip

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
