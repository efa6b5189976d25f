"""The FastAPI app over a runtime: its services, its adapters' routes, and its shutdown."""

from __future__ import annotations

from fastapi import FastAPI

from mediaindex.api.app import create_app
from mediaindex.bootstrap.runtime import Runtime


def build_app(runtime: Runtime, *, close_on_shutdown: bool = True) -> FastAPI:
    """`close_on_shutdown=False` when the caller closes the runtime itself (tests, the demo)."""
    return create_app(
        runtime.services,
        routers=runtime.routers,
        on_shutdown=runtime.close if close_on_shutdown else None,
    )
