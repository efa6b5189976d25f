"""Every route answers with or without a trailing slash, and never with a redirect.

Aspect documents `POST $ASPECT_URL/indexes/`; Starlette would answer that with a 307 to
`/v1/indexes`, which curl does not follow without -L, so the index was never created. Here the
slash is dropped from the path before routing (pure ASGI: nothing else of the request changes),
so both spellings reach the same route, its body guard and its idempotency fingerprint."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


def without_trailing_slash(path: str) -> str:
    """`/v1/indexes/` -> `/v1/indexes`; the root stays `/`."""
    return path.rstrip("/") or "/"


class StripTrailingSlash:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] in ("http", "websocket") and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": without_trailing_slash(path)}
            raw = scope.get("raw_path")
            if isinstance(raw, bytes):
                scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)
