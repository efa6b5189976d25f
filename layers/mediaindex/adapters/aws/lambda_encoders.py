"""Query encoders on AWS: the API Lambda carries no models, so it asks the encoder Lambda (the ML
container image, weights baked in) to embed the query. The event shapes are shared with
mediaindex.ml.lambda_encoder, which answers them."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mediaindex.errors import UnavailableError

Vec = tuple[str, list[float]]


class LambdaQueryEncoders:
    def __init__(self, function_name: str, client: Any) -> None:
        self._function = function_name
        self._client = client

    def _invoke(self, payload: dict[str, Any]) -> Vec | None:
        try:
            resp = self._client.invoke(FunctionName=self._function, Payload=json.dumps(payload).encode())
        except (ClientError, BotoCoreError) as e:
            raise UnavailableError("the query encoder is unavailable", code="encoder_unavailable") from e
        body = json.loads(resp["Payload"].read() or b"null")
        if resp.get("FunctionError") or not isinstance(body, dict):
            raise UnavailableError("the query encoder failed", code="encoder_unavailable")
        if body.get("model_id") is None:
            return None
        return str(body["model_id"]), [float(x) for x in body["vector"]]

    def visual_text(self, text: str) -> Vec | None:
        return self._invoke({"kind": "visual_text", "text": text})

    def transcript_text(self, text: str) -> Vec | None:
        return self._invoke({"kind": "transcript_text", "text": text})

    def visual_image(self, image: bytes | Path) -> Vec | None:
        data = image.read_bytes() if isinstance(image, Path) else image
        return self._invoke({"kind": "visual_image", "image_b64": base64.b64encode(data).decode()})
