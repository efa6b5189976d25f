"""What every model here shares: `InferenceModel` (load once under a lock, predict after, the session
injectable for tests), the error a missing or wrong model raises, model ids derived from what is on
disk, the sha256 pin check, the torch device, and L2 normalisation of embeddings."""

from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from mediaindex.domain.errors import UnavailableError
from mediaindex.media.hashing import sha256_file

if TYPE_CHECKING:  # the API imports the transcript models through this module: no numpy at import
    import numpy as np

S = TypeVar("S")

_CONFIG_FILES = ("config.json", "preprocessor_config.json", "tokenizer_config.json", "modules.json")


class ModelLoadError(UnavailableError):
    """A configured model is missing, unreadable, or not the pinned file. Retrying does not help:
    the deployment must be fixed."""

    code = "model_unavailable"


class InferenceModel(ABC, Generic[S]):
    """A model loaded once per process. `load()` is thread-safe and idempotent: the first caller
    builds the session (`_load`) under a lock, every later caller gets the same one. Predict and
    encode methods start with `self.load()`. A `session` given to the constructor is used as it is
    (tests, or a caller that built one itself): `_load` then never runs, `_prepare` still does.
    A load that raises leaves the model unloaded, so the next call tries again."""

    def __init__(self, model_path: Path, *, model_id: str, session: S | None = None) -> None:
        self.model_path = model_path
        self.model_id = model_id
        self._session = session
        self._ready = False
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._ready

    def load(self) -> S:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    if self._session is None:
                        self._session = self._load()
                    self._prepare(self._session)
                    self._ready = True
        assert self._session is not None
        return self._session

    @abstractmethod
    def _load(self) -> S:
        """Builds the session from `model_path`; raises ModelLoadError when it cannot."""

    def _prepare(self, session: S) -> None:
        """Runs once after the session exists, loaded or injected (under the same lock)."""

    def require_file(self, name: str, what: str, hint: str = "") -> Path:
        """`model_path / name`, or ModelLoadError saying there is no `what` there (then `hint`)."""
        path = self.model_path / name
        if not path.is_file():
            raise ModelLoadError(f"no {what} at {self.model_path}{hint}")
        return path


def dir_fingerprint(path: Path) -> str:
    """A short hash of a model directory: its config files' bytes plus every file's name and size.
    Hashing the weights themselves would cost seconds per GB at every start; name and size change
    whenever a different checkpoint is saved there, which is what the id must tell apart."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        h.update(f"{rel}\0{f.stat().st_size}\0".encode())
        if f.name in _CONFIG_FILES:
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def verify_sha256(path: Path, expected: str, what: str = "model file") -> None:
    """ModelLoadError unless `path` exists and its sha256 is `expected` (a pinned model file)."""
    if not path.is_file():
        raise ModelLoadError(f"{what} {path} does not exist")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelLoadError(
            f"{what} {path} has sha256 {actual}, expected {expected}; "
            "refusing to load a model that is not the pinned one"
        )


def hub_offline() -> None:
    """Never reach the Hugging Face hub: the weights are on disk or loading fails."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def torch_device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def l2_normalise(vecs: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), as float32."""
    import numpy as np

    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)
