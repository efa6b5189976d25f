"""The query encoder over the models of this process: the local runtime's, and the encoder Lambda's
on AWS (the image that carries the weights)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mediaindex.ml.registry import ModelRegistry
from mediaindex.ports.query_encoder import ImageInput, QueryEncoder, Vec


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
