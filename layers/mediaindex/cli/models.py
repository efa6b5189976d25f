"""`mediaindex models export-clip`: the CLIP directory MEDIAINDEX_CLIP_MODEL_PATH expects, written
from a Hugging Face checkpoint (docs/models.md). mediaindex.ml (torch, transformers) is imported
only when the command runs, so every other command starts fast and works without them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mediaindex.cli.errors import EXIT_FAILED, EXIT_USAGE, CliError, err

_PATH_STARTS = ("/", "./", "../", "~")


def cmd_models_export_clip(args: argparse.Namespace) -> int:
    source: str = args.source
    if source.startswith(_PATH_STARTS) and not Path(source).expanduser().is_dir():
        # A hub id is `org/name`; this names a folder on disk, and there is none.
        raise CliError(EXIT_USAGE, f"no checkpoint directory at {source}")
    if Path(source).expanduser().is_dir():
        source = str(Path(source).expanduser())
    try:
        from mediaindex.ml.base import ModelLoadError
        from mediaindex.ml.convert import export_clip
    except ImportError as e:
        raise CliError(EXIT_FAILED, f"export-clip needs the ml extra (torch, transformers): {e}") from e
    try:
        dest = export_clip(source, args.dest.expanduser(), local_files_only=args.offline)
    except (FileExistsError, ModelLoadError) as e:
        raise CliError(EXIT_FAILED, " ".join(str(e).split())) from e
    err(f"exported {args.source}; set MEDIAINDEX_CLIP_MODEL_PATH to:")
    print(dest.resolve())
    return 0


def register(sub: Any) -> None:
    m = sub.add_parser("models", help="model files for the runtime").add_subparsers(
        dest="models_command", required=True, metavar="ACTION"
    )
    e = m.add_parser(
        "export-clip",
        help="write a CLIP checkpoint as the directory MEDIAINDEX_CLIP_MODEL_PATH expects (the ml extra)",
    )
    e.add_argument(
        "source",
        metavar="SOURCE",
        help="a hub id (openai/clip-vit-base-patch32) or a checkpoint directory",
    )
    e.add_argument("dest", metavar="DEST", type=Path, help="the directory to write; must not exist yet")
    e.add_argument(
        "--offline",
        action="store_true",
        help="never reach the hub: read SOURCE from disk or the local cache (HF_HUB_OFFLINE=1 does too)",
    )
    e.set_defaults(fn=cmd_models_export_clip)
