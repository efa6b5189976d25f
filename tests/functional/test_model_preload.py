"""A serving runtime loads the pipeline's models in the background at start, so the first asset does
not wait for them; a model that cannot load is logged and does not stop the others."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from mediaindex.bootstrap.local import build_local
from mediaindex.bootstrap.pipeline import preload_models
from mediaindex.ml.registry import ModelRegistry, build_transcriber
from mediaindex.ml.text_encoder import DEFAULT_MODEL_ID, TextEncoder
from mediaindex.ml.text_encoder import default_model_path as default_text_path
from mediaindex.settings import Settings
from tests.functional.conftest import make_settings


def test_preload_loads_every_model_of_the_pipeline(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    transcriber = build_transcriber(settings)
    encoder = TextEncoder(default_text_path(), model_id=DEFAULT_MODEL_ID)
    models = ModelRegistry(settings, transcriber=transcriber, text_encoder=encoder, clip=None)
    assert not transcriber.loaded and not encoder.loaded
    preload_models(models).join(timeout=120)
    assert transcriber.loaded and encoder.loaded


def test_a_model_that_cannot_load_is_logged_and_the_others_still_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The transcriber is the one that fails here: its directory holds no model.
    settings = Settings(data_dir=tmp_path, whisper_model_path=tmp_path / "no-whisper")
    encoder = TextEncoder(default_text_path(), model_id=DEFAULT_MODEL_ID)
    models = ModelRegistry(settings, text_encoder=encoder, clip=None)
    with caplog.at_level(logging.WARNING, logger="mediaindex.bootstrap.pipeline"):
        preload_models(models).join(timeout=120)
    assert [(r.getMessage(), r.__dict__.get("model")) for r in caplog.records] == [
        ("preloading a model failed", "transcriber")
    ]
    assert encoder.loaded


def _preloading() -> bool:
    return any(t.name == "mi-model-preload" for t in threading.enumerate())


def test_only_a_runtime_that_starts_its_workers_preloads(tmp_path: Path) -> None:
    idle = build_local(make_settings(tmp_path / "idle"))
    try:
        assert not _preloading()
    finally:
        idle.close()
    serving = build_local(make_settings(tmp_path / "serving", start_workers=True))
    try:
        assert _preloading()
    finally:
        for t in threading.enumerate():
            if t.name == "mi-model-preload":
                t.join(timeout=120)
        serving.close()
