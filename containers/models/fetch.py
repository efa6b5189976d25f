"""Fetches one model of models.json into a folder, at image BUILD time (a build stage of the ml and
encoder Dockerfiles). The running images never download a model.

Each model names a Hugging Face repo and a pinned commit (`revision`, 40 hex digits). The commit's
file list (the Hub's tree API for that revision) gives every file's checksum: large files are Git LFS
objects listed with their sha256, small ones are Git blobs listed with their Git SHA-1. Every file is
checked against it, and against models.json's own `sha256` where one is recorded there, before it
lands in the folder; a mismatch, a missing file or a branch name instead of a commit fails the build.
The folder then holds a MANIFEST.json of what was verified.

    python fetch.py MODEL DEST [--base-url https://huggingface.co]

Standard library only: it runs in a plain python image before any dependency is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HUB = "https://huggingface.co"
CHUNK = 1 << 20


class FetchError(Exception):
    pass


def load_model(name: str, manifest: Path = HERE / "models.json") -> dict[str, Any]:
    models = json.loads(manifest.read_text())
    if name not in models:
        raise FetchError(f"unknown model {name!r}: models.json has {', '.join(sorted(models))}")
    model: dict[str, Any] = models[name]
    if not re.fullmatch(r"[0-9a-f]{40}", model["revision"]):
        raise FetchError(f"{name}: revision must be a 40-hex commit, not {model['revision']!r}")
    return model


def _get(url: str) -> Any:
    if not url.startswith(("https://", "http://")):
        raise FetchError(f"refusing to fetch {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "mediaindex-image-build"})  # noqa: S310
    return urllib.request.urlopen(request, timeout=60)  # noqa: S310  (schemes checked above)


def tree(base_url: str, repo: str, revision: str) -> dict[str, dict[str, Any]]:
    """path -> the Hub's entry for that file at `revision` (oid, size, lfs: {oid, size})."""
    url = f"{base_url}/api/models/{repo}/tree/{revision}"
    with _get(url) as response:
        entries = json.load(response)
    return {e["path"]: e for e in entries if e.get("type") == "file"}


def git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())  # noqa: S324  (Git's object id)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def wanted_files(model: dict[str, Any], listing: dict[str, dict[str, Any]]) -> list[str]:
    missing = [f for f in model["files"] if f not in listing]
    if missing:
        raise FetchError(f"{model['repo']}@{model['revision']} has no {', '.join(missing)}")
    files = list(model["files"])
    files += [f for f in model.get("optional", []) if f in listing]
    one_of = model.get("one_of", [])
    if one_of:
        present = [f for f in one_of if f in listing]
        if not present:
            raise FetchError(f"{model['repo']}@{model['revision']} has none of {', '.join(one_of)}")
        files.append(present[0])
    return files


def verify(path: Path, name: str, entry: dict[str, Any], pinned: str | None) -> dict[str, Any]:
    """Checks `path` against the commit's listing (and the recorded sha256); returns its manifest row."""
    size = path.stat().st_size
    digest = sha256(path)
    lfs = entry.get("lfs")
    if lfs:
        if (size, digest) != (int(lfs["size"]), lfs["oid"]):
            raise FetchError(f"{name}: got {size} bytes sha256 {digest}, the commit lists {lfs}")
    elif git_blob_sha1(path) != entry["oid"]:
        raise FetchError(f"{name}: its Git blob id is not the commit's {entry['oid']}")
    if pinned is not None and digest != pinned:
        raise FetchError(f"{name}: sha256 {digest}, models.json records {pinned}")
    return {"path": name, "size": size, "sha256": digest}


def download(url: str, dest: Path) -> None:
    with _get(url) as response, dest.open("wb") as out:
        shutil.copyfileobj(response, out, CHUNK)


def fetch(name: str, dest: Path, *, base_url: str = HUB, manifest: Path = HERE / "models.json") -> Path:
    model = load_model(name, manifest)
    repo, revision = model["repo"], model["revision"]
    listing = tree(base_url, repo, revision)
    files = wanted_files(model, listing)
    unknown = set(model.get("sha256", {})) - set(files)
    if unknown:
        raise FetchError(f"{name}: models.json records sha256 of files it does not fetch: {sorted(unknown)}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Files land in a temporary folder beside dest, which becomes dest only once all are verified.
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        rows = []
        for file in files:
            target = staging / file
            target.parent.mkdir(parents=True, exist_ok=True)
            quoted = urllib.parse.quote(file)
            download(f"{base_url}/{repo}/resolve/{revision}/{quoted}", target)
            rows.append(verify(target, file, listing[file], model.get("sha256", {}).get(file)))
            print(f"{name}: {file} {rows[-1]['size']} bytes sha256 {rows[-1]['sha256']}", flush=True)
        record = {"model": name, "repo": repo, "revision": revision, "files": rows}
        (staging / "MANIFEST.json").write_text(json.dumps(record, indent=2) + "\n")
        if dest.exists():
            raise FetchError(f"{dest} already exists")
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--base-url", default=HUB)
    parser.add_argument("--manifest", type=Path, default=HERE / "models.json")
    args = parser.parse_args(argv)
    try:
        fetch(args.model, args.dest, base_url=args.base_url.rstrip("/"), manifest=args.manifest)
    except (FetchError, OSError) as e:
        print(f"fetch {args.model}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
