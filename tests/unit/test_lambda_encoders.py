"""The API's query encoders on AWS talk to the encoder Lambda; both ends share one event shape."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from mediaindex.adapters.aws.lambda_encoders import LambdaQueryEncoders
from mediaindex.errors import UnavailableError
from mediaindex.ml.lambda_encoder import answer


class FixedEncoders:
    """Deterministic stand-in for the model registry's encoders."""

    def visual_text(self, text: str) -> tuple[str, list[float]] | None:
        return None  # no CLIP configured

    def transcript_text(self, text: str) -> tuple[str, list[float]] | None:
        return "minilm", [float(len(text)), 0.0]

    def visual_image(self, image: bytes) -> tuple[str, list[float]] | None:
        return "clip", [float(len(image))]


class InProcessLambda:
    """A Lambda client whose function is `answer` over FixedEncoders, run in-process."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        event = json.loads(Payload)
        self.calls.append({"function": FunctionName, **event})
        if self.fail:
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorMessage": "boom"}')}
        return {"Payload": io.BytesIO(json.dumps(answer(event, FixedEncoders())).encode())}


def test_text_and_image_queries_round_trip() -> None:
    client = InProcessLambda()
    enc = LambdaQueryEncoders("encoder-fn", client)
    assert enc.transcript_text("ferry") == ("minilm", [5.0, 0.0])
    assert enc.visual_text("ferry") is None
    assert enc.visual_image(b"\x89PNG....") == ("clip", [8.0])
    assert [c["kind"] for c in client.calls] == ["transcript_text", "visual_text", "visual_image"]
    assert {c["function"] for c in client.calls} == {"encoder-fn"}


def test_an_encoder_failure_is_503_not_a_crash() -> None:
    with pytest.raises(UnavailableError) as e:
        LambdaQueryEncoders("encoder-fn", InProcessLambda(fail=True)).transcript_text("x")
    assert e.value.code == "encoder_unavailable"


def test_unknown_request_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        answer({"kind": "audio"}, FixedEncoders())
