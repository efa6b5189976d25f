"""/v1/keys on both runtimes: scopes, revocation on the next request, expiry, rotation windows and
the throttled `last_used_at`, with the service's clock moved by the test."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.services.keys import KeyService
from tests.apiclient import Api, error_code
from tests.functional.conftest import BASE_URL


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def admin(runtime: Runtime, clock: Clock) -> Iterator[Api]:
    runtime.services = dataclasses.replace(
        runtime.services, keys=KeyService(runtime.stores.keys, clock=clock)
    )
    with TestClient(build_app(runtime, close_on_shutdown=False), base_url=BASE_URL) as client:
        yield Api(client, runtime.services.keys.create_key("acme")[2])


def _key(admin: Api, **body: Any) -> tuple[dict[str, Any], Api]:
    created = admin.ok("POST", "/v1/keys", 201, json=body)
    return created, Api(admin.client, created["key"])


def _refused(api: Api, method: str, path: str, status: int, code: str, **kw: Any) -> dict[str, Any]:
    resp = api.call(method, path, **kw)
    assert resp.status_code == status, resp.text
    assert error_code(resp) == code
    return dict(resp.json()["error"])


def test_a_key_secret_is_shown_once_and_listed_by_prefix_and_last4(admin: Api) -> None:
    created, _ = _key(admin, scope="read_only", name="dashboards")

    assert created["key"].startswith("mi_") and created["scope"] == "read_only"
    assert created["last4"] == created["key"][-4:] and created["prefix"] == created["key"][:7]
    listed = admin.ok("GET", "/v1/keys")["data"]
    mine = next(k for k in listed if k["id"] == created["id"])
    assert "key" not in mine and mine["name"] == "dashboards" and mine["last4"] == created["last4"]
    assert created["key"] not in str(listed)
    assert admin.ok("GET", f"/v1/keys/{created['id']}")["scope"] == "read_only"
    # The admin key made by the runtime is listed too, as admin
    assert {k["scope"] for k in listed} == {"admin", "read_only"}


def test_a_read_only_key_reads_and_searches_but_cannot_write(admin: Api) -> None:
    index = admin.index("clips")
    _, reader = _key(admin, scope="read_only")

    assert reader.ok("GET", f"/v1/indexes/{index['id']}")["name"] == "clips"
    search = reader.call("POST", "/v1/search", json={"index_id": index["id"], "query_text": "hello"})
    assert search.status_code == 200, search.text
    assert reader.ok("POST", "/v1/assets/batch-get", json={"ids": ["ast_x"]}) is not None
    err = _refused(reader, "POST", "/v1/indexes", 403, "scope_insufficient", json={"name": "other"})
    assert err["message"] == "this API key's scope (read_only) does not allow POST /v1/indexes"
    _refused(reader, "DELETE", f"/v1/indexes/{index['id']}", 403, "scope_insufficient")
    _refused(reader, "GET", "/v1/keys", 403, "scope_insufficient")
    assert [i["name"] for i in admin.ok("GET", "/v1/indexes")["data"]] == ["clips"]


def test_a_search_only_key_can_only_search(admin: Api) -> None:
    index = admin.index("clips")
    _, browser = _key(admin, scope="search_only")

    search = browser.call("POST", "/v1/search", json={"index_id": index["id"], "query_text": "hello"})
    assert search.status_code == 200, search.text
    assert browser.ok("GET", "/v1/capabilities")["features"]
    for method, path in (
        ("GET", "/v1/indexes"),
        ("GET", f"/v1/indexes/{index['id']}"),
        ("GET", "/v1/usage"),
        ("GET", "/v1/tasks"),
        ("POST", "/v1/keys"),
    ):
        _refused(browser, method, path, 403, "scope_insufficient", json={} if method == "POST" else None)


def test_a_read_write_key_cannot_manage_keys(admin: Api) -> None:
    _, writer = _key(admin)  # read_write is the default

    assert writer.index("mine")["name"] == "mine"
    _refused(writer, "POST", "/v1/keys", 403, "scope_insufficient", json={"scope": "admin"})
    _refused(writer, "GET", "/v1/keys", 403, "scope_insufficient")


def test_a_revoked_key_is_refused_on_the_next_request_like_an_unknown_one(admin: Api) -> None:
    created, victim = _key(admin, scope="read_write")
    assert victim.ok("GET", "/v1/indexes")["data"] == []

    revoked = admin.ok("DELETE", f"/v1/keys/{created['id']}")

    assert revoked["revoked"] is True and revoked["revoked_at"]
    refused = _refused(victim, "GET", "/v1/indexes", 401, "unauthorized")
    unknown = _refused(Api(admin.client, "mi_" + "x" * 43), "GET", "/v1/indexes", 401, "unauthorized")
    assert refused["message"] == unknown["message"] == "invalid API key"
    # A body-carrying request is refused by the body guard the same way
    _refused(victim, "POST", "/v1/indexes", 401, "unauthorized", json={"name": "x"})
    # Revoking again answers the same key; listing shows it revoked
    assert admin.ok("DELETE", f"/v1/keys/{created['id']}")["revoked_at"] == revoked["revoked_at"]
    assert next(k for k in admin.ok("GET", "/v1/keys")["data"] if k["id"] == created["id"])["revoked"]


def test_an_expired_key_is_refused(admin: Api, clock: Clock) -> None:
    expires = (clock.now + timedelta(hours=1)).isoformat()
    _, temp = _key(admin, scope="read_only", expires_at=expires)
    assert temp.ok("GET", "/v1/indexes")["data"] == []

    clock.advance(3600)

    _refused(temp, "GET", "/v1/indexes", 401, "unauthorized")
    past = (clock.now - timedelta(seconds=1)).isoformat()
    err = _refused(admin, "POST", "/v1/keys", 400, "parameter_invalid", json={"expires_at": past})
    assert err["field"] == "expires_at"


def test_rotation_keeps_both_keys_valid_only_within_the_window(admin: Api, clock: Clock) -> None:
    created, old = _key(admin, scope="read_write", name="ci")

    rotated = admin.ok("POST", f"/v1/keys/{created['id']}/rotate", 201, json={"overlap_s": 600})
    new = Api(admin.client, rotated["key"])

    assert rotated["id"] != created["id"] and rotated["scope"] == "read_write" and rotated["name"] == "ci"
    listed_old = admin.ok("GET", f"/v1/keys/{created['id']}")
    assert listed_old["rotated_to"] == rotated["id"]
    assert listed_old["expires_at"] == (clock.now + timedelta(seconds=600)).isoformat().replace("+00:00", "Z")
    clock.advance(599)
    assert old.ok("GET", "/v1/indexes")["data"] == [] and new.ok("GET", "/v1/indexes")["data"] == []
    clock.advance(1)
    _refused(old, "GET", "/v1/indexes", 401, "unauthorized")
    assert new.ok("GET", "/v1/indexes")["data"] == []
    # An expired key cannot be rotated again
    _refused(admin, "POST", f"/v1/keys/{created['id']}/rotate", 409, "key_not_active")


def test_rotation_defaults_to_a_day_and_refuses_a_longer_overlap(admin: Api, clock: Clock) -> None:
    created, old = _key(admin)
    err = _refused(
        admin,
        "POST",
        f"/v1/keys/{created['id']}/rotate",
        400,
        "parameter_invalid",
        json={"overlap_s": 7 * 86400 + 1},
    )
    assert err["field"] == "overlap_s"

    admin.ok("POST", f"/v1/keys/{created['id']}/rotate", 201)

    clock.advance(86400 - 1)
    assert old.ok("GET", "/v1/indexes")["data"] == []
    clock.advance(1)
    _refused(old, "GET", "/v1/indexes", 401, "unauthorized")


def test_key_management_refusals(admin: Api) -> None:
    own_id = next(k["id"] for k in admin.ok("GET", "/v1/keys")["data"])
    _refused(admin, "DELETE", f"/v1/keys/{own_id}", 409, "key_is_caller")
    _refused(admin, "DELETE", "/v1/keys/key_missing", 404, "key_not_found")
    _refused(admin, "POST", "/v1/keys/key_missing/rotate", 404, "key_not_found")
    _refused(admin, "POST", "/v1/keys", 400, "parameter_invalid", json={"scope": "root"})
    naive = _refused(
        admin, "POST", "/v1/keys", 400, "parameter_invalid", json={"expires_at": "2031-01-01T00:00"}
    )
    assert naive["field"] == "expires_at"
    created, _ = _key(admin)
    admin.ok("DELETE", f"/v1/keys/{created['id']}")
    _refused(admin, "POST", f"/v1/keys/{created['id']}/rotate", 409, "key_not_active")


def test_another_tenants_key_is_not_found(admin: Api, runtime: Runtime) -> None:
    other = Api(admin.client, runtime.services.keys.create_key("globex")[2])
    created, victim = _key(admin)

    _refused(other, "DELETE", f"/v1/keys/{created['id']}", 404, "key_not_found")
    _refused(other, "POST", f"/v1/keys/{created['id']}/rotate", 404, "key_not_found")
    assert victim.ok("GET", "/v1/indexes")["data"] == []
    assert created["id"] not in str(other.ok("GET", "/v1/keys"))


def test_last_used_at_is_written_at_most_once_a_minute(admin: Api, clock: Clock) -> None:
    created, user = _key(admin)
    assert created["last_used_at"] is None
    first = clock.now

    def last_used() -> str:
        return str(admin.ok("GET", f"/v1/keys/{created['id']}")["last_used_at"])

    user.ok("GET", "/v1/indexes")
    clock.advance(59)
    user.ok("GET", "/v1/indexes")
    assert last_used() == first.isoformat().replace("+00:00", "Z")
    clock.advance(1)
    user.ok("GET", "/v1/indexes")
    assert last_used() == clock.now.isoformat().replace("+00:00", "Z")
