"""One source of truth per artifact: pyproject's extra -> requirements/<artifact>.txt (hashed, from
`make lock`) -> what the layer bundler and the Dockerfiles install, and nothing else. Static checks
of the files; tests/artifacts/test_layer.py and test_images.py build and run the environments."""

from __future__ import annotations

import fnmatch
import glob
import re
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.artifacts import envs

pytestmark = pytest.mark.artifacts

ARTIFACTS = ("layer", "media", "ml", "encoder")
IMAGES = ("media", "ml", "encoder")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def pins(artifact: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a lock file."""
    out: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in envs.lock(artifact).read_text().splitlines():
        if m := PIN.match(line):
            name = str(canonicalize_name(m.group(1)))
            out[name] = (m.group(2), [])
        elif name and (h := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            out[name][1].append(h.group(1))
        elif line.strip() and not line.lstrip().startswith("#"):
            name = None
            assert line.startswith("    "), f"{artifact}.txt: unexpected line {line!r}"
    return out


def wanted(artifact: str) -> list[Requirement]:
    """The base dependencies and the artifact's extra (self-references expanded)."""
    import tomllib

    project = tomllib.loads((envs.ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    reqs: list[Requirement] = []
    todo = [*project["dependencies"], *extras[artifact]]
    while todo:
        req = Requirement(todo.pop())
        if canonicalize_name(req.name) == "mediaindex":
            todo += [r for extra in req.extras for r in extras[extra]]
        else:
            reqs.append(req)
    return reqs


def dockerfile(image: str) -> str:
    return (envs.CONTAINERS / image / "Dockerfile").read_text()


def stages(image: str) -> list[str]:
    """The Dockerfile's build stages (from each FROM to the next); the last is the image."""
    return re.split(r"^(?=FROM\s)", dockerfile(image), flags=re.M)[1:]


# Build stages that run in another artifact's environment: the encoder's `export` stage turns the
# ml image's weights into ONNX in the ml environment (CPU torch, then requirements/ml.txt).
BUILD_ENVIRONMENTS = {("encoder", "export"): "ml"}


def stage_artifacts(image: str) -> list[tuple[str, str | None]]:
    """Each stage and whose lock it installs: the image's for the last stage, the named
    environment's for a build stage that has one, None for a stage that installs nothing (weights)."""
    *build, last = stages(image)
    return [(stage, _build_environment(image, stage)) for stage in build] + [(last, image)]


def _build_environment(image: str, stage: str) -> str | None:
    name = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", stage)
    return BUILD_ENVIRONMENTS.get((image, name.group(1))) if name else None


def run_lines(text: str) -> list[str]:
    """The RUN instructions of a Dockerfile or stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", text)
    return [line for line in text.splitlines() if line.startswith("RUN ")]


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_every_lock_pins_every_package_with_hashes(artifact: str) -> None:
    locked = pins(artifact)
    assert locked, f"{artifact}.txt pins nothing"
    # Every package is pinned to one version with at least one hash; torch is never in a lock
    assert all(hashes for _, hashes in locked.values()), [n for n, (_, h) in locked.items() if not h]
    assert "torch" not in locked
    # And the lock names no index or local path (each installer brings its own)
    text = envs.lock(artifact).read_text()
    assert not re.search(r"^(-i|--index-url|--extra-index-url|--find-links|-f|-e)\b", text, re.M)
    assert "file://" not in text and "/opt/" not in text


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_every_lock_satisfies_its_pyproject_extra(artifact: str) -> None:
    # Given the artifact's requirements in pyproject.toml (the base plus its extra)
    locked = pins(artifact)
    env = default_environment()
    for req in wanted(artifact):
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = str(canonicalize_name(req.name))
        if name == "torch":
            # Then torch is left to the installer, at the pinned version
            assert str(req.specifier) == f"=={envs.torch_pin(artifact)}"
            continue
        # Then the lock pins it at a version the extra allows (else run `make lock`)
        assert name in locked, f"{artifact}.txt lacks {req}: run `make lock`"
        assert req.specifier.contains(locked[name][0], prereleases=True), (
            f"{artifact}.txt pins {name}=={locked[name][0]}, pyproject wants {req}: run `make lock`"
        )


def test_the_layer_carries_the_tracer_the_event_functions_use() -> None:
    # Powertools' Tracer (upload-event, pipeline-events functions) imports the X-Ray SDK
    assert {"aws-lambda-powertools", "aws-xray-sdk"} <= set(pins("layer"))


@pytest.mark.parametrize("image", IMAGES)
def test_each_image_installs_its_own_lock_and_nothing_else(image: str) -> None:
    for stage, artifact in stage_artifacts(image):
        runs = [r for r in run_lines(stage) if "pip install" in r]
        if artifact is None:
            # A stage of no environment (the weights' fetch) installs nothing
            assert not runs, f"containers/{image}/Dockerfile: a stage installs outside any lock: {runs}"
            continue
        # Each stage copies its environment's lock and installs exactly it: hashes, nothing resolved
        assert f"COPY requirements/{artifact}.txt " in stage
        assert any("pip install --require-hashes --no-deps -r /tmp/requirements.txt" in r for r in runs), runs
        for r in runs:
            for install in re.findall(r"pip install ([^&;]*)", r):
                args = install.split()
                allowed = (
                    "--require-hashes" in args  # the lock
                    or args[-2:] == ["--no-deps", "."]  # the package itself, dependencies already in
                    or any(a.startswith('"torch==') for a in args)  # torch, from its index
                )
                assert allowed, (
                    f"containers/{image}/Dockerfile installs outside its lock: pip install {install}"
                )
        # And torch only where the environment pins it (the encoder image itself has none)
        assert ("torch==" in stage) == (envs.torch_pin(artifact) is not None), (image, artifact)


def test_only_the_encoder_image_carries_the_lambda_runtime_client() -> None:
    assert "awslambdaric" in pins("encoder")
    assert "awslambdaric" not in pins("ml") and "awslambdaric" not in pins("media")
    # One onnxruntime build in the GPU image (faster-whisper's, for its VAD), not two that clash
    assert "onnxruntime-gpu" not in pins("ml")


@pytest.mark.parametrize("image", IMAGES)
def test_torch_in_each_image_is_the_pyproject_pin(image: str) -> None:
    for stage, artifact in stage_artifacts(image):
        pin = envs.torch_pin(artifact) if artifact else None
        versions = re.findall(r"^ARG TORCH_VERSION=(\S+)$", stage, re.M)
        if pin is None:
            assert versions == [] and "torch" not in stage
        else:
            assert versions == [pin]
            assert re.search(
                r'pip install (--no-deps )?--index-url "\$\{TORCH_INDEX_URL\}" "torch==\$\{TORCH_VERSION\}',
                stage,
            )


@pytest.mark.parametrize("image", IMAGES)
def test_base_images_are_pinned_by_digest(image: str) -> None:
    froms = re.findall(r"^FROM\s+(\S+)", dockerfile(image), re.M)
    assert froms
    for ref in froms:
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", ref), (
            f"{image}: FROM {ref} is not pinned by digest"
        )


@pytest.mark.parametrize("image", IMAGES)
def test_what_each_dockerfile_copies_is_in_its_build_context(image: str) -> None:
    from infra.compute import image_asset_options

    excludes = [str(e) for e in image_asset_options(image)["exclude"]]  # type: ignore[attr-defined]
    sources = [
        src
        for line in re.findall(r"^COPY\s+(?!--from)(.+)$", dockerfile(image), re.M)
        for src in line.split()[:-1]
    ]
    assert sources
    for src in sources:
        # The source is in the repository (a glob may match nothing only where it says so: README.md*)
        assert glob.glob(str(envs.ROOT / src)) or src.endswith("*"), f"{image}: COPY {src}: no such file"
        parts = Path(src.rstrip("/")).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        hit = [e for e in excludes for p in prefixes if fnmatch.fnmatch(p, e)]
        assert not hit, (
            f"containers/{image}/Dockerfile copies {src}, which the CDK build context excludes ({hit})"
        )
