"""The FastAPI app. `create_app(services)` serves the contract of docs/api.md on any runtime."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from mediaindex import __version__
from mediaindex.api import errors
from mediaindex.api.ratelimit import RateLimiter
from mediaindex.api.routes import assets, indexes, meta, playground, search, tasks
from mediaindex.container import Services

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


def create_app(services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(
        title="mediaindex",
        version=__version__,
        summary="Self-hosted media indexing: uploads, proxies, transcripts, embeddings and search.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
        separate_input_output_schemas=False,
    )
    app.state.services = services
    app.state.rate_limiter = RateLimiter(services.settings.rate_limit_per_minute)
    errors.install(app)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex}"
        request.state.request_id = rid[:100]
        response = await call_next(request)
        response.headers["x-request-id"] = request.state.request_id
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    if services.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=services.settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag", "x-request-id", "Retry-After"],
        )

    for module in (meta, indexes, assets, tasks, search):
        app.include_router(module.router)
    if "local_blob_router" in services.extras:
        app.include_router(services.extras["local_blob_router"], include_in_schema=False)
    if playground.STATIC_DIR.is_dir():
        app.include_router(playground.router)
        app.mount("/static", StaticFiles(directory=playground.STATIC_DIR), name="static")
    return app
