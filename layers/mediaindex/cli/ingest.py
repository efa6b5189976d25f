"""`mediaindex ingest`: files and folders uploaded into an index, each failure with its reason."""

from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path

from mediaindex.cli.errors import EXIT_FAILED, err
from mediaindex.cli.output import progress
from mediaindex.cli.settle import SETTLED, failure_reason, wait_settled
from mediaindex.cli.target import client_for


def _media_files(paths: list[str], include: list[str]) -> tuple[list[Path], list[str]]:
    """The files to upload (named files as they are, folders recursed through `include`) and one
    problem line for each path that gave nothing."""
    files: list[Path] = []
    problems: list[str] = []
    patterns = [p.lower() for p in include]
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and any(fnmatch.fnmatch(p.name.lower(), pat) for pat in patterns)
            )
            if not found:
                problems.append(f"{raw}: no files in this folder match --include")
            files += found
        elif path.is_file():
            files.append(path)
        elif path.exists():
            problems.append(f"{raw}: not a regular file")
        else:
            problems.append(f"{raw}: no such file or folder")
    return files, problems


def _readable(path: Path) -> str | None:
    """Why `path` cannot be uploaded, checked before the server is asked for anything."""
    try:
        with path.open("rb") as f:
            if not f.read(1):
                return "the file is empty"
    except OSError as e:
        return f"cannot read it: {e.strerror or e}"
    return None


def _media_globs() -> list[str]:
    from mediaindex.domain.rules import AUDIO_EXT, IMAGE_EXT, VIDEO_EXT

    return [f"*.{e}" for e in sorted(VIDEO_EXT | AUDIO_EXT | IMAGE_EXT)]


def cmd_ingest(args: argparse.Namespace) -> int:
    from mediaindex.client import ApiError

    files, problems = _media_files(args.paths, args.include or _media_globs())
    for problem in problems:
        err(f"error: {problem}")
    failed = len(problems)
    uploaded: dict[str, Path] = {}
    with client_for(args) as client:
        index = client.index_by_name(args.index)
        for path in files:
            reason = _readable(path)
            if reason is None:
                try:
                    asset = client.upload(index["id"], path, progress=progress(path.name))
                    uploaded[asset["id"]] = path
                    if not args.wait:
                        print(f"{asset['id']}  {path}")
                    continue
                except ApiError as e:
                    if e.status == 401:
                        raise
                    reason = f"{e.code or f'HTTP {e.status}'}: {e.message}"
                except OSError as e:
                    reason = f"cannot read it: {e.strerror or e}"
            err(f"error: {path}: {reason}")
            failed += 1
        if args.wait and uploaded:
            labels = {asset_id: str(path) for asset_id, path in uploaded.items()}
            done = wait_settled(client, labels, timeout_s=args.timeout)
            for asset_id, path in uploaded.items():
                asset = done[asset_id]
                status = asset["status"]
                reason = failure_reason(asset)
                if status not in SETTLED:
                    reason = f"still {status} after {args.timeout:g} s"
                failed += status != "ready"
                print(f"{asset_id}  {path}  {status}" + (f"  {reason}" if reason else ""))
    if failed:
        err(f"{failed} of {len(files) + len(problems)} failed to ingest")
        return EXIT_FAILED
    return 0
