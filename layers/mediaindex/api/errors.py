"""The one place where errors become HTTP: every failure answers
`{"error": {"code", "message", "request_id"}}`, never FastAPI's default `detail`."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mediaindex.errors import (
    ConflictError,
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
    NotFoundError: 404,
    ConflictError: 409,
    PayloadTooLargeError: 413,
    RateLimitedError: 429,
    UnavailableError: 503,
}
HTTP_CODES = {
    404: "route_not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


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
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


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
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            return error_response(request, 400, "invalid_json", "the request body is not valid JSON")
        field = _field(tuple(first.get("loc", ())))
        if first.get("type") == "extra_forbidden":
            return error_response(request, 400, "parameter_unknown", f"unknown field: {field}", field=field)
        if first.get("type") == "missing":
            return error_response(request, 400, "parameter_missing", f"{field} is required", field=field)
        return error_response(request, 400, "parameter_invalid", f"{field}: {first.get('msg')}", field=field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
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
