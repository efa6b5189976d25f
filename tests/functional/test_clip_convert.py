"""ml/convert.export_clip: a CLIP checkpoint in, the directory MEDIAINDEX_CLIP_MODEL_PATH expects out,
loaded back through the real ClipEncoder. The checkpoint is the tiny random-weight CLIP of
test_ml (saved the way a hub snapshot is), read with local_files_only: nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mediaindex.ml.base import ModelLoadError
from mediaindex.ml.clip import ClipEncoder
from mediaindex.ml.convert import export_clip
from tests import mediagen
from tests.functional.test_ml import build_tiny_clip

pytestmark = pytest.mark.slow

TEXTS = ["a red square", "the quick brown fox"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("hub") / "tiny-clip", seed=3)


def test_the_exported_directory_embeds_as_the_checkpoint_does(checkpoint: Path, tmp_path: Path) -> None:
    # Given a CLIP checkpoint, When it is exported to a new directory
    dest = export_clip(checkpoint, tmp_path / "models" / "clip", local_files_only=True)
    # Then the directory has the config, the weights, the tokenizer and the image normalisation
    names = {p.name for p in dest.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "preprocessor_config.json"} <= names
    assert json.loads((dest / "preprocessor_config.json").read_text())["image_std"] == [0.25, 0.25, 0.25]
    # And ClipEncoder, loading it as MEDIAINDEX_CLIP_MODEL_PATH, embeds text and images as the source does
    exported, source = ClipEncoder(dest), ClipEncoder(checkpoint)
    assert exported.dim == 16
    np.testing.assert_allclose(exported.encode_text(TEXTS), source.encode_text(TEXTS), atol=1e-5)
    if mediagen.have_tools():
        image = mediagen.image(tmp_path / "photo.png", size="64x48")
        np.testing.assert_allclose(exported.encode_images([image]), source.encode_images([image]), atol=1e-5)
    # And nothing else was left beside it
    assert [p.name for p in dest.parent.iterdir()] == ["clip"]


def test_a_checkpoint_without_a_preprocessor_config_exports_without_one(
    checkpoint: Path, tmp_path: Path
) -> None:
    # Given a checkpoint with no preprocessor_config.json (ClipEncoder then uses OpenAI's mean and std)
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in checkpoint.iterdir():
        if f.name != "preprocessor_config.json":
            (bare / f.name).write_bytes(f.read_bytes())
    # When it is exported, Then the directory loads and has none either
    dest = export_clip(bare, tmp_path / "clip", local_files_only=True)
    assert not (dest / "preprocessor_config.json").exists()
    assert ClipEncoder(dest).encode_text(TEXTS).shape == (2, 16)


def test_an_existing_destination_is_left_alone(checkpoint: Path, tmp_path: Path) -> None:
    dest = tmp_path / "clip"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="already exists"):
        export_clip(checkpoint, dest, local_files_only=True)
    assert [p.name for p in dest.iterdir()] == ["mine.txt"]


def test_a_checkpoint_that_is_not_clip_is_refused(tmp_path: Path) -> None:
    # Given a checkpoint of another architecture
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    # Then it is refused by name, and no directory appears
    with pytest.raises(ModelLoadError, match=r"'bert' checkpoint, not CLIP"):
        export_clip(other, tmp_path / "out" / "clip", local_files_only=True)
    assert not (tmp_path / "out").exists()


def test_a_missing_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="cannot read a CLIP checkpoint"):
        export_clip(tmp_path / "nowhere", tmp_path / "clip", local_files_only=True)
    assert not (tmp_path / "clip").exists()
