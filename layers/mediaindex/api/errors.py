"""The one place where errors become HTTP: every failure answers
`{"error": {"code", "message", "request_id"}}`, never FastAPI's default `detail`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mediaindex.domain.errors import (
    ConflictError,
    ForbiddenError,
    MediaindexError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    SignatureError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)

log = logging.getLogger(__name__)

STATUS: dict[type[MediaindexError], int] = {
    ValidationError: 400,
    UnauthorizedError: 401,
    SignatureError: 403,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    PayloadTooLargeError: 413,
    RateLimitedError: 429,
    UnavailableError: 503,
}
HTTP_CODES = {
    404: "route_not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
# Validation failures that carry a contract code of their own (pydantic's PydanticCustomError
# type, raised by request models, and domain rules run by schemas.base.domain_check): the code.
CUSTOM_CODES = frozenset(
    {
        "parameter_invalid",
        "content_type_invalid",
        "index_name_invalid",
        "asset_name_invalid",
        "search_filter_too_large",
    }
)


class BodyRefused(StarletteHTTPException):
    """A request body refused while it is read (too large, too slow): raised from `receive` by
    api/middleware.py, through FastAPI's body parsing (which re-raises HTTP exceptions) or a
    route's own read, and answered with its code. The connection is closed after the answer, so
    the rest of the body is never read."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(status, message, headers={"Connection": "close"})
        self.code = code
        self.field = field


def request_id(request: Request) -> str:
    """The id the request-context middleware set; one of our own where it did not run (an app
    built from a router alone), so every error body can be quoted back to the logs."""
    rid: str | None = getattr(request.state, "request_id", None)
    if not rid:
        rid = request.state.request_id = f"req_{uuid.uuid4().hex}"
    return rid


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id(request)}
    if field:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def status_for(exc: MediaindexError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _field(loc: tuple[Any, ...]) -> str:
    # Only the first item names where the value came from: a body field may itself be called
    # `query` or `path`, and must keep its name.
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]
    return ".".join(str(p) for p in loc) or "body"


def from_pydantic(errors: Sequence[Any]) -> ValidationError:
    """The contract's validation error for pydantic's first complaint about a request: one mapping
    for FastAPI's request validation and for bodies a route parses itself."""
    # An unknown field is named first: most often it is a misspelt one, which is also why another
    # is missing (`{"query": ...}` for `query_text`).
    unknown = [e for e in errors if e.get("type") == "extra_forbidden"]
    first = (unknown or list(errors) or [{"loc": (), "msg": "invalid request", "type": ""}])[0]
    kind = first.get("type")
    if kind == "json_invalid":
        ctx = first.get("ctx")
        why = ctx.get("error") if isinstance(ctx, dict) else None
        return ValidationError(
            "the request body is not valid JSON" + (f": {why}" if why else ""), code="invalid_json"
        )
    field = _field(tuple(first.get("loc", ())))
    if kind in CUSTOM_CODES:
        return ValidationError(str(first.get("msg")), code=str(kind), field=field)
    if field == "cursor":  # too long, or not a string: not a cursor this service made
        return ValidationError("cursor is not valid", code="cursor_invalid", field=field)
    if kind == "extra_forbidden":
        return ValidationError(f"unknown field: {field}", code="parameter_unknown", field=field)
    if kind == "missing":
        return ValidationError(f"{field} is required", code="parameter_missing", field=field)
    return ValidationError(f"{field}: {first.get('msg')}", field=field)


def install(app: FastAPI) -> None:
    @app.exception_handler(MediaindexError)
    async def domain_error(request: Request, exc: MediaindexError) -> JSONResponse:
        status = status_for(exc)
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimitedError) else None
        if status >= 500:
            log.error("request failed", extra={"code": exc.code, "request_id": request_id(request)})
        return error_response(request, status, exc.code, exc.message, field=exc.field, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = from_pydantic(exc.errors())
        return error_response(request, 400, err.code, err.message, field=err.field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyRefused):
            return error_response(
                request,
                exc.status_code,
                exc.code,
                str(exc.detail),
                field=exc.field,
                headers=dict(exc.headers or {}),
            )
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = (
            str(exc.detail)
            if exc.status_code not in (404, 405)
            else f"no route for {request.method} {request.url.path}"
        )
        return error_response(request, exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"request_id": request_id(request)})
        return error_response(
            request, 500, "internal_error", "an internal error occurred; it has been logged"
        )
