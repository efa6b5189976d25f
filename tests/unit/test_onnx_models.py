"""The encoder image's ONNX models against the torch models they are exported from: the same vectors
(MiniLM from its wheel; a toy CLIP through the real transformers classes) and the same model ids,
picked by the registry for an exported directory; and exports this release cannot read refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mediaindex.ml.base import ModelLoadError
from mediaindex.ml.clip import ClipEncoder
from mediaindex.ml.onnx_export import export_clip, export_text
from mediaindex.ml.onnx_models import META_FILE, OnnxClipEncoder, OnnxTextEncoder
from mediaindex.ml.registry import ModelRegistry
from mediaindex.ml.text_encoder import TextEncoder, default_model_path, model_id_for
from mediaindex.settings import Settings
from tests import mediagen
from tests.functional.test_ml import build_tiny_clip

pytestmark = pytest.mark.slow

TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "When does the ferry leave the harbour?",
    "",
    "naïve café — 12,500 km² ✓",
    " ".join(["long"] * 600),  # past both models' maximum length: truncated alike
]


@pytest.fixture(scope="module")
def text_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    # The source at a path of its own name, as the images name it (/models/text).
    root = tmp_path_factory.mktemp("text")
    src = root / "text"
    shutil.copytree(default_model_path(), src)
    export_text(src, root / "onnx")
    return src, root / "onnx"


@pytest.fixture(scope="module")
def clip_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("clip")
    src = build_tiny_clip(root / "clip")  # with its own preprocessor normalisation, copied over
    export_clip(src, root / "onnx")
    return src, root / "onnx"


def test_the_onnx_text_encoder_gives_the_torch_models_vectors_and_id(text_dirs: tuple[Path, Path]) -> None:
    src, exported = text_dirs
    torch_enc = TextEncoder(src, model_id=model_id_for(src))
    onnx_enc = OnnxTextEncoder(exported)
    want, got = torch_enc.encode(TEXTS), onnx_enc.encode(TEXTS, batch_size=2)
    assert got.shape == want.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(got * want, axis=1))) > 0.9999
    assert onnx_enc.model_id == torch_enc.model_id and onnx_enc.dim == 384
    assert onnx_enc.encode([]).shape[0] == 0


def test_the_onnx_clip_towers_give_the_torch_models_vectors_and_id(
    clip_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    src, exported = clip_dirs
    torch_clip, onnx_clip = ClipEncoder(src), OnnxClipEncoder(exported)
    pictures = [
        mediagen.image(tmp_path / "a.png", size="320x240"),
        mediagen.image(tmp_path / "b.png", size="200x400", color="red"),
    ]
    for want, got in [
        (torch_clip.encode_text(TEXTS), onnx_clip.encode_text(TEXTS, batch_size=2)),
        (torch_clip.encode_images(pictures), onnx_clip.encode_images(pictures, batch_size=1)),
    ]:
        assert got.shape == want.shape and got.shape[1] == 16
        assert float(np.min(np.sum(got * want, axis=1))) > 0.9999
    assert onnx_clip.model_id == torch_clip.model_id


def test_the_registry_runs_an_exported_directory_without_torch(
    text_dirs: tuple[Path, Path], clip_dirs: tuple[Path, Path]
) -> None:
    settings = Settings(text_model_path=text_dirs[1], clip_model_path=clip_dirs[1])
    registry = ModelRegistry(settings)
    assert isinstance(registry.text_encoder(), OnnxTextEncoder)
    assert isinstance(registry.clip(), OnnxClipEncoder)
    # The same settings in a process where torch, transformers and sentence-transformers cannot load.
    code = (
        "import sys\n"
        "for name in ('torch', 'transformers', 'sentence_transformers'):\n"
        "    sys.modules[name] = None\n"
        "from mediaindex.ml.query_encoder import ModelQueryEncoder\n"
        "from mediaindex.ml.registry import ModelRegistry\n"
        "from mediaindex.settings import Settings\n"
        f"s = Settings(text_model_path={str(text_dirs[1])!r}, clip_model_path={str(clip_dirs[1])!r})\n"
        "q = ModelQueryEncoder(ModelRegistry(s))\n"
        "print(len(q.transcript_text('ferry times')[1]), len(q.visual_text('a red car')[1]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": "layers", "PATH": "/usr/bin:/bin"}, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert out.stdout.split() == ["384", "16"]


def test_an_export_of_another_kind_or_version_is_refused(
    text_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    with pytest.raises(ModelLoadError, match="not a clip ONNX export"):
        OnnxClipEncoder(text_dirs[1])
    future = tmp_path / "future"
    shutil.copytree(text_dirs[1], future)
    meta = json.loads((future / META_FILE).read_text())
    (future / META_FILE).write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(ModelLoadError, match="not a text ONNX export this release reads"):
        OnnxTextEncoder(future)
    (future / META_FILE).write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot read the ONNX export"):
        OnnxTextEncoder(future)


def test_only_mean_pooled_sentence_models_are_exported(text_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    src = tmp_path / "cls"
    shutil.copytree(text_dirs[0], src)
    pooling = next(p for p in src.rglob("config.json") if p.parent.name.endswith("Pooling"))
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="only mean-pooled"):
        export_text(src, tmp_path / "out")


def test_a_model_with_modules_the_graph_would_leave_out_is_refused(
    text_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    # Given a sentence model with a Dense layer after the pooling (its vectors depend on it)
    src = tmp_path / "dense"
    shutil.copytree(text_dirs[0], src)
    modules = json.loads((src / "modules.json").read_text())
    modules.insert(
        -1, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    )
    (src / "modules.json").write_text(json.dumps(modules))
    # Then the export refuses it rather than write a graph without the layer
    with pytest.raises(ModelLoadError, match="only a transformer, mean pooling and normalisation"):
        export_text(src, tmp_path / "out")
    assert not (tmp_path / "out" / "model.onnx").exists()
