"""CLIP image and text towers in one vector space, for visual search.

No package ships CLIP weights, so the model is a configured directory saved with transformers
`save_pretrained` (CLIPModel plus its tokenizer, optionally preprocessor_config.json). Images are
decoded, resized (shortest edge, bicubic) and centre-cropped by ffmpeg through the media runner
(`media.ffmpeg.decode_rgb_frames`), so neither Pillow nor torchvision is required."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mediaindex.media import ffmpeg
from mediaindex.ml.base import (
    InferenceModel,
    ModelLoadError,
    dir_fingerprint,
    hub_offline,
    l2_normalise,
    torch_device,
)

T = TypeVar("T")

# OpenAI CLIP's normalisation, used when the directory has no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_model_id(model_path: Path) -> str:
    """The id of the CLIP weights at `model_path` (its name and files): queries and segments compare it."""
    return f"clip:{model_path.name}-{dir_fingerprint(model_path)}"


def load_rgb(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8: the image scaled so its shorter edge is `size`, centre-cropped."""
    return load_rgbs([path], size)[0]


def load_rgbs(paths: Sequence[Path], size: int) -> np.ndarray:
    """(n, size, size, 3) uint8: load_rgb of each path, the JPEGs decoded in one ffmpeg run."""
    frames = ffmpeg.decode_rgb_frames(paths, size)
    return np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), size, size, 3)


class ClipEncoder(InferenceModel[tuple[Any, Any]]):
    """load() once, encode_*() after; load() returns (model, tokenizer). `session` injects a
    CLIPModel-like object (with get_image_features / get_text_features), `tokenizer` its tokenizer;
    whichever is not given is loaded from the directory. `model_id` defaults to `clip_model_id`."""

    def __init__(
        self,
        model_path: Path,
        *,
        session: Any | None = None,
        tokenizer: Any | None = None,
        model_id: str | None = None,
    ) -> None:
        super().__init__(
            model_path,
            model_id=model_id or clip_model_id(model_path),
            session=(session, tokenizer) if session is not None and tokenizer is not None else None,
        )
        self._given_model, self._given_tokenizer = session, tokenizer
        config_file = self.require_file(
            "config.json", "CLIP model", ": expected a transformers save_pretrained directory"
        )
        config = json.loads(config_file.read_text())
        self._dim = int(config.get("projection_dim") or 512)
        self._image_size = int((config.get("vision_config") or {}).get("image_size") or 224)
        self._max_text_len = int((config.get("text_config") or {}).get("max_position_embeddings") or 77)
        self._mean, self._std = self._normalisation(model_path)
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
    def dim(self) -> int:
        return self._dim

    def _load(self) -> tuple[Any, Any]:
        hub_offline()
        from transformers import AutoTokenizer, CLIPModel

        model, tokenizer = self._given_model, self._given_tokenizer
        try:
            if tokenizer is None:
                tokenizer = AutoTokenizer.from_pretrained(str(self.model_path), local_files_only=True)
            if model is None:
                self._device = torch_device()
                clip_cls: Any = CLIPModel  # its from_pretrained stubs misdescribe the signature
                model = clip_cls.from_pretrained(str(self.model_path), local_files_only=True)
                model = model.to(self._device).eval()
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"cannot load CLIP from {self.model_path}: {e}") from e
        return model, tokenizer

    def preprocess(self, paths: list[Path]) -> np.ndarray:
        """(n, 3, size, size) float32, normalised as the model was trained."""
        batch = load_rgbs(paths, self._image_size).astype(np.float32) / 255.0
        batch = (batch - self._mean) / self._std
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)

    def encode_images(self, paths: list[Path], *, batch_size: int = 32) -> np.ndarray:
        def features(model: Any, _tokenizer: Any, batch: list[Path]) -> Any:
            import torch

            pixels = torch.from_numpy(self.preprocess(batch)).to(self._device)
            return model.get_image_features(pixel_values=pixels)

        return self._encode(paths, batch_size, features)

    def encode_text(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        def features(model: Any, tokenizer: Any, batch: list[str]) -> Any:
            enc = tokenizer(
                list(batch), padding=True, truncation=True, max_length=self._max_text_len, return_tensors="pt"
            )
            return model.get_text_features(
                input_ids=enc["input_ids"].to(self._device),
                attention_mask=enc["attention_mask"].to(self._device),
            )

        return self._encode(texts, batch_size, features)

    def _encode(
        self, items: Sequence[T], batch_size: int, features: Callable[[Any, Any, list[T]], Any]
    ) -> np.ndarray:
        """Unit vectors of `items`, `batch_size` at a time through `features(model, tokenizer, batch)`."""
        if not items:
            return np.zeros((0, self._dim), dtype=np.float32)
        model, tokenizer = self.load()
        out = [
            self._run(features, model, tokenizer, list(items[i : i + batch_size]))
            for i in range(0, len(items), batch_size)
        ]
        return l2_normalise(np.concatenate(out))

    def _run(
        self, features: Callable[[Any, Any, list[T]], Any], model: Any, tokenizer: Any, batch: list[T]
    ) -> np.ndarray:
        """One batch's features as float32 rows (torch, without autograd)."""
        import torch

        with torch.inference_mode():
            return _features_to_numpy(features(model, tokenizer, batch))


def _features_to_numpy(feats: Any) -> np.ndarray:
    # transformers 4 returns the projected tensor; 5 returns an output whose pooler_output it is.
    tensor = getattr(feats, "pooler_output", feats)
    return np.asarray(tensor.detach().float().cpu().numpy(), dtype=np.float32)
