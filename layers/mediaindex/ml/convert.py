"""Writing the CLIP directory that MEDIAINDEX_CLIP_MODEL_PATH expects, from a Hugging Face checkpoint.

ClipEncoder (ml/clip.py) loads a transformers `save_pretrained` directory: config.json (a CLIPConfig),
the weights (model.safetensors), the tokenizer's files, and, optionally, preprocessor_config.json for
the image mean and std. `export_clip` writes exactly that from a hub id (on a machine that can reach
the hub, once, before deploying) or from a checkpoint already on disk; the runtime never downloads.
The directory appears whole or not at all: it is written beside `dest` and renamed into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mediaindex.ml.base import ModelLoadError

PREPROCESSOR = "preprocessor_config.json"


def export_clip(source: str | Path, dest: Path, *, local_files_only: bool = False) -> Path:
    """Saves the CLIP checkpoint `source` (a hub id such as "openai/clip-vit-base-patch32", or a
    directory) to `dest`, which must not exist yet. ModelLoadError when `source` is not a CLIP
    checkpoint transformers can read."""
    if dest.exists():
        raise FileExistsError(f"{dest} already exists: choose a new directory, or remove it first")
    from transformers import AutoConfig, AutoTokenizer, CLIPModel
    from transformers.utils import cached_file

    src = str(source)
    try:
        config = AutoConfig.from_pretrained(src, local_files_only=local_files_only)
        if config.model_type != "clip":
            raise ModelLoadError(f"{src} is a {config.model_type!r} checkpoint, not CLIP")
        clip_cls: Any = CLIPModel  # its from_pretrained stubs misdescribe the signature
        model = clip_cls.from_pretrained(src, local_files_only=local_files_only)
        tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=local_files_only)
        # Not every checkpoint has one; ClipEncoder then uses OpenAI's mean and std.
        preprocessor = cached_file(
            src, PREPROCESSOR, local_files_only=local_files_only, _raise_exceptions_for_missing_entries=False
        )
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"cannot read a CLIP checkpoint from {src}: {e}") from e
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if preprocessor:
            shutil.copyfile(preprocessor, tmp / PREPROCESSOR)
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
