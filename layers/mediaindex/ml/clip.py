"""CLIP image and text towers in one vector space, for visual search.

No package ships CLIP weights, so the model is a configured directory saved with transformers
`save_pretrained` (CLIPModel plus its tokenizer, optionally preprocessor_config.json). Images are
decoded, resized (shortest edge, bicubic) and centre-cropped by ffmpeg, which the pipeline needs
anyway, so neither Pillow nor torchvision is required."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import numpy as np

from mediaindex.errors import MediaError
from mediaindex.ml.fingerprint import ModelLoadError, dir_fingerprint
from mediaindex.ml.text_encoder import torch_device

# OpenAI CLIP's normalisation, used when the directory has no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _l2_normalise(vecs: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)


def load_rgb(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8: the image scaled so its shorter edge is `size`, centre-cropped."""
    vf = (
        f"scale={size}:{size}:force_original_aspect_ratio=increase:flags=bicubic,"
        f"crop={size}:{size},format=rgb24"
    )
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path), "-frames:v", "1", "-vf", vf]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    expected = size * size * 3
    if proc.returncode != 0 or len(proc.stdout) < expected:
        err = proc.stderr.decode(errors="replace").strip()[-300:]
        raise MediaError(f"cannot decode image {path.name}: {err or 'no frame'}")
    return np.frombuffer(proc.stdout[:expected], dtype=np.uint8).reshape(size, size, 3)


class ClipEncoder:
    """load() once under a lock, encode_*() after. `session` injects a CLIPModel-like object
    (with get_image_features / get_text_features) together with `tokenizer`."""

    def __init__(self, model_path: Path, *, session: Any | None = None, tokenizer: Any | None = None) -> None:
        self.model_path = model_path
        self._session = session
        self._tokenizer = tokenizer
        self._lock = threading.Lock()
        config_file = model_path / "config.json"
        if not config_file.is_file():
            raise ModelLoadError(
                f"no CLIP model at {model_path}: expected a transformers save_pretrained directory"
            )
        config = json.loads(config_file.read_text())
        self._dim = int(config.get("projection_dim") or 512)
        self._image_size = int((config.get("vision_config") or {}).get("image_size") or 224)
        self._max_text_len = int((config.get("text_config") or {}).get("max_position_embeddings") or 77)
        self._mean, self._std = self._normalisation(model_path)
        self._model_id = f"clip:{model_path.name}-{dir_fingerprint(model_path)}"
        self._device = "cpu"

    @staticmethod
    def _normalisation(model_path: Path) -> tuple[np.ndarray, np.ndarray]:
        mean, std = CLIP_MEAN, CLIP_STD
        pre = model_path / "preprocessor_config.json"
        if pre.is_file():
            data = json.loads(pre.read_text())
            data = data.get("image_processor", data)
            mean = tuple(data.get("image_mean") or mean)
            std = tuple(data.get("image_std") or std)
        return np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None or self._tokenizer is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from transformers import AutoTokenizer, CLIPModel

                try:
                    if self._tokenizer is None:
                        self._tokenizer = AutoTokenizer.from_pretrained(
                            str(self.model_path), local_files_only=True
                        )
                    if self._session is None:
                        self._device = torch_device()
                        clip_cls: Any = CLIPModel  # its from_pretrained stubs misdescribe the signature
                        model = clip_cls.from_pretrained(str(self.model_path), local_files_only=True)
                        self._session = model.to(self._device).eval()
                except (OSError, ValueError) as e:
                    raise ModelLoadError(f"cannot load CLIP from {self.model_path}: {e}") from e
            return self._session, self._tokenizer

    def preprocess(self, paths: list[Path]) -> np.ndarray:
        """(n, 3, size, size) float32, normalised as the model was trained."""
        batch = np.stack([load_rgb(p, self._image_size) for p in paths]).astype(np.float32) / 255.0
        batch = (batch - self._mean) / self._std
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)

    def encode_images(self, paths: list[Path], *, batch_size: int = 32) -> np.ndarray:
        if not paths:
            return np.zeros((0, self._dim), dtype=np.float32)
        import torch

        model, _ = self.load()
        out: list[np.ndarray] = []
        for i in range(0, len(paths), batch_size):
            pixels = torch.from_numpy(self.preprocess(paths[i : i + batch_size])).to(self._device)
            with torch.inference_mode():
                feats = model.get_image_features(pixel_values=pixels)
            out.append(_features_to_numpy(feats))
        return _l2_normalise(np.concatenate(out))

    def encode_text(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        import torch

        model, tokenizer = self.load()
        out: list[np.ndarray] = []
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(
                list(texts[i : i + batch_size]),
                padding=True,
                truncation=True,
                max_length=self._max_text_len,
                return_tensors="pt",
            )
            with torch.inference_mode():
                feats = model.get_text_features(
                    input_ids=enc["input_ids"].to(self._device),
                    attention_mask=enc["attention_mask"].to(self._device),
                )
            out.append(_features_to_numpy(feats))
        return _l2_normalise(np.concatenate(out))


def _features_to_numpy(feats: Any) -> np.ndarray:
    # transformers 4 returns the projected tensor; 5 returns an output whose pooler_output it is.
    tensor = getattr(feats, "pooler_output", feats)
    return np.asarray(tensor.detach().float().cpu().numpy(), dtype=np.float32)
