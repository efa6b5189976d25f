"""Shared fixtures: the API over either runtime, tenants with keys, generated media."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests import mediagen

    if not mediagen.have_tools():
        pytest.skip("ffmpeg, ffprobe and espeak-ng are needed (make deps installs them)")
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def talking_clip(media_dir: Path) -> Path:
    from tests import mediagen

    return mediagen.talking_video(media_dir / "talk.mp4", "the quick brown fox jumps over the lazy dog")


@pytest.fixture(scope="session")
def small_image(media_dir: Path) -> Path:
    from tests import mediagen

    return mediagen.image(media_dir / "still.png", size="320x240")


def pytest_report_header(config: Any) -> str:
    live = os.environ.get("OPENSEARCH_URL")
    return f"OpenSearch live suite: {'on (' + live + ')' if live else 'off (OPENSEARCH_URL unset)'}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "data"
    d.mkdir()
    yield d
