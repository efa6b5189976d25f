"""The encoder Lambda's request and answer, written once for both ends: the API side
(LambdaQueryEncoder) builds requests and reads answers; the function (functions/query_encoder)
answers requests with an in-process QueryEncoder."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from mediaindex.ports.query_encoder import ImageInput, QueryEncoder, Vec

VISUAL_TEXT = "visual_text"
TRANSCRIPT_TEXT = "transcript_text"
VISUAL_IMAGE = "visual_image"
# Both text vectors of one query in one request (encoders of earlier releases refuse this kind).
TEXTS = "texts"
_TEXT_KINDS = (VISUAL_TEXT, TRANSCRIPT_TEXT)


def text_request(kind: str, text: str) -> dict[str, Any]:
    return {"kind": kind, "text": text}


def texts_request(text: str, kinds: list[str]) -> dict[str, Any]:
    return {"kind": TEXTS, "text": text, "kinds": kinds}


def image_request(image: ImageInput) -> dict[str, Any]:
    data = image.read_bytes() if isinstance(image, Path) else image
    return {"kind": VISUAL_IMAGE, "image_b64": base64.b64encode(data).decode()}


def answer(request: dict[str, Any], encoder: QueryEncoder) -> dict[str, Any]:
    """What the function returns for `request`. ValueError for an unknown kind."""
    kind = request.get("kind")
    if kind == TEXTS:
        kinds = request.get("kinds")
        if not isinstance(kinds, list) or not kinds or any(k not in _TEXT_KINDS for k in kinds):
            raise ValueError(f"a texts request names kinds among {_TEXT_KINDS}, not {kinds!r}")
        return {"answers": {k: answer({"kind": k, "text": request["text"]}, encoder) for k in kinds}}
    if kind == VISUAL_TEXT:
        vec = encoder.visual_text(str(request["text"]))
    elif kind == TRANSCRIPT_TEXT:
        vec = encoder.transcript_text(str(request["text"]))
    elif kind == VISUAL_IMAGE:
        vec = encoder.visual_image(base64.b64decode(request["image_b64"]))
    else:
        raise ValueError(f"unknown encoder request kind {kind!r}")
    return {"model_id": vec[0], "vector": vec[1]} if vec else {"model_id": None}


def read_answers(body: Any, kinds: list[str]) -> dict[str, Vec | None]:
    """The vectors of a texts answer by kind. ValueError when malformed or one is missing."""
    answers = body.get("answers") if isinstance(body, dict) else None
    if not isinstance(answers, dict):
        raise ValueError("the encoder answered a texts request without answers")
    return {k: read_answer(answers[k]) for k in kinds}


def read_answer(body: Any) -> Vec | None:
    """The vector of an answer, None when the model is not available. ValueError when malformed."""
    if not isinstance(body, dict):
        raise ValueError("the encoder answered something other than an object")
    if body.get("model_id") is None:
        return None
    return str(body["model_id"]), [float(x) for x in body["vector"]]
