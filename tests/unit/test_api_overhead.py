"""The API's per-request overhead: thread-pool hops are counted on real requests (each costs two
thread switches, the largest fixed cost of a request), routes keep their contract, and the
latency bench prints the one JSON line `make bench` reads."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel

from mediaindex.api import errors
from mediaindex.api.strict_json import StrictJsonRoute, in_one_hop
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from mediaindex.domain.errors import NotFoundError
from mediaindex.settings import Settings
from tests.bench_line import bench_record

ROOT = Path(__file__).resolve().parents[2]


class Item(BaseModel):
    id: str
    size: int


class ItemIn(BaseModel):
    size: int


def get_item(item_id: str, size: int = Query(1, ge=1)) -> Item:
    if item_id == "missing":
        raise NotFoundError("item not found")
    return Item(id=item_id, size=size)


def put_item(item_id: str, body: ItemIn) -> Item:
    return Item(id=item_id, size=body.size)


def _app(route_class: type[Any]) -> FastAPI:
    router = APIRouter(prefix="/items", route_class=route_class)
    router.get("/{item_id}", response_model=Item)(get_item)
    router.put("/{item_id}", response_model=Item)(put_item)
    app = FastAPI()
    errors.install(app)
    app.include_router(router)
    return app


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions each request ran on the thread pool."""
    ran: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append(getattr(getattr(func, "func", func), "__name__", "?"))  # through a partial
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return ran


@pytest.mark.parametrize(("route_class", "expected"), [(APIRouter().route_class, 2), (StrictJsonRoute, 1)])
def test_a_sync_endpoint_costs_one_hop_on_a_strict_route(
    hops: list[str], route_class: type[Any], expected: int
) -> None:
    # FastAPI's own route checks a sync endpoint's answer in a second hop; ours does it inline.
    with TestClient(_app(route_class)) as client:
        hops.clear()
        resp = client.get("/items/a", params={"size": 3})
    assert resp.status_code == 200
    assert resp.json() == {"id": "a", "size": 3}
    assert len(hops) == expected, hops


def test_a_wrapped_endpoint_keeps_its_parameters_errors_and_openapi() -> None:
    plain, strict = _app(APIRouter().route_class), _app(StrictJsonRoute)
    assert strict.openapi()["paths"] == plain.openapi()["paths"]
    assert strict.openapi()["components"] == plain.openapi()["components"]
    with TestClient(strict) as client:
        assert client.put("/items/b", json={"size": 5}).json() == {"id": "b", "size": 5}
        bad = client.get("/items/a", params={"size": 0})
        missing = client.get("/items/missing")
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "size"
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_generators_and_coroutines_are_left_as_they_are() -> None:
    def stream() -> Iterator[bytes]:
        yield b"x"

    async def coroutine() -> None:
        return None

    async def astream() -> AsyncIterator[bytes]:
        yield b"x"

    for endpoint in (stream, coroutine, astream):
        assert in_one_hop(endpoint) is endpoint
    wrapped = in_one_hop(get_item)
    assert inspect.iscoroutinefunction(wrapped)
    assert inspect.signature(wrapped) == inspect.signature(get_item)


def _requests_counted(quotas: Any, tenant_id: str) -> float:
    return next(u.used for u in quotas.uses(tenant_id)[1] if u.name == "requests_per_minute")


def test_getting_an_asset_costs_two_hops(tmp_path: Path, hops: list[str]) -> None:
    """The key lookup with the quota check (a store call each: kept off the event loop) and the
    route; no hop for the services, nor for checking the answer."""
    settings = Settings(data_dir=tmp_path, start_workers=False, rate_limit_per_minute=1000)
    runtime = build_local(settings)
    try:
        key = runtime.services.keys.create_key("overhead")[2]
        app = build_app(runtime, close_on_shutdown=False)
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
            idx = client.post("/v1/indexes", json={"name": "o"}).json()["id"]
            asset = client.post("/v1/assets", json={"index_id": idx, "name": "a.mp4"}).json()["asset"]
            tenant = runtime.services.keys.authenticate(key).tenant_id
            counted = _requests_counted(runtime.services.quotas, tenant)
            hops.clear()
            resp = client.get(f"/v1/assets/{asset['id']}")
            assert resp.status_code == 200
            assert resp.json()["id"] == asset["id"]
            assert hops == ["authenticate", "get_asset"]
            # The quota admission still runs on every request: its window counted this one.
            assert _requests_counted(runtime.services.quotas, tenant) == counted + 1
            hops.clear()
            assert client.get("/v1/assets/nope").status_code == 404
            assert hops == ["authenticate", "get_asset"]
            assert (
                client.get(f"/v1/assets/{asset['id']}", headers={"Authorization": "Bearer x"}).status_code
                == 401
            )
    finally:
        runtime.close()


def test_the_latency_bench_prints_one_json_line() -> None:
    record, table = bench_record("api_latency", "20")
    assert record["bench"] == "api_latency"
    assert record["ratio"] == round(record["project_p50_ms"] / record["floor_p50_ms"], 2)
    overhead = record["get_p50_overhead_ms"]
    assert overhead == round(record["project_p50_ms"] - record["floor_p50_ms"], 3)
    assert record["goals"] == {"get_p50_overhead_le_0.5_ms": overhead <= 0.5}
    assert len(record["load_start"]) == len(record["load_end"]) == 3
    assert record["get_asset"]["n"] == record["floor_bare_route"]["n"] == 20
    assert "GET /v1/assets/{id}" in table  # the human table
    json.dumps(record)
