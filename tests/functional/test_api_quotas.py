"""/v1/quotas on both runtimes: each quota refuses with its exact error body, counts for the whole
tenant, and resets; the quotas' clock is moved by the test."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.domain.quotas import Quotas
from mediaindex.services.quotas import QuotaService
from tests.apiclient import Api
from tests.functional.conftest import BASE_URL


class Clock:
    def __init__(self) -> None:
        # At the start of a real minute (tasks carry real creation times), 10 s into it.
        self.now = (time.time() // 60) * 60 + 10

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def admin(runtime: Runtime, clock: Clock) -> Iterator[Api]:
    store = runtime.stores.keys
    quotas = QuotaService(store, runtime.services.usage, Quotas(), clock=clock)
    runtime.services = dataclasses.replace(runtime.services, quotas=quotas)
    with TestClient(build_app(runtime, close_on_shutdown=False), base_url=BASE_URL) as client:
        yield Api(client, runtime.services.keys.create_key("acme")[2])


def _error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = dict(resp.json())
    assert set(body) == {"error"}
    error = dict(body["error"])
    assert error.pop("request_id")
    return error


def _set(admin: Api, **quotas: Any) -> dict[str, Any]:
    return dict(admin.ok("PUT", "/v1/quotas", json=quotas))


def test_requests_per_minute_count_for_the_whole_tenant_and_reset(admin: Api, clock: Clock) -> None:
    _set(admin, requests_per_minute=3)
    reader = Api(admin.client, admin.ok("POST", "/v1/keys", 201, json={"scope": "read_only"})["key"])

    assert [admin.call("GET", "/v1/indexes").status_code for _ in range(2)] == [200, 200]
    # POST /v1/keys above counted too: the tenant's 3 are used, whichever key sends the 4th
    refused = reader.call("GET", "/v1/indexes")
    assert _error(refused, 429) == {
        "code": "rate_limited",
        "message": "over this tenant's 3 requests per minute",
    }
    assert refused.headers["retry-after"] == "50"
    clock.now += 50
    assert reader.call("GET", "/v1/indexes").status_code == 200


def test_another_tenant_has_its_own_window(admin: Api, runtime: Runtime) -> None:
    _set(admin, requests_per_minute=1)
    other = Api(admin.client, runtime.services.keys.create_key("globex")[2])

    assert admin.call("GET", "/v1/indexes").status_code == 200
    assert admin.call("GET", "/v1/indexes").status_code == 429
    assert [other.call("GET", "/v1/indexes").status_code for _ in range(3)] == [200, 200, 200]


def test_concurrent_tasks_are_limited(admin: Api) -> None:
    index = admin.index("clips")
    admin.upload(index["id"], "a.mp3", b"ID3" + b"\0" * 61)  # its ingest task is queued
    _set(admin, max_concurrent_tasks=1)

    resp = admin.call("POST", "/v1/assets", json={"index_id": index["id"], "name": "b.mp3", "size_bytes": 10})

    assert _error(resp, 429) == {
        "code": "concurrency_limited",
        "message": "1 tasks are queued or processing, this tenant's limit",
    }
    assert resp.headers["retry-after"] == "30"
    # Reads are not work: they pass
    assert admin.ok("GET", "/v1/quotas")["usage"][2] == {
        "name": "max_concurrent_tasks",
        "limit": 1,
        "used": 1,
        "resets_at": None,
    }
    _set(admin, max_concurrent_tasks=2)
    admin.ok("POST", "/v1/assets", 201, json={"index_id": index["id"], "name": "b.mp3", "size_bytes": 10})


def test_stored_bytes_refuse_new_assets_at_the_quota(admin: Api) -> None:
    index = admin.index("clips")
    admin.upload(index["id"], "a.mp3", b"ID3" + b"\0" * 61)
    _set(admin, max_stored_bytes=64)

    resp = admin.call("POST", "/v1/assets", json={"index_id": index["id"], "name": "b.mp3", "size_bytes": 1})

    assert _error(resp, 403) == {
        "code": "quota_exceeded",
        "message": "64 bytes are stored, this tenant's quota of 64",
        "field": "max_stored_bytes",
    }
    _set(admin, max_stored_bytes=65)
    admin.ok("POST", "/v1/assets", 201, json={"index_id": index["id"], "name": "b.mp3", "size_bytes": 1})


def test_media_hours_per_day_refuse_new_work_until_the_next_day(
    admin: Api, runtime: Runtime, clock: Clock
) -> None:
    index = admin.index("clips")
    asset = admin.upload(index["id"], "a.mp3", b"ID3" + b"\0" * 61)
    tenant = runtime.stores.keys.get_tenant_by_name("acme")
    assert tenant is not None
    # As probe's write learns it, through the task: 36 s of media (0.01 h), counted for today
    (task,) = runtime.stores.tasks.list(tenant.id, asset_id=asset["id"], limit=10, cursor=None).data
    runtime.stores.tasks.mutate_with_asset(
        tenant.id, task.id, lambda t, a: (t, a.model_copy(update={"duration_s": 36.0}))
    )
    _set(admin, max_media_hours_per_day=0.01)
    day_end = admin.ok("GET", "/v1/quotas")["usage"][1]["resets_at"]

    resp = admin.call("POST", "/v1/assets", json={"index_id": index["id"], "name": "b.mp3", "size_bytes": 1})

    assert _error(resp, 403) == {
        "code": "quota_exceeded",
        "message": "0.01 media hours were processed today (UTC), this tenant's quota of 0.01; it resets at "
        + day_end.replace("Z", "+00:00"),
        "field": "max_media_hours_per_day",
    }
    clock.now += 86400  # tomorrow: today's tasks are yesterday's
    admin.ok("POST", "/v1/assets", 201, json={"index_id": index["id"], "name": "b.mp3", "size_bytes": 1})


def test_quotas_read_with_their_use_and_only_an_admin_sets_them(admin: Api) -> None:
    before = admin.ok("GET", "/v1/quotas")
    assert before["quotas"] == {
        "max_stored_bytes": None,
        "max_media_hours_per_day": None,
        "max_concurrent_tasks": None,
        "requests_per_minute": None,
    }
    assert [u["name"] for u in before["usage"]] == list(before["quotas"])

    after = _set(admin, max_stored_bytes=1000, requests_per_minute=100)

    assert after["quotas"]["max_stored_bytes"] == 1000 and after["quotas"]["max_concurrent_tasks"] is None
    # The PUT ran under no limit; this GET is the first request counted
    rpm = admin.ok("GET", "/v1/quotas")["usage"][3]
    assert rpm["name"] == "requests_per_minute" and rpm["limit"] == 100 and rpm["used"] == 1
    writer = Api(admin.client, admin.ok("POST", "/v1/keys", 201, json={"scope": "read_write"})["key"])
    assert writer.ok("GET", "/v1/quotas")["quotas"]["max_stored_bytes"] == 1000
    refused = writer.call("PUT", "/v1/quotas", json={"max_stored_bytes": None})
    assert _error(refused, 403)["code"] == "scope_insufficient"
    bad = admin.call("PUT", "/v1/quotas", json={"max_stored_bytes": -1})
    assert _error(bad, 400)["field"] == "max_stored_bytes"


def test_operator_defaults_apply_where_the_tenant_set_none(runtime: Runtime, clock: Clock) -> None:
    store = runtime.stores.keys
    quotas = QuotaService(store, runtime.services.usage, Quotas(requests_per_minute=2), clock=clock)
    tenant, _, _ = runtime.services.keys.create_key("acme")

    assert quotas.effective(tenant.id).requests_per_minute == 2
    quotas.set(tenant.id, Quotas(max_concurrent_tasks=3))
    assert quotas.effective(tenant.id) == Quotas(max_concurrent_tasks=3, requests_per_minute=2)
    quotas.set(tenant.id, Quotas(requests_per_minute=5))
    assert quotas.effective(tenant.id).requests_per_minute == 5
