"""Model ids derived from what is on disk, so vectors of two different models never share an id."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mediaindex.errors import UnavailableError

_CONFIG_FILES = ("config.json", "preprocessor_config.json", "tokenizer_config.json", "modules.json")


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


def sha256_file(path: Path, chunk: int = 4 * 1024 * 1024) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


class ModelLoadError(UnavailableError):
    """A configured model is missing, unreadable, or not the pinned file. Retrying does not help:
    the deployment must be fixed."""

    code = "model_unavailable"
