"""The app's two middlewares, pure ASGI (BaseHTTPMiddleware runs the app in a task of its own and
hides `receive` behind its own stream; these only wrap `receive` and `send`).

`RequestContext`: the request id (the client's `x-request-id` when it is printable ASCII, cut to
100 characters, else one of ours) in `scope["state"]`, and on every response with the security
headers.

`BodyGuard`: request bodies. FastAPI reads a JSON body before it solves any dependency, so before
the key is checked; four unauthenticated 300 MB POSTs took the server from 118 MiB to 2.1 GiB.
Here, before one byte of a body is read:
- a request that carries a body (Content-Length above 0, or chunked) to an authenticated route is
  authenticated: without a valid key it is answered 401 at once, and the key it had is left in
  `scope["state"]["api_key"]` for the `authenticate` dependency (one lookup, not two);
- a declared Content-Length above the route's cap is answered 413 at once;
- otherwise `receive` counts the bytes as they arrive and raises `BodyRefused` (413) the moment
  they pass the cap, and (408) when the whole body has not arrived within its deadline (a client
  trickling a body byte by byte holds a connection, not the server).
Refusals, and any answer sent before the body is all in, close the connection (`Connection:
close`), so the rest of a refused body is never read.
Caps: multipart/form-data on `POST /v1/assets` takes the form-upload limit (its file part is
checked exactly by the route: 413 `asset_file_too_large`), `POST /v1/search` 64 KiB, the upload
complete call (up to 10,000 parts) 4 MiB, every other body 1 MiB (settings `max_*_body_bytes`).
Runtime routes that check their own requests (the local blob store's signed URLs, `/_blobs/...`,
with their own signature and size checks) are passed through untouched."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediaindex.api.errors import BodyRefused, error_response, status_for
from mediaindex.domain.errors import MediaindexError, UnauthorizedError
from mediaindex.settings import Settings

MiB = 1024 * 1024
FORM_OVERHEAD_BYTES = 64 * 1024  # the form's other fields and part headers, beside its file
UPLOAD_COMPLETE_BYTES = 4 * MiB  # 10,000 parts of {"part_number", "etag"}
PUBLIC_PATHS = frozenset({"/v1/health", "/v1/openapi.json"})
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The API key a request presents: `Authorization: Bearer <key>`, else `x-api-key`."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return x_api_key


def _headers(message: Message) -> MutableHeaders:
    """The headers of a response start message, to change in place."""
    message["headers"] = list(message.get("headers", ()))
    return MutableHeaders(scope=message)


def _request_id(headers: Headers) -> str:
    given = (headers.get("x-request-id") or "")[:100]
    if given.strip() and all(" " <= c <= "~" for c in given):
        return given
    return f"req_{uuid.uuid4().hex}"


class RequestContext:
    def __init__(self, app: ASGIApp, *, security_headers: dict[str, str]) -> None:
        self.app = app
        self.security_headers = security_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(Headers(scope=scope))
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = _headers(message)
                headers["x-request-id"] = rid
                for k, v in self.security_headers.items():
                    headers.setdefault(k, v)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        authenticate: Callable[[str | None], Any],
        exempt_prefixes: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.settings = settings
        self.authenticate = authenticate
        self.exempt = tuple(exempt_prefixes)

    def policy(self, method: str, path: str, content_type: str) -> tuple[int, str, float]:
        """(cap in bytes, the code a body over it gets, seconds the whole body may take)."""
        s = self.settings
        if method == "POST" and path == "/v1/assets" and content_type in _FORMS:
            return (
                s.max_form_upload_bytes + FORM_OVERHEAD_BYTES,
                "asset_file_too_large",
                s.form_read_timeout_s,
            )
        if path == "/v1/search":
            return s.max_search_body_bytes, "payload_too_large", s.body_read_timeout_s
        if path.startswith("/v1/assets/") and path.endswith("/upload/complete"):
            return (
                max(s.max_json_body_bytes, UPLOAD_COMPLETE_BYTES),
                "payload_too_large",
                s.body_read_timeout_s,
            )
        return s.max_json_body_bytes, "payload_too_large", s.body_read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or (self.exempt and path.startswith(self.exempt)):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and not (declared.strip().isascii() and declared.strip().isdigit()):
            await _refuse(
                scope, send, 400, "parameter_invalid", "Content-Length is not a number", "Content-Length"
            )
            return
        length = int(declared) if declared is not None else None
        # HTTP/1.1 frames a body by its length or by chunks; a request with neither has none.
        if not length and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        if (
            path.startswith("/v1/")
            and path not in PUBLIC_PATHS
            and not await self._authenticated(scope, send, headers)
        ):
            return
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        cap, code, timeout_s = self.policy(scope["method"], path, content_type)
        if length is not None and length > cap:
            await _refuse(scope, send, 413, code, _too_large(cap, content_type))
            return
        await self._guarded(scope, receive, send, cap, code, timeout_s, content_type)

    async def _authenticated(self, scope: Scope, send: Send, headers: Headers) -> bool:
        raw = presented_key(headers.get("authorization"), headers.get("x-api-key"))
        try:
            if not raw:  # refused without a lookup
                raise UnauthorizedError("missing API key: send Authorization: Bearer <key> or x-api-key")
            key = await run_in_threadpool(self.authenticate, raw)
        except MediaindexError as e:
            await _refuse(scope, send, status_for(e), e.code, e.message)
            return False
        scope.setdefault("state", {})["api_key"] = key
        return True

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, cap: int, code: str, timeout_s: float, ctype: str
    ) -> None:
        deadline = time.monotonic() + timeout_s
        received = 0
        done = False
        started = False

        async def guarded_receive() -> Message:
            nonlocal received, done
            if done:  # the body is in; later calls wait for the disconnect, unguarded
                return await receive()
            message: Message | None = None
            with anyio.move_on_after(deadline - time.monotonic()):
                message = await receive()
            if message is None:
                raise BodyRefused(
                    408, "request_timeout", f"the request body did not arrive within {timeout_s:g} s"
                )
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyRefused(413, code, _too_large(cap, ctype))
                done = not message.get("more_body", False)
            else:
                done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not done:  # answered before the body was in (any error): the rest is never read
                    _headers(message)["connection"] = "close"
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except BodyRefused as e:  # raised where no exception handler caught it
            if started:
                raise
            await _refuse(scope, send, e.status_code, e.code, str(e.detail))


def _too_large(cap: int, content_type: str) -> str:
    if content_type in _FORMS:
        return f"the form is over the {cap} byte limit of form uploads; use a signed upload URL"
    return f"the request body is over the {cap} byte limit of this operation"


async def _refuse(
    scope: Scope, send: Send, status: int, code: str, message: str, field: str | None = None
) -> None:
    """Answers before (or instead of) reading the body, and closes the connection."""

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    request = Request(scope, no_body)
    response = error_response(request, status, code, message, field=field, headers={"Connection": "close"})
    await response(scope, no_body, send)
