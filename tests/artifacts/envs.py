"""The deployable artifacts' Python environments, built the way they are shipped, and cached.

- The Lambda layer: infra/layer.py's bundler itself (what CDK runs), from requirements/layer.txt,
  for Lambda's platform (manylinux2014_aarch64, to check it installs and fits) and for this machine's
  (manylinux2014_x86_64, to import and run it here).
- Each image (media, ml, encoder): a fresh venv with what its Dockerfile installs: torch==<the
  pyproject pin> first where the image has torch (here the CPU wheel on this machine's disk, in
  place of the CUDA or CPU-index build), then requirements/<image>.txt with --require-hashes
  --no-deps. `pip check` then proves the lock complete.

Each is built once per (lock hash, recipe) in ~/.cache/mediaindex-artifacts (MEDIAINDEX_ARTIFACTS_DIR),
outside the checkout so that CI's fresh clone reuses it, in a staging folder renamed into place when
complete, so an interrupted build is never reused; builds for older locks are removed. The package
itself is never part of the cache: every run lays the current layers/mediaindex and functions/ beside
the cached environment, as the layer bundler and the Dockerfiles' COPY lines do."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Outside the checkout: CI runs in a fresh clone on the same machine, and reuses what a session built.
CACHE = Path(
    os.environ.get("MEDIAINDEX_ARTIFACTS_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mediaindex-artifacts"
)
REQUIREMENTS = ROOT / "requirements"
CONTAINERS = ROOT / "containers"
PACKAGE = ROOT / "layers" / "mediaindex"
# Bump when the way an environment is built changes (the cache key includes it).
RECIPE = "1"
HOST_PLATFORM = "manylinux2014_x86_64"
# AWS states its limits in MB of 2**20 bytes (250 MB layers, 10 GB images = 10,240 MB).
MB = 2**20


@dataclass(frozen=True)
class Size:
    what: str
    bytes: int
    limit: int
    note: str


# Filled as environments are measured; the conftest prints it at the end of the run.
SIZES: dict[str, Size] = {}


def lock(artifact: str) -> Path:
    return REQUIREMENTS / f"{artifact}.txt"


def extras() -> dict[str, list[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return dict(data["project"]["optional-dependencies"])


def torch_pin(artifact: str) -> str | None:
    """The torch version the artifact's extra pins (installed before its lock), or None."""
    pins = [r.split("==", 1)[1] for r in extras()[artifact] if re.match(r"torch\s*==", r)]
    return pins[0].strip() if pins else None


def _key(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def cached(name: str, key: str, build: Callable[[Path], None]) -> Path:
    """CACHE/<name>-<key>, built by `build(folder)` unless a complete one is there."""
    dest = CACHE / f"{name}-{key}"
    complete = dest / ".complete"
    if complete.is_file():
        complete.touch()  # recently used: other checkouts' pruning leaves it alone
        return dest
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = CACHE / f".{name}-{key}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        build(staging)
        (staging / ".complete").write_text(json.dumps({"name": name, "key": key}) + "\n")
        try:
            staging.rename(dest)
        except OSError:
            if not complete.is_file():  # else another run finished the same build first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(name, keep=dest)
    return dest


def _prune(name: str, keep: Path) -> None:
    """Removes builds of `name` for other lock hashes unused for an hour (another checkout may be
    using one right now), and staging folders of interrupted builds."""
    now = time.time()
    for old in [*CACHE.glob(f"{name}-*"), *CACHE.glob(f".{name}-*")]:
        marker = old / ".complete"
        stamp = marker if marker.is_file() else old
        if old != keep and now - stamp.stat().st_mtime > 3600:
            shutil.rmtree(old, ignore_errors=True)


def run(cmd: list[str], *, timeout: float = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Runs `cmd` to completion; fails the test with its output when it exits non-zero."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


def tree_size(path: Path) -> int:
    """Bytes of the files under `path` (symbolic links not followed), as an unpacked artifact."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = Path(dirpath) / f
            if not p.is_symlink():
                total += p.stat().st_size
    return total


# ---- the Lambda layer ------------------------------------------------------------------------
def layer(platform: str) -> Path:
    """The bundler's output for `platform` (its python/ folder holds the packages and mediaindex)."""
    from infra import layer as infra_layer

    key = _key(RECIPE, platform, lock("layer").read_bytes(), (ROOT / "infra" / "layer.py").read_bytes())

    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        infra_layer.PipLayerBundler(platform=platform).try_bundle(str(folder))

    return cached(f"layer-{platform}", key, build)


def layer_with_current_package(bundle: Path, dest: Path) -> Path:
    """dest/python: the cached bundle's packages (linked) with the package as it is now (copied, as the
    bundler copies it). Returns the python/ folder, Lambda's /opt/python."""
    python = dest / "python"
    python.mkdir(parents=True)
    for entry in (bundle / "python").iterdir():
        if entry.name != "mediaindex":
            (python / entry.name).symlink_to(entry)
    shutil.copytree(PACKAGE, python / "mediaindex", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return python


# ---- the images' Python environments ---------------------------------------------------------
def venv(image: str) -> Path:
    """A venv with what containers/<image>/Dockerfile pip-installs, bar the package itself."""
    torch = torch_pin(image)
    key = _key(RECIPE, sys.version, lock(image).read_bytes(), torch or "")

    def build(folder: Path) -> None:
        run([sys.executable, "-m", "venv", str(folder)])
        pip = [
            str(folder / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ]
        if torch:
            # The Dockerfile takes torch from the CUDA or CPU index; here the CPU wheel on disk.
            run([*pip, "--no-deps", f"torch=={torch}"])
        run([*pip, "--require-hashes", "--no-deps", "-r", str(lock(image))])
        # --no-deps installed exactly the lock: every requirement of every package must be in it.
        run([str(folder / "bin" / "python"), "-m", "pip", "check"])

    return cached(f"venv-{image}", key, build)


def image_copies(image: str) -> list[tuple[str, str]]:
    """(source, destination under /app) of each entrypoint file containers/<image>/Dockerfile copies."""
    text = (CONTAINERS / image / "Dockerfile").read_text()
    return re.findall(r"^COPY\s+(functions/\S*)\s+/app/(\S+)$", text, re.M)


def image_app(image: str, dest: Path) -> list[Path]:
    """The image's /app (the entrypoints its Dockerfile copies) and the package, laid out under
    `dest`; returns the PYTHONPATH entries (/app, then where `pip install .` puts mediaindex)."""
    app, site = dest / "app", dest / "site"
    for src, target in image_copies(image):
        source, to = ROOT / src, app / target
        to.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, to, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, to)
    shutil.copytree(PACKAGE, site / "mediaindex", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return [app, site]


def base_env(tmp: Path) -> dict[str, str]:
    """A clean environment for an artifact's process: nothing of this test process's Python set-up."""
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp),
        "PYTHONSAFEPATH": "1",  # no script folder or cwd on sys.path
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # Lambda's /opt and /var/task are read-only
        "PYTHONUNBUFFERED": "1",
    }


def aws_env(endpoint: str, region: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


def record_size(name: str, what: str, path: Path, limit: int, note: str) -> int:
    size = tree_size(path)
    SIZES[name] = Size(what=what, bytes=size, limit=limit, note=note)
    return size
