"""Routes built on first use. FastAPI builds a route's parameter, body and response validators
(pydantic TypeAdapters, about 2 ms a route) when the route is declared, and builds an included
router's routes a second time for the app, all of that router's at once, on the first request
that reaches it. A Lambda's cold start serves one route, so here each route is built once, for
the app, when it is first needed.

`LazyRoute` sets at once only what a request is matched by (path, methods, name); reading
anything else (handling a request, the OpenAPI document) builds the whole route as FastAPI
would have. `add_routes` declares a router's routes on the app itself rather than including it.
So a route declared wrong fails on its first use, not at import: building the OpenAPI document
builds every route (the contract check of docs/api.md does)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import compile_path, get_name

# One lock for all routes: a build takes milliseconds, once per route, and a route's build may
# read attributes of its own (re-entrant).
_BUILD = threading.RLock()


class LazyRoute(APIRoute):
    """An APIRoute whose validators and handler are built on the first read of an attribute
    that matching a request does not need."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.declared = (path, endpoint, kwargs)
        self._built = False
        self._building = False
        # What Route.matches, url_path_for and the app's route listing read, as APIRoute sets it.
        self.path = path
        self.endpoint = endpoint
        self.methods = {m.upper() for m in kwargs.get("methods") or ("GET",)}
        name = kwargs.get("name")
        self.name = get_name(endpoint) if name is None else name
        self.include_in_schema = kwargs.get("include_in_schema", True)
        self.path_regex, self.path_format, self.param_convertors = compile_path(path)

    def __getattr__(self, attr: str) -> Any:
        # Called only for an attribute not set yet, that is, before the build (or one that
        # APIRoute never sets, which fails as it would have once built).
        state = self.__dict__
        if attr.startswith("__") or "declared" not in state or state["_built"]:
            raise AttributeError(attr)
        with _BUILD:  # another thread waits for the build; this one may read during it
            if state.get("_building"):
                raise AttributeError(attr)  # read by the build itself before it is set
            if not state["_built"]:
                declared = dict(state)
                state["_building"] = True
                path, endpoint, kwargs = self.declared
                try:
                    APIRoute.__init__(self, path, endpoint, **kwargs)
                except BaseException:
                    # Nothing half built stays: the next read tries again, and fails again.
                    state.clear()
                    state.update(declared)
                    raise
                state["_built"], state["_building"] = True, False
        return object.__getattribute__(self, attr)

    @property
    def built(self) -> bool:
        """Whether this route's validators and handler exist yet."""
        return bool(self.__dict__["_built"])


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Gives the app `router`'s routes as its own (each still built on first use, with the app
    as its dependency-overrides provider), as `app.include_router(router)` would without a prefix
    or other options. A router with any other kind of route, or event handlers, is included as it
    is."""
    if router.on_startup or router.on_shutdown or not all(isinstance(r, LazyRoute) for r in router.routes):
        app.include_router(router)
        return
    for route in router.routes:
        assert isinstance(route, LazyRoute)
        path, endpoint, kwargs = route.declared
        # The app's router names its own provider, as include_router does.
        options = {k: v for k, v in kwargs.items() if k != "dependency_overrides_provider"}
        app.router.add_api_route(path, endpoint, route_class_override=type(route), **options)
