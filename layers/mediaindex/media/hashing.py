"""Content hashes of files: the sha256 of an uploaded original, of a pinned model file."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path) -> str:
    """The file's sha256 as lowercase hex, read in chunks (never whole into memory)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
