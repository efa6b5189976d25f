"""Query-encoder Lambda (a container image built from containers/ml, weights baked in): embeds
search queries with the same models the pipeline used, so query and segment vectors share a space.
The request/answer format is mediaindex.adapters.aws.encoder_wire's. Models load once per warm
container, on the first request."""

from __future__ import annotations

from typing import Any

from mediaindex.adapters.aws import encoder_wire
from mediaindex.ports.query_encoder import QueryEncoder

_state: dict[str, QueryEncoder] = {}


def configure(encoder: QueryEncoder | None = None) -> QueryEncoder:
    """Sets the encoder to use; the first invoke builds it over the models the settings name."""
    if encoder is None:
        from mediaindex.bootstrap.aws import lambda_settings
        from mediaindex.ml.query_encoder import ModelQueryEncoder
        from mediaindex.ml.registry import ModelRegistry

        encoder = ModelQueryEncoder(ModelRegistry(lambda_settings()))
    _state["encoder"] = encoder
    return encoder


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    encoder = _state.get("encoder") or configure()
    return encoder_wire.answer(event, encoder)
