"""Every deployable entrypoint imports and starts as it is shipped: each Lambda handler named in the
synthesized template, from its staged code folder; each Batch image's ENTRYPOINT and the encoder
Lambda's command, from the files the Dockerfile copies. Each runs in a fresh interpreter whose path
holds only what the artifact holds (the core package, as the layer or `pip install .` provides it)
and never the repository, so a handler that reaches for a module outside its folder fails here."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import names
from tests.infra.conftest import ROOT, Synth

pytestmark = pytest.mark.infra

CONTAINERS = ROOT / "containers"


def run_isolated(code: str, *, path: list[Path], cwd: Path, args: list[str] | None = None) -> str:
    """Runs `python -c code` (or `python args`) with only `path` and the venv's site-packages."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in path)
    env["PYTHONSAFEPATH"] = "1"  # no implicit cwd / script dir on sys.path
    cmd = [sys.executable, *(args or ["-c", code])]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def lambda_functions(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in synth.doc["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


def test_every_zip_lambda_handler_imports_from_its_staged_folder(synth: Synth, tmp_path: Path) -> None:
    # Given each zip-packaged function of the template with its staged code folder
    zipped = {n: r for n, r in lambda_functions(synth).items() if "Handler" in r["Properties"]}
    ours = {n: r for n, r in zipped.items() if "aws:asset:path" in r.get("Metadata", {})}
    checked = []
    for name, resource in ours.items():
        folder = synth.outdir / resource["Metadata"]["aws:asset:path"]
        module, _, attr = resource["Properties"]["Handler"].rpartition(".")
        if not (folder / f"{module}.py").exists():
            continue  # CDK's own helper functions (custom resources), not ours
        # When the handler module is imported from that folder, beside the core package only
        out = run_isolated(
            f"import {module}; assert callable(getattr({module}, {attr!r})); print({module}.__file__)",
            path=[folder, ROOT / "layers"],
            cwd=tmp_path,
        )
        # Then it is the staged copy that loaded, and its handler is callable
        assert out.strip().startswith(str(folder)), out
        checked.append(name)
    # Every zip function of ours is there: API, upload event, pipeline events, GPU batcher, webhook
    # delivery, reconcile
    stack = synth.stack
    ours_zipped = (
        stack.api.handler,
        stack.pipeline.upload_fn,
        stack.pipeline.events_fn,
        stack.pipeline.gpu_batcher,
        stack.webhooks.delivery_fn,
        stack.reconcile.fn,
    )
    expected = {stack.get_logical_id(f.function.node.default_child) for f in ours_zipped}
    assert set(checked) == expected, f"{checked} checked of {sorted(zipped)}"


def image_copies(dockerfile: Path) -> list[tuple[str, str]]:
    """(source, destination under /app) of each entrypoint file the Dockerfile copies."""
    return re.findall(r"^COPY\s+(functions/\S*)\s+/app/(\S+)$", dockerfile.read_text(), re.M)


def image_files(dockerfile: Path, app_dir: Path) -> None:
    """Copies into app_dir what the Dockerfile COPYs under /app/functions (the entrypoints)."""
    for src, dest in image_copies(dockerfile):
        target = app_dir / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        source = ROOT / src
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)


@pytest.mark.parametrize("image", sorted(p.name for p in CONTAINERS.iterdir() if (p / "Dockerfile").exists()))
def test_every_image_entrypoint_starts_from_what_the_image_copies(image: str, tmp_path: Path) -> None:
    # Given the files the image's Dockerfile copies, laid out as in the image (/app, PYTHONPATH=/app)
    dockerfile = CONTAINERS / image / "Dockerfile"
    app_dir = tmp_path / "app"
    image_files(dockerfile, app_dir)
    assert "ENV PYTHONPATH=/app" in dockerfile.read_text()
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT\s+(\[.*\])$", dockerfile.read_text(), re.M)[-1])
    if image == names.ENCODER_IMAGE:
        # The encoder Lambda's image: the runtime client runs the handler its CMD names, the command
        # infra gives the function too (tests/artifacts runs it under a Lambda Runtime API)
        assert entrypoint == ["python", "-m", "awslambdaric"], entrypoint
        cmd = json.loads(re.findall(r"^CMD\s+(\[.*\])$", dockerfile.read_text(), re.M)[-1])
        assert cmd == names.ENCODER_CMD
        module, _, attr = cmd[0].rpartition(".")
        out = run_isolated(
            f"import importlib; assert callable(importlib.import_module({module!r}).{attr}); print('ok')",
            path=[app_dir, ROOT / "layers"],
            cwd=tmp_path,
        )
        assert out.strip() == "ok"
        return
    assert image in names.IMAGES, f"containers/{image} is neither a Batch image nor the encoder's"
    assert entrypoint[:2] == ["python", "-m"], entrypoint
    # When its entrypoint module runs with --help (argument parsing, imports done)
    out = run_isolated("", path=[app_dir, ROOT / "layers"], cwd=tmp_path, args=[*entrypoint[1:], "--help"])
    # Then it starts and describes the step it runs, and the GPU image the batches it is given
    assert "--tenant-id" in out and "--task-id" in out and "--step" in out
    if names.IMAGES[image] == "gpu":
        assert "--batch-manifest" in out


@pytest.mark.parametrize("image", sorted(p.name for p in CONTAINERS.iterdir() if (p / "Dockerfile").exists()))
def test_the_cdk_build_context_holds_what_each_dockerfile_copies(image: str) -> None:
    # Given the build context CDK hands Docker for the image (the repo minus its excludes)
    from infra.compute import image_asset_options

    excludes = [str(e) for e in image_asset_options(image)["exclude"]]  # type: ignore[attr-defined]
    # Then no source the Dockerfile copies is excluded from it (Docker would fail to build)
    for src, _ in image_copies(CONTAINERS / image / "Dockerfile"):
        parts = Path(src).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        hit = [e for e in excludes for p in prefixes if fnmatch.fnmatch(p, e)]
        assert not hit, f"{src} is copied by containers/{image}/Dockerfile but excluded by {hit}"


def test_the_encoder_lambda_command_imports_from_the_encoder_image(synth: Synth, tmp_path: Path) -> None:
    # Given the container-image function of the template and its image's files
    images = [r for r in lambda_functions(synth).values() if r["Properties"].get("PackageType") == "Image"]
    assert images, "no container-image Lambda in the template"
    app_dir = tmp_path / "app"
    image_files(CONTAINERS / names.ENCODER_IMAGE / "Dockerfile", app_dir)
    for resource in images:
        (command,) = resource["Properties"]["ImageConfig"]["Command"]
        module, _, attr = command.rpartition(".")
        # When the command's module is imported as awslambdaric would
        out = run_isolated(
            f"import importlib; assert callable(importlib.import_module({module!r}).{attr}); print('ok')",
            path=[app_dir, ROOT / "layers"],
            cwd=tmp_path,
        )
        # Then it loads
        assert out.strip() == "ok"
