"""Routes built on first use (api/lazy_routes.py): a request builds only the route it reaches, the
OpenAPI document all of them, and the app serves, validates and overrides as FastAPI's own routes
do. And the AWS clients' JSON loader, which reads botocore's files into plain dicts."""

from __future__ import annotations

import functools
import gzip
import json
import threading
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.exceptions import FastAPIError
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from mediaindex.adapters.aws.clients import DictJSONFileLoader, core_session
from mediaindex.api import errors
from mediaindex.api.lazy_routes import LazyRoute, add_routes
from mediaindex.api.strict_json import StrictJsonRoute


class Item(BaseModel):
    id: str
    size: int


class ItemIn(BaseModel):
    size: int


def greeting() -> str:
    return "hello"


Greeting = Annotated[str, Depends(greeting)]


def _router(route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(prefix="/items", tags=["items"], route_class=route_class)

    @router.get("/{item_id}", response_model=Item, summary="Get an item")
    def get_item(item_id: str, size: int = Query(1, ge=1)) -> Item:
        return Item(id=item_id, size=size)

    @router.put("/{item_id}", response_model=Item)
    def put_item(item_id: str, body: ItemIn) -> Item:
        return Item(id=item_id, size=body.size)

    @router.get("/{item_id}/greeting")
    def get_greeting(item_id: str, text: Greeting) -> dict[str, str]:
        return {"id": item_id, "text": text}

    return router


def _app(route_class: type[APIRoute], *, lazy: bool) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    if lazy:
        add_routes(app, _router(route_class))
    else:
        app.include_router(_router(route_class))
    return app


def _built(app: FastAPI) -> dict[str, bool]:
    return {r.name: r.built for r in app.routes if isinstance(r, LazyRoute)}


@pytest.mark.parametrize("route_class", [LazyRoute, StrictJsonRoute])
def test_a_request_builds_only_the_route_it_reaches(route_class: type[APIRoute]) -> None:
    app = _app(route_class, lazy=True)
    assert _built(app) == {"get_item": False, "put_item": False, "get_greeting": False}
    with TestClient(app) as client:
        resp = client.get("/items/a", params={"size": 3})
        assert resp.status_code == 200 and resp.json() == {"id": "a", "size": 3}
        assert _built(app) == {"get_item": True, "put_item": False, "get_greeting": False}
        # A method the route does not take is answered without building it.
        assert client.delete("/items/a").status_code == 405
        assert _built(app)["put_item"] is False
        assert client.put("/items/b", json={"size": 5}).json() == {"id": "b", "size": 5}
        bad = client.get("/items/a", params={"size": 0})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "size"
    assert _built(app) == {"get_item": True, "put_item": True, "get_greeting": False}


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    """A body without the request's own id."""
    if "error" in body:
        return {**body, "error": {k: v for k, v in body["error"].items() if k != "request_id"}}
    return body


@pytest.mark.parametrize("route_class", [LazyRoute, StrictJsonRoute])
def test_the_document_and_the_answers_are_fastapis_own(route_class: type[APIRoute]) -> None:
    lazy, included = _app(route_class, lazy=True), _app(APIRouter().route_class, lazy=False)
    assert lazy.openapi() == included.openapi()
    assert set(_built(lazy).values()) == {True}  # the document needed every route
    with TestClient(lazy) as a, TestClient(included) as b:
        for path in ("/items/x", "/items/x/greeting", "/items/x?size=nope", "/items/x/"):
            ra, rb = a.get(path), b.get(path)
            assert (ra.status_code, _answer(ra.json())) == (rb.status_code, _answer(rb.json())), path


def test_the_app_overrides_the_dependencies_of_routes_it_was_given() -> None:
    app = _app(LazyRoute, lazy=True)
    app.dependency_overrides[greeting] = lambda: "overridden"
    with TestClient(app) as client:
        assert client.get("/items/x/greeting").json() == {"id": "x", "text": "overridden"}


def _count(counts: dict[str, int], name: str) -> None:
    counts[name] += 1


def test_a_router_with_event_handlers_is_included_as_it_is() -> None:
    started: dict[str, int] = {"included": 0, "added": 0}
    for how in started:
        router = _router(LazyRoute)
        router.add_event_handler("startup", functools.partial(_count, started, how))
        app = FastAPI()
        if how == "included":
            app.include_router(router)
        else:
            add_routes(app, router)
        with TestClient(app) as client:
            assert client.get("/items/z").json() == {"id": "z", "size": 1}
    assert started["added"] == started["included"] > 0


def test_a_router_with_other_routes_is_included_as_it_is() -> None:
    router = _router(LazyRoute)
    router.add_api_route("/plain/ping", lambda: {"ok": True}, route_class_override=APIRoute)
    app = FastAPI()
    add_routes(app, router)
    with TestClient(app) as client:
        assert client.get("/items/plain/ping").json() == {"ok": True}
        assert client.get("/items/y").json() == {"id": "y", "size": 1}


def test_a_route_that_cannot_be_built_fails_on_each_use_and_is_not_left_half_built() -> None:
    router = APIRouter(route_class=LazyRoute)
    router.get("/bad", response_model=Opaque)(lambda: None)
    app = FastAPI()
    add_routes(app, router)
    (route,) = [r for r in app.routes if isinstance(r, LazyRoute)]
    for _ in range(2):
        with pytest.raises(FastAPIError, match="Invalid args for response field"):
            _ = route.dependant
        assert not route.built and "dependant" not in vars(route)
    assert route.path == "/bad" and route.methods == {"GET"}  # still matched, then refused
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/bad").status_code == 500


def test_an_attribute_no_route_has_fails_after_the_build() -> None:
    app = _app(LazyRoute, lazy=True)
    route = next(r for r in app.routes if isinstance(r, LazyRoute))
    assert not hasattr(route, "no_such_attribute")
    assert route.built and route.response_model is Item


def test_threads_reading_a_route_while_it_is_built_see_it_whole() -> None:
    app = _app(LazyRoute, lazy=True)
    route = next(r for r in app.routes if isinstance(r, LazyRoute))
    seen: list[Any] = []
    start = threading.Barrier(8)

    def read() -> None:
        start.wait()
        seen.append((route.dependant, route.response_field, route.body_field))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and len({tuple(map(id, s)) for s in seen}) == 1  # one build, one state


class Opaque:
    """No pydantic schema: FastAPI refuses it as a response model."""


def _write(path: Path, data: dict[str, Any], *, gzipped: bool) -> None:
    raw = json.dumps(data).encode()
    path.write_bytes(gzip.compress(raw) if gzipped else raw)


def test_the_json_loader_reads_plain_then_gzipped_files_into_dicts(tmp_path: Path) -> None:
    loader = DictJSONFileLoader()
    _write(tmp_path / "model.json.gz", {"b": 1, "a": {"c": [1, {"d": 2}]}}, gzipped=True)
    loaded = loader.load_file(str(tmp_path / "model"))
    assert loaded == {"b": 1, "a": {"c": [1, {"d": 2}]}} and type(loaded["a"]["c"][1]) is dict
    assert list(loaded) == ["b", "a"]  # the file's order
    _write(tmp_path / "model.json", {"plain": True}, gzipped=False)
    assert loader.load_file(str(tmp_path / "model")) == {"plain": True}  # botocore's order
    assert loader.load_file(str(tmp_path / "missing")) is None
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(json.JSONDecodeError):
        loader.load_file(str(tmp_path / "broken"))


def test_sessions_read_botocores_own_files_with_it() -> None:
    loader = core_session().get_component("data_loader")
    assert isinstance(loader.file_loader, DictJSONFileLoader)
    endpoints = loader.load_data("endpoints")
    assert type(endpoints) is dict and "aws" in {p["partition"] for p in endpoints["partitions"]}
