"""Saves a tiny CLIP (random weights, real transformers classes) as a model directory the images'
ClipEncoder loads: CLIPModel.save_pretrained plus a CLIP tokenizer over a byte-level vocabulary with
no merges. No package ships CLIP weights and the images' real ones are fetched at build time; this
runs the same code path (tokenizer, text and image towers, projections) at toy size.

Run with an artifact's interpreter (it needs transformers and torch): python tiny_clip.py DEST"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path


def byte_symbols() -> list[str]:
    """CLIP's (GPT-2's) byte-to-unicode table: one printable symbol per byte."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            symbols.append(256 + extra)
            extra += 1
    return [chr(c) for c in symbols]


def main(dest: Path) -> None:
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    chars = byte_symbols()
    tokens = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n")
        tokenizer = CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"))
        torch.manual_seed(0)
        config = CLIPConfig(
            text_config={
                "vocab_size": len(vocab),
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "max_position_embeddings": 77,
                "bos_token_id": vocab["<|startoftext|>"],
                "eos_token_id": vocab["<|endoftext|>"],
                "pad_token_id": vocab["<|endoftext|>"],
            },
            vision_config={
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "image_size": 32,
                "patch_size": 8,
            },
            projection_dim=16,
        )
        CLIPModel(config).save_pretrained(dest)
        tokenizer.save_pretrained(dest)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
