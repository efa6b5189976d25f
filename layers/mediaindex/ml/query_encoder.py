"""The query encoder over the models of this process: the local runtime's, and the encoder Lambda's
on AWS (the image that carries the weights)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mediaindex.domain.search import TRANSCRIPTION, VISUAL
from mediaindex.ml.base import ModelLoadError
from mediaindex.ml.registry import ModelRegistry
from mediaindex.ml.text_encoder import default_model_path as default_text_path
from mediaindex.ports.query_encoder import ImageInput, QueryEncoder, Vec
from mediaindex.settings import Settings


def unavailable_modalities(settings: Settings) -> dict[str, str]:
    """The search modalities the models of these settings cannot embed a query for, each with why
    (`visual` without a CLIP model, `transcription` without a text model). Read from configuration
    and the file system only: nothing is loaded, so asking costs nothing."""
    out: dict[str, str] = {}
    clip = settings.clip_model_path
    if clip is None:
        out[VISUAL] = "no CLIP model is configured (MEDIAINDEX_CLIP_MODEL_PATH)"
    elif not clip.exists():
        out[VISUAL] = f"the CLIP model path {clip} does not exist"
    text = settings.text_model_path
    if text is not None and not text.exists():
        out[TRANSCRIPTION] = f"the text model path {text} does not exist"
    elif text is None:
        try:
            default_text_path()
        except ModelLoadError as e:
            out[TRANSCRIPTION] = str(e)
    return out


class ModelQueryEncoder(QueryEncoder):
    def __init__(self, models: ModelRegistry) -> None:
        self._models = models

    def visual_text(self, text: str) -> Vec | None:
        clip = self._models.clip()
        if clip is None:
            return None
        return str(clip.model_id), [float(x) for x in clip.encode_text([text])[0]]

    def transcript_text(self, text: str) -> Vec | None:
        enc = self._models.text_encoder()
        return str(enc.model_id), [float(x) for x in enc.encode([text])[0]]

    def visual_image(self, image: ImageInput) -> Vec | None:
        clip = self._models.clip()
        if clip is None:
            return None
        if isinstance(image, Path):
            return str(clip.model_id), [float(x) for x in clip.encode_images([image])[0]]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "query-image"
            path.write_bytes(image)
            return str(clip.model_id), [float(x) for x in clip.encode_images([path])[0]]
