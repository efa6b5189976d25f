"""QueryEncoder on AWS: the API Lambda carries no models, so it asks the encoder Lambda (its
container image carries the weights) to embed the query; a text query's two vectors in one invoke.
The wire format is in encoder_wire."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from mediaindex.adapters.aws import encoder_wire as wire
from mediaindex.domain.errors import UnavailableError
from mediaindex.ports.query_encoder import ImageInput, QueryEncoder, Vec

T = TypeVar("T")


class _FunctionFailed(UnavailableError):
    """The encoder function ran and answered an error (what it does for a kind it does not know)."""


class LambdaQueryEncoder(QueryEncoder):
    def __init__(self, function_name: str, client: Any) -> None:
        self._function = function_name
        self._client = client

    def _call(self, payload: dict[str, Any], read: Callable[[Any], T]) -> T:
        try:
            resp = self._client.invoke(FunctionName=self._function, Payload=json.dumps(payload).encode())
        except (ClientError, BotoCoreError) as e:
            raise UnavailableError("the query encoder is unavailable", code="encoder_unavailable") from e
        if resp.get("FunctionError"):
            raise _FunctionFailed("the query encoder failed", code="encoder_unavailable")
        try:
            return read(json.loads(resp["Payload"].read() or b"null"))
        except (ValueError, KeyError, TypeError) as e:
            raise UnavailableError("the query encoder failed", code="encoder_unavailable") from e

    def _invoke(self, payload: dict[str, Any]) -> Vec | None:
        return self._call(payload, wire.read_answer)

    def text_vectors(self, text: str, *, visual: bool, transcript: bool) -> tuple[Vec | None, Vec | None]:
        kinds = [
            k for k, wanted in ((wire.VISUAL_TEXT, visual), (wire.TRANSCRIPT_TEXT, transcript)) if wanted
        ]
        if len(kinds) < 2:
            return super().text_vectors(text, visual=visual, transcript=transcript)
        try:
            got = self._call(wire.texts_request(text, kinds), lambda body: wire.read_answers(body, kinds))
        except _FunctionFailed:
            # An encoder of an earlier release (a deploy under way) refuses the kind: ask one by one,
            # which also answers 503 where the encoder itself is failing. An invoke that did not
            # reach it (throttled, unreachable) is not asked again here.
            return super().text_vectors(text, visual=visual, transcript=transcript)
        return got[wire.VISUAL_TEXT], got[wire.TRANSCRIPT_TEXT]

    def visual_text(self, text: str) -> Vec | None:
        return self._invoke(wire.text_request(wire.VISUAL_TEXT, text))

    def transcript_text(self, text: str) -> Vec | None:
        return self._invoke(wire.text_request(wire.TRANSCRIPT_TEXT, text))

    def visual_image(self, image: ImageInput) -> Vec | None:
        return self._invoke(wire.image_request(image))
