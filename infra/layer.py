"""The core package as a Lambda layer, bundled without Docker: pip installs the API dependencies
(pyproject [project.dependencies]) for Lambda's platform into python/, then copies the package."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import names

ARCHITECTURE = lambda_.Architecture.ARM_64
RUNTIME = lambda_.Runtime.PYTHON_3_11
_PIP_PLATFORM = "manylinux2014_aarch64"


def api_dependencies() -> list[str]:
    with names.PYPROJECT.open("rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """Runs on the deploying machine; needs only pip and network access to the package index."""

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        target = Path(output_dir) / "python"
        # A fixed argv, no shell.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(target),
                "--platform",
                _PIP_PLATFORM,
                "--implementation",
                "cp",
                "--python-version",
                "3.11",
                "--only-binary=:all:",
                *api_dependencies(),
            ],
            check=True,
        )
        shutil.copytree(
            names.LAYER_SOURCE, target / "mediaindex", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        return True


def source_hash() -> str:
    """Changes when the package or the dependency list changes (the bundle depends on both)."""
    digest = hashlib.sha256("\n".join(api_dependencies()).encode())
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
