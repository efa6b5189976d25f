"""The API's query encoder on AWS talks to the encoder Lambda (functions/query_encoder); both ends
share one wire format (adapters.aws.encoder_wire)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.query_encoder import handler as encoder_function
from mediaindex.adapters.aws.encoder_wire import answer
from mediaindex.adapters.aws.lambda_encoder import LambdaQueryEncoder
from mediaindex.domain.errors import UnavailableError
from mediaindex.ports.query_encoder import ImageInput, QueryEncoder


class FixedEncoders(QueryEncoder):
    """Deterministic stand-in for the models' encoder."""

    def visual_text(self, text: str) -> tuple[str, list[float]] | None:
        return None  # no CLIP configured

    def transcript_text(self, text: str) -> tuple[str, list[float]] | None:
        return "minilm", [float(len(text)), 0.0]

    def visual_image(self, image: ImageInput) -> tuple[str, list[float]] | None:
        assert isinstance(image, bytes)
        return "clip", [float(len(image))]


class InProcessLambda:
    """A Lambda client whose function is the encoder Lambda's handler over FixedEncoders, in-process."""

    def __init__(self, fail: bool = False, refuse: tuple[str, ...] = ()) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        self.refuse = refuse  # request kinds it does not know (an encoder of an earlier release)

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        event = json.loads(Payload)
        self.calls.append({"function": FunctionName, **event})
        if self.fail or event["kind"] in self.refuse:
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorMessage": "boom"}')}
        encoder_function.configure(FixedEncoders())
        return {"Payload": io.BytesIO(json.dumps(encoder_function.handler(event, None)).encode())}


def test_text_and_image_queries_round_trip() -> None:
    client = InProcessLambda()
    enc = LambdaQueryEncoder("encoder-fn", client)
    assert enc.transcript_text("ferry") == ("minilm", [5.0, 0.0])
    assert enc.visual_text("ferry") is None
    assert enc.visual_image(b"\x89PNG....") == ("clip", [8.0])
    assert [c["kind"] for c in client.calls] == ["transcript_text", "visual_text", "visual_image"]
    assert {c["function"] for c in client.calls} == {"encoder-fn"}


def test_an_encoder_failure_is_503_not_a_crash() -> None:
    with pytest.raises(UnavailableError) as e:
        LambdaQueryEncoder("encoder-fn", InProcessLambda(fail=True)).transcript_text("x")
    assert e.value.code == "encoder_unavailable"


def test_unknown_request_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        answer({"kind": "audio"}, FixedEncoders())


def test_a_text_query_gets_both_vectors_in_one_invoke() -> None:
    client = InProcessLambda()
    enc = LambdaQueryEncoder("encoder-fn", client)
    # Both modalities: one request of kind "texts", both answers read back (no CLIP: None)
    assert enc.text_vectors("ferry", visual=True, transcript=True) == (None, ("minilm", [5.0, 0.0]))
    assert [(c["kind"], c.get("kinds")) for c in client.calls] == [
        ("texts", ["visual_text", "transcript_text"])
    ]
    # One modality: the single request, as before
    client.calls.clear()
    assert enc.text_vectors("ferry", visual=False, transcript=True) == (None, ("minilm", [5.0, 0.0]))
    assert [c["kind"] for c in client.calls] == ["transcript_text"]


def test_an_encoder_of_an_earlier_release_is_asked_one_vector_at_a_time() -> None:
    client = InProcessLambda(refuse=("texts",))
    enc = LambdaQueryEncoder("encoder-fn", client)
    assert enc.text_vectors("ferry", visual=True, transcript=True) == (None, ("minilm", [5.0, 0.0]))
    assert [c["kind"] for c in client.calls] == ["texts", "visual_text", "transcript_text"]


def test_a_failing_encoder_still_answers_503_for_both_vectors() -> None:
    with pytest.raises(UnavailableError) as e:
        LambdaQueryEncoder("encoder-fn", InProcessLambda(fail=True)).text_vectors(
            "x", visual=True, transcript=True
        )
    assert e.value.code == "encoder_unavailable"


def test_an_encoder_out_of_reach_is_not_asked_again_one_vector_at_a_time() -> None:
    class Throttled:
        calls = 0

        def invoke(self, **_: Any) -> dict[str, Any]:
            Throttled.calls += 1
            raise ClientError(
                {"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}}, "Invoke"
            )

    with pytest.raises(UnavailableError) as e:
        LambdaQueryEncoder("encoder-fn", Throttled()).text_vectors("x", visual=True, transcript=True)
    assert e.value.code == "encoder_unavailable" and Throttled.calls == 1


@pytest.mark.parametrize(
    "kinds", [None, [], ["visual_image"], ["transcript_text", "audio"], "transcript_text"]
)
def test_a_texts_request_names_text_kinds_only(kinds: object) -> None:
    with pytest.raises(ValueError, match="texts request"):
        answer({"kind": "texts", "text": "x", "kinds": kinds}, FixedEncoders())
