"""The query encoder's models as ONNX graphs, run with onnxruntime and tokenizers (no torch): what the
encoder Lambda image carries. `mediaindex.ml.onnx_export` writes the directories at build time from
the ml image's weights; the registry picks these classes for a directory holding onnx.json. Their
vectors equal the torch models' (tests/unit/test_onnx_models.py) and carry the same model id, so
queries embedded here match segments embedded by the GPU jobs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mediaindex.ml.base import ModelLoadError, l2_normalise
from mediaindex.ml.clip import ClipEncoder
from mediaindex.ml.text_encoder import TextEncoder

T = TypeVar("T")
META_FILE = "onnx.json"
META_VERSION = 1


@dataclass(frozen=True)
class OnnxMeta:
    """onnx.json: the exported model's kind, id, dimension and how its tokenizer is run."""

    kind: str  # "text" (model.onnx) or "clip" (text.onnx, image.onnx)
    model_id: str
    dim: int
    inputs: list[str] = field(default_factory=list)
    pad_id: int = 0
    max_length: int = 512
    version: int = META_VERSION

    def write(self, dest: Path) -> None:
        (dest / META_FILE).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def read(cls, path: Path, kind: str) -> OnnxMeta:
        try:
            data = json.loads((path / META_FILE).read_text())
            meta = cls(**data)
        except (OSError, ValueError, TypeError) as e:
            raise ModelLoadError(f"cannot read the ONNX export at {path}: {e}") from e
        if meta.version != META_VERSION or meta.kind != kind:
            raise ModelLoadError(f"{path} is not a {kind} ONNX export this release reads")
        return meta


def is_onnx_export(path: Path) -> bool:
    return (path / META_FILE).is_file()


def _session(path: Path) -> Any:
    import onnxruntime as ort

    if not path.is_file():
        raise ModelLoadError(f"no ONNX graph at {path}")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _tokenizer(path: Path, meta: OnnxMeta) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=meta.max_length)
    tokenizer.enable_padding(pad_id=meta.pad_id)
    return tokenizer


def _token_inputs(tokenizer: Any, texts: list[str], names: list[str]) -> dict[str, np.ndarray]:
    """The graph's inputs for `texts`: ids, attention mask and (BERT) token types, padded."""
    encodings = tokenizer.encode_batch(texts)
    columns = {
        "input_ids": [e.ids for e in encodings],
        "attention_mask": [e.attention_mask for e in encodings],
        "token_type_ids": [e.type_ids for e in encodings],
    }
    return {name: np.asarray(columns[name], dtype=np.int64) for name in names}


class _OnnxSentences:
    """A sentence model as TextEncoder drives one (SentenceTransformer's `encode`), over ONNX."""

    def __init__(self, path: Path, meta: OnnxMeta) -> None:
        self._meta = meta
        self._session = _session(path / "model.onnx")
        self._tokenizer = _tokenizer(path, meta)

    def encode(self, texts: list[str], *, batch_size: int = 32, **_: object) -> np.ndarray:
        out = [
            self._session.run(
                None, _token_inputs(self._tokenizer, texts[i : i + batch_size], self._meta.inputs)
            )[0]
            for i in range(0, len(texts), batch_size)
        ]
        return l2_normalise(np.concatenate(out).astype(np.float32))


class OnnxTextEncoder(TextEncoder):
    """The transcript text encoder from an ONNX export (mean pooling inside the graph)."""

    def __init__(self, model_path: Path) -> None:
        self.meta = OnnxMeta.read(model_path, "text")
        super().__init__(model_path, model_id=self.meta.model_id)

    def _load(self) -> Any:
        return _OnnxSentences(self.model_path, self.meta)


class OnnxClipEncoder(ClipEncoder):
    """CLIP's two towers from an ONNX export; images are prepared as ClipEncoder prepares them."""

    def __init__(self, model_path: Path) -> None:
        self.meta = OnnxMeta.read(model_path, "clip")
        super().__init__(model_path, model_id=self.meta.model_id)

    def _load(self) -> tuple[Any, Any]:
        sessions = {tower: _session(self.model_path / f"{tower}.onnx") for tower in ("text", "image")}
        return sessions, _tokenizer(self.model_path, self.meta)

    def encode_images(self, paths: list[Path], *, batch_size: int = 32) -> np.ndarray:
        return self._encode(
            paths,
            batch_size,
            lambda s, _t, batch: s["image"].run(None, {"pixel_values": self.preprocess(batch)})[0],
        )

    def encode_text(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        return self._encode(
            texts,
            batch_size,
            lambda s, t, batch: s["text"].run(None, _token_inputs(t, batch, self.meta.inputs))[0],
        )

    def _run(
        self, features: Callable[[Any, Any, list[T]], Any], model: Any, tokenizer: Any, batch: list[T]
    ) -> np.ndarray:
        """One batch's features as float32 rows (onnxruntime answers numpy already)."""
        return np.asarray(features(model, tokenizer, batch), dtype=np.float32)
