"""Fixtures of the artifact tests: a moto server, the artifacts' environments (built once per lock
hash, tests/artifacts/envs.py), and a summary of their sizes at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.artifacts import envs
from tests.moto_server import moto_server


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def layer_for_lambda() -> Path:
    from infra.layer import LAMBDA_PLATFORM

    return envs.layer(LAMBDA_PLATFORM)


@pytest.fixture(scope="session")
def layer_for_host() -> Path:
    return envs.layer(envs.HOST_PLATFORM)


@pytest.fixture(scope="session")
def media_venv() -> Path:
    return envs.venv("media")


@pytest.fixture(scope="session")
def ml_venv() -> Path:
    return envs.venv("ml")


@pytest.fixture(scope="session")
def encoder_venv() -> Path:
    return envs.venv("encoder")


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy CLIP model directory (random weights) for the images' ClipEncoder."""
    import sys

    dest = tmp_path_factory.mktemp("models") / "clip"
    envs.run([sys.executable, str(Path(__file__).with_name("tiny_clip.py")), str(dest)], timeout=300)
    return dest


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not envs.SIZES:
        return
    terminalreporter.section("deployable artifacts: installed size against the limit")
    for name, size in sorted(envs.SIZES.items()):
        share = 100 * size.bytes / size.limit
        terminalreporter.write_line(
            f"{name:<28} {size.bytes / envs.MB:8.1f} MB of {size.limit / envs.MB:8.0f} MB "
            f"({share:4.1f}%)  {size.what}; {size.note}"
        )
