"""The FastAPI app. `create_app(services)` serves the contract of docs/api.md on any runtime."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from mediaindex import __version__
from mediaindex.api import errors, openapi_doc
from mediaindex.api.lazy_routes import add_routes
from mediaindex.api.middleware import BodyGuard, RequestContext
from mediaindex.api.routes import (
    assets,
    docs,
    indexes,
    keys,
    meta,
    playground,
    quotas,
    search,
    tasks,
    webhooks,
)
from mediaindex.api.trailing_slash import StripTrailingSlash
from mediaindex.services.bundle import Services

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob: https: http:; media-src 'self' blob: https: http:; "
        "connect-src 'self' https: http:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    ),
}


DESCRIPTION = (
    "Send an API key with every request but `/v1/health`: `Authorization: Bearer <key>` (or "
    '`x-api-key`). Every failure answers `{"error": {"code", "message", "request_id"}}`. '
    "Paths work with or without a trailing slash. The full contract, with examples, is docs/api.md."
)

_SIG = re.compile(r"([?&]sig=)[^&\s\"]+")


class RedactSignatures(logging.Filter):
    """Access logs print request paths; a signed URL's `sig` is a bearer credential until it expires,
    so it is masked before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_SIG.sub(r"\1REDACTED", a) if isinstance(a, str) else a for a in record.args)
        return True


def _own_prefixes(routers: Sequence[APIRouter]) -> list[str]:
    """The path prefixes of a runtime's own routes (`/_blobs/`): they check their requests
    themselves (signed URLs, object sizes), so the body guard leaves them alone."""
    prefixes = {getattr(r, "path", "").split("{")[0] for router in routers for r in router.routes}
    return sorted(p for p in prefixes if len(p) > 1 and not p.startswith("/v1"))


def create_app(
    services: Services,
    *,
    routers: Sequence[APIRouter] = (),
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    """`routers`: a runtime's own routes (the local blob store's signed URLs), undocumented.
    `on_shutdown`: what stops the runtime when the server stops (a Lambda never does)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Installed at startup, after the server has configured its loggers.
        access = logging.getLogger("uvicorn.access")
        if not any(isinstance(f, RedactSignatures) for f in access.filters):
            access.addFilter(RedactSignatures())
        yield
        if on_shutdown is not None:
            on_shutdown()

    app = FastAPI(
        title="mediaindex",
        version=__version__,
        summary="Self-hosted media indexing: uploads, proxies, transcripts, embeddings and search.",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # routes/docs.py serves it, self-hosted
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        redirect_slashes=False,  # StripTrailingSlash: both spellings, no redirect
        lifespan=lifespan,
        separate_input_output_schemas=False,
    )
    app.state.services = services
    openapi_doc.install(app)
    errors.install(app)

    # The last added runs first: CORS, then the request id, then the body guard.
    app.add_middleware(
        BodyGuard,
        settings=services.settings,
        authenticate=services.keys.authenticate,
        exempt_prefixes=_own_prefixes(routers),
    )
    app.add_middleware(RequestContext, security_headers=SECURITY_HEADERS)
    if services.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=services.settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag", "x-request-id", "Retry-After"],
        )
    app.add_middleware(StripTrailingSlash)  # first of all, so every layer sees one spelling

    for module in (meta, indexes, assets, tasks, search, keys, quotas, webhooks):
        add_routes(app, module.router)
    for router in routers:
        app.include_router(router, include_in_schema=False)
    swagger = docs.assets()
    if swagger is not None:
        add_routes(app, docs.router)
        app.mount(docs.ASSETS, swagger, name="docs-assets")
    if playground.STATIC_DIR.is_dir():
        add_routes(app, playground.router)
        app.mount("/static", StaticFiles(directory=playground.STATIC_DIR), name="static")
    return app
