"""QueryEncoder on AWS: the API Lambda carries no models, so it asks the encoder Lambda (the ML
container image, weights baked in) to embed the query. The wire format is in encoder_wire."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mediaindex.adapters.aws import encoder_wire as wire
from mediaindex.domain.errors import UnavailableError
from mediaindex.ports.query_encoder import ImageInput, QueryEncoder, Vec


class LambdaQueryEncoder(QueryEncoder):
    def __init__(self, function_name: str, client: Any) -> None:
        self._function = function_name
        self._client = client

    def _invoke(self, payload: dict[str, Any]) -> Vec | None:
        try:
            resp = self._client.invoke(FunctionName=self._function, Payload=json.dumps(payload).encode())
        except (ClientError, BotoCoreError) as e:
            raise UnavailableError("the query encoder is unavailable", code="encoder_unavailable") from e
        if resp.get("FunctionError"):
            raise UnavailableError("the query encoder failed", code="encoder_unavailable")
        try:
            return wire.read_answer(json.loads(resp["Payload"].read() or b"null"))
        except (ValueError, KeyError, TypeError) as e:
            raise UnavailableError("the query encoder failed", code="encoder_unavailable") from e

    def visual_text(self, text: str) -> Vec | None:
        return self._invoke(wire.text_request(wire.VISUAL_TEXT, text))

    def transcript_text(self, text: str) -> Vec | None:
        return self._invoke(wire.text_request(wire.TRANSCRIPT_TEXT, text))

    def visual_image(self, image: ImageInput) -> Vec | None:
        return self._invoke(wire.image_request(image))
