"""What the served OpenAPI document says beyond what FastAPI derives from the routes, so that it
tells a client what the server does (schemathesis and the /docs page read it):

- errors: request validation answers 400 with the one error body (not FastAPI's 422
  HTTPValidationError); a route that needs a key may answer 401 and 429, one with a body 413, one
  with an Idempotency-Key 409; each documented with ErrorBody and an example;
- security (declared by api/deps.authenticate): an operation that takes a key documents 401/429;
- descriptions of the domain models served as they are whose modules carry none (`DOMAIN_DOCS`;
  a description written on the model itself wins)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

# status -> (description, an example's code and message)
ERRORS: dict[str, tuple[str, str, str]] = {
    "400": (
        "Invalid request: a parameter or body field is wrong (`field` names it)",
        "parameter_unknown",
        "unknown field: query",
    ),
    "401": (
        "Missing or unknown API key",
        "unauthorized",
        "missing API key: send Authorization: Bearer <key> or x-api-key",
    ),
    "403": (
        "The key is valid but may not do this: its scope (`scope_insufficient`) or a quota "
        "(`quota_exceeded`, `field` names it)",
        "scope_insufficient",
        "this API key's scope (read_only) does not allow POST /v1/assets",
    ),
    "404": (
        "Not found (or another tenant's)",
        "asset_not_found",
        "asset ast_01j9zq4m3v8c2k7r5t6w0y1x2a not found",
    ),
    "409": (
        "Conflict: the resource's state refuses this, or an Idempotency-Key was reused",
        "idempotency_key_reused",
        "this Idempotency-Key was used with another request",
    ),
    "413": (
        "The request body is over this operation's limit",
        "payload_too_large",
        "the request body is over the 1048576 byte limit of this operation",
    ),
    "429": (
        "Too many requests for this key: retry after `Retry-After` seconds",
        "rate_limited",
        "too many requests for this API key",
    ),
}
_ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}

# Domain models served as they are, by schema name: field -> description.
DOMAIN_DOCS: dict[str, dict[str, str]] = {
    "Transcript": {
        "language": "The spoken language Whisper detected (ISO 639-1), or null.",
        "duration": "Seconds of audio transcribed.",
        "model_id": "The transcription model that wrote it.",
        "segments": "What was said, in order, one segment per phrase.",
    },
    "TranscriptSegment": {
        "id": "The segment's position in the transcript, from 0.",
        "start": "Seconds from the start of the media.",
        "end": "Seconds from the start of the media.",
        "text": "What was said.",
        "words": "Each word with its own times (empty when the model gave none).",
    },
    "Word": {
        "start": "Seconds from the start of the media.",
        "end": "Seconds from the start of the media.",
        "word": "The word as spoken, with its leading space.",
        "probability": "The model's confidence in the word, 0 to 1, or null.",
    },
}


def _error(status: str) -> dict[str, Any]:
    description, code, message = ERRORS[status]
    example = {"error": {"code": code, "message": message, "request_id": "req_3f2a9c0d1e"}}
    content = {"application/json": {"schema": _ERROR_BODY, "example": example}}
    return {"description": description, "content": content}


def _document_operation(op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    statuses = set()
    if responses.pop("422", None) is not None or op.get("requestBody"):
        statuses.add("400")
    if any(p.get("name") == "Idempotency-Key" for p in op.get("parameters", [])):
        statuses.add("409")
    if op.get("requestBody"):
        statuses.add("413")
    if op.get("security"):
        statuses |= {"401", "403", "429"}
    for status in statuses:
        responses.setdefault(status, {})
    # Every failure answers ErrorBody: one description and example per status, the routes' own
    # `responses={404: {"model": ErrorBody}}` included.
    for status in responses:
        if status in ERRORS:
            responses[status] = _error(status)


def _describe_domain_models(schemas: dict[str, Any]) -> None:
    for name, fields in DOMAIN_DOCS.items():
        props = schemas.get(name, {}).get("properties", {})
        for field, text in fields.items():
            if field in props:
                props[field].setdefault("description", text)


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        separate_input_output_schemas=app.separate_input_output_schemas,
    )
    for item in doc.get("paths", {}).values():
        for op in item.values():
            if isinstance(op, dict):
                _document_operation(op)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    _describe_domain_models(schemas)
    return doc


def install(app: FastAPI) -> None:
    """Serves `build(app)` as the app's document, built once."""

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
