"""The encoder Lambda (container image built from containers/ml): embeds search queries with the
same models the pipeline used, so query and segment vectors share a space. Models load once per
warm container."""

from __future__ import annotations

import base64
from typing import Any

from mediaindex.ml.registry import ModelRegistry
from mediaindex.services.search import RegistryQueryEncoders
from mediaindex.settings import Settings

_encoders: RegistryQueryEncoders | None = None


def encoders() -> RegistryQueryEncoders:
    global _encoders
    if _encoders is None:
        _encoders = RegistryQueryEncoders(ModelRegistry(Settings()))
    return _encoders


def answer(event: dict[str, Any], enc: Any) -> dict[str, Any]:
    kind = event.get("kind")
    if kind == "visual_text":
        vec = enc.visual_text(str(event["text"]))
    elif kind == "transcript_text":
        vec = enc.transcript_text(str(event["text"]))
    elif kind == "visual_image":
        vec = enc.visual_image(base64.b64decode(event["image_b64"]))
    else:
        raise ValueError(f"unknown encoder request kind {kind!r}")
    return {"model_id": vec[0], "vector": vec[1]} if vec else {"model_id": None}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return answer(event, encoders())
