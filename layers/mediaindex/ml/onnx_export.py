"""Exports the query encoder's models to ONNX, at image build time (containers/encoder/Dockerfile's
export stage, in the ml image's environment: torch, transformers and onnx), so that the encoder
Lambda runs them with onnxruntime and tokenizers alone: no torch, an image a tenth the size and a
cold start without torch's import.

    python -m mediaindex.ml.onnx_export text SRC DEST   # a sentence-transformers (mean-pooled) model
    python -m mediaindex.ml.onnx_export clip SRC DEST   # a transformers CLIPModel directory

DEST gets the graphs (text: model.onnx, the pooled sentence embedding; CLIP: text.onnx and
image.onnx, the projected features), the fast tokenizer (tokenizer.json), the configs the runtime
reads, and onnx.json: what the runtime needs (the graph inputs, pad id, max length) and the model
id the source directory has where the ml image loads it. Queries and segments must be embedded by
the same weights, and search compares the ids, so SRC must be the path the ml image's settings name
(/models/text, /models/clip): the id is derived from that path's name and files."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

from mediaindex.ml.base import ModelLoadError
from mediaindex.ml.clip import clip_model_id
from mediaindex.ml.onnx_models import OnnxMeta
from mediaindex.ml.text_encoder import model_id_for

OPSET = 17
_SAMPLE_TEXT = "a sample sentence to trace the graph"


def _tokenizer(src: Path, dest: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(src), use_fast=True, local_files_only=True)
    tokenizer.save_pretrained(str(dest))
    if not (dest / "tokenizer.json").is_file():
        raise ModelLoadError(f"{src}: no fast tokenizer to export (tokenizer.json)")
    return tokenizer


def _export(module: Any, args: tuple[Any, ...], path: Path, inputs: list[str], output: str) -> None:
    import torch

    axes = {name: {0: "batch", 1: "sequence"} for name in inputs if name != "pixel_values"}
    if "pixel_values" in inputs:
        axes["pixel_values"] = {0: "batch"}
    axes[output] = {0: "batch"}
    # Tracing warns that Python-level shape checks become constants: the tests compare the graphs'
    # vectors with the torch models' across batch sizes and lengths, which is what matters.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        torch.onnx.export(
            module, args, str(path), input_names=inputs, output_names=[output],
            dynamic_axes=axes, opset_version=OPSET, dynamo=False,
        )  # fmt: skip


def _features(out: Any) -> Any:
    # transformers 4 returns the projected tensor; 5 returns an output whose pooler_output it is.
    return getattr(out, "pooler_output", out)


def export_text(src: Path, dest: Path) -> OnnxMeta:
    """A sentence-transformers model of a transformer, mean pooling and normalisation (MiniLM)."""
    import torch
    from transformers import AutoModel

    pooling = _pooling_config(src)
    if not pooling.get("pooling_mode_mean_tokens", False):
        raise ModelLoadError(f"{src}: only mean-pooled sentence models are exported, not {pooling}")
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(src, dest)
    model = AutoModel.from_pretrained(str(src), local_files_only=True).eval()
    max_length = int(_json(src / "sentence_bert_config.json").get("max_seq_length") or 512)

    class Sentences(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    enc = tokenizer([_SAMPLE_TEXT, "two"], padding=True, return_tensors="pt")
    inputs = ["input_ids", "attention_mask", "token_type_ids"]
    _export(Sentences(), tuple(enc[name] for name in inputs), dest / "model.onnx", inputs, "embedding")
    meta = OnnxMeta(
        kind="text",
        model_id=model_id_for(src),
        dim=int(model.config.hidden_size),
        inputs=inputs,
        pad_id=int(tokenizer.pad_token_id or 0),
        max_length=max_length,
    )
    meta.write(dest)
    return meta


def export_clip(src: Path, dest: Path) -> OnnxMeta:
    """A CLIPModel's two towers, each to its projected (not yet normalised) features."""
    import torch
    from transformers import CLIPModel

    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(src, dest)
    for name in ("config.json", "preprocessor_config.json"):
        if (src / name).is_file():
            shutil.copyfile(src / name, dest / name)
    clip_cls: Any = CLIPModel  # its from_pretrained stubs misdescribe the signature
    model = clip_cls.from_pretrained(str(src), local_files_only=True).eval()

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return _features(self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))

    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: Any) -> Any:
            return _features(self.model.get_image_features(pixel_values=pixel_values))

    max_length = int(model.config.text_config.max_position_embeddings)
    enc = tokenizer(
        [_SAMPLE_TEXT, "two"], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    inputs = ["input_ids", "attention_mask"]
    _export(TextTower(), tuple(enc[name] for name in inputs), dest / "text.onnx", inputs, "features")
    size = int(model.config.vision_config.image_size)
    pixels = torch.zeros(1, 3, size, size)
    _export(ImageTower(), (pixels,), dest / "image.onnx", ["pixel_values"], "features")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    meta = OnnxMeta(
        kind="clip",
        model_id=clip_model_id(src),
        dim=int(model.config.projection_dim),
        inputs=inputs,
        pad_id=int(pad),
        max_length=max_length,
    )
    meta.write(dest)
    return meta


def _json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text()) if path.is_file() else {}
    return data if isinstance(data, dict) else {}


# The sentence-transformers modules the exported graph reproduces: the transformer, mean pooling
# (inside the graph) and normalisation (by the runtime). Any other (Dense, a second Pooling...)
# would change the vectors, so such a model is refused rather than exported wrong.
_EXPORTED_MODULES = ("Transformer", "Pooling", "Normalize")


def _pooling_config(src: Path) -> dict[str, Any]:
    """The sentence-transformers Pooling module's config (modules.json names its folder), once the
    model is checked to hold nothing the export would leave out."""
    modules = json.loads((src / "modules.json").read_text()) if (src / "modules.json").is_file() else []
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds.count("Transformer") != 1 or kinds.count("Pooling") != 1 or set(kinds) - set(_EXPORTED_MODULES):
        raise ModelLoadError(
            f"{src}: only a transformer, mean pooling and normalisation are exported, not {kinds}"
        )
    pooling = next(m for m, kind in zip(modules, kinds, strict=True) if kind == "Pooling")
    return _json(src / str(pooling.get("path", "")) / "config.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m mediaindex.ml.onnx_export", description=__doc__.split("\n")[0]
    )
    ap.add_argument("kind", choices=["text", "clip"])
    ap.add_argument("src", type=Path, help="the model directory, at the path the ml image loads it from")
    ap.add_argument("dest", type=Path)
    args = ap.parse_args(argv)
    meta = (export_text if args.kind == "text" else export_clip)(args.src, args.dest)
    print(f"exported {meta.kind} {meta.model_id} ({meta.dim}-d) to {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
