"""The core package as a Lambda layer, bundled without Docker: pip installs the layer's hashed lock
(requirements/layer.txt, resolved from the pyproject extra `layer`) for Lambda's platform into
python/, copies the package, then compiles every module's bytecode so that no cold start does
(`compile_bytecode`). tests/artifacts runs the same bundler for the host's platform."""

from __future__ import annotations

import compileall
import hashlib
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import names

ARCHITECTURE = lambda_.Architecture.ARM_64
RUNTIME = lambda_.Runtime.PYTHON_3_11
# What pip installs for: Lambda's arm64 Python 3.11 (the layer's compatible architecture and runtime).
LAMBDA_PLATFORM = "manylinux2014_aarch64"
PYTHON_VERSION = "3.11"
LAMBDA_PYTHON = (3, 11)
LOCK = names.ROOT / "requirements" / "layer.txt"


def pip_install_command(target: Path, *, platform: str = LAMBDA_PLATFORM, lock: Path = LOCK) -> list[str]:
    """The pip command that fills `target` with the lock's packages, as wheels for `platform`.
    Every file is checked against the lock's hashes; nothing outside the lock is resolved."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--require-hashes",
        "--no-deps",
        "--target",
        str(target),
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "-r",
        str(lock),
    ]


def bundle(output_dir: Path, *, platform: str = LAMBDA_PLATFORM, lock: Path = LOCK) -> Path:
    """Lays the layer out in `output_dir` (python/: the locked packages and mediaindex); returns python/."""
    target = output_dir / "python"
    subprocess.run(pip_install_command(target, platform=platform, lock=lock), check=True)  # fixed argv
    shutil.copytree(
        names.LAYER_SOURCE, target / "mediaindex", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    compile_bytecode(target)
    return target


def compile_bytecode(target: Path) -> bool:
    """Writes bytecode for every module under `target` that nothing checks at import. Lambda's /opt
    is read-only, so a module without usable bytecode is compiled again at every cold start; CDK
    zips assets with every file dated 1980-01-01, which makes pip's timestamp-checked .pyc stale
    and leaves the package (copied without any) to compile whole. The layer's sources never change
    once deployed, so unchecked hash-based .pyc are right. Only under Lambda's Python version (a
    .pyc of another is ignored there): False, and nothing written, otherwise."""
    if sys.version_info[:2] != LAMBDA_PYTHON:
        return False
    # Some packages ship files that are not meant to compile (templates, other versions' code):
    # those stay as they are; what imports, compiles.
    compileall.compile_dir(
        str(target),
        quiet=2,
        force=True,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    return True


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """Runs on the deploying machine; needs only pip and network access to the package index.
    CDK uses the defaults (Lambda's platform); tests pass the host's platform to import the result."""

    def __init__(self, platform: str = LAMBDA_PLATFORM, lock: Path = LOCK) -> None:
        self.platform = platform
        self.lock = lock

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        bundle(Path(output_dir), platform=self.platform, lock=self.lock)
        return True


def source_hash(lock: Path = LOCK) -> str:
    """Changes when the package or the lock changes (the bundle depends on both)."""
    digest = hashlib.sha256(LAMBDA_PLATFORM.encode() + b"\n" + lock.read_bytes())
    for path in sorted(names.LAYER_SOURCE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(names.LAYER_SOURCE)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class CoreLayer(Construct):
    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(
                str(names.LAYER_SOURCE),
                asset_hash=source_hash(),
                asset_hash_type=AssetHashType.CUSTOM,
                bundling=BundlingOptions(
                    # Only used when local bundling is refused; PipLayerBundler always accepts.
                    image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.11"),
                    local=PipLayerBundler(),  # type: ignore[arg-type]  # jsii.implements is not seen by mypy
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="mediaindex core package and its API dependencies",
        )
