"""Tenant isolation on every route, signed URL rules, rate limits."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from starlette.testclient import TestClient

from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from tests.apiclient import Api, error_code
from tests.functional.conftest import BASE_URL, make_settings


def test_another_tenant_gets_404_on_every_id(api: Api, other_api: Api, small_image: Path) -> None:
    idx = api.index()
    asset = api.upload(idx["id"], "still.png", small_image.read_bytes(), features=["proxy"])
    task = api.ok("GET", "/v1/tasks", params={"asset_id": asset["id"]})["data"][0]
    a, i, t = asset["id"], idx["id"], task["id"]
    probes = [
        ("GET", f"/v1/indexes/{i}", None),
        ("PATCH", f"/v1/indexes/{i}", {"name": "stolen"}),
        ("DELETE", f"/v1/indexes/{i}", None),
        ("GET", f"/v1/assets/{a}", None),
        ("PATCH", f"/v1/assets/{a}", {"name": "stolen.png"}),
        ("DELETE", f"/v1/assets/{a}", None),
        ("GET", f"/v1/assets/{a}/download", None),
        ("GET", f"/v1/assets/{a}/derivatives", None),
        ("GET", f"/v1/assets/{a}/transcript", None),
        ("GET", f"/v1/assets/{a}/segments", None),
        ("POST", f"/v1/assets/{a}/upload/parts", {"part_numbers": [1]}),
        ("POST", f"/v1/assets/{a}/upload/complete", {"parts": [{"part_number": 1, "etag": "x"}]}),
        ("DELETE", f"/v1/assets/{a}/upload", None),
        ("GET", f"/v1/tasks/{t}", None),
        ("POST", f"/v1/tasks/{t}/cancel", None),
        ("POST", "/v1/tasks", {"asset_id": a, "feature_types": ["transcription"]}),
        ("POST", "/v1/assets", {"index_id": i, "name": "x.mp4"}),
        ("POST", "/v1/search", {"index_id": i, "query_text": "anything"}),
    ]
    for method, path, body in probes:
        resp = other_api.call(method, path, json=body) if body is not None else other_api.call(method, path)
        assert resp.status_code == 404, (method, path, resp.status_code, resp.text)
    assert other_api.ok("GET", "/v1/assets", params={})["data"] == []
    assert other_api.ok("GET", "/v1/tasks")["data"] == []
    resp = other_api.call("GET", "/v1/assets", params={"index_id": i})
    assert resp.status_code == 404
    got = other_api.ok("POST", "/v1/assets/batch-get", json={"ids": [a]})
    assert got == {"data": [], "not_found_ids": [a]}
    out = other_api.ok("POST", "/v1/assets/batch-delete", json={"ids": [a]})
    assert out["deleted_count"] == 0
    assert api.ok("GET", f"/v1/assets/{a}")["name"] == "still.png"  # untouched


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    q.update(changes)
    return urlunsplit(parts._replace(query=urlencode(q)))


@pytest.mark.parametrize("runtime_kind", ["local"], indirect=True)
def test_signed_urls_are_bound_to_object_method_and_time(api: Api) -> None:
    idx = api.index()
    a = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "a.mp4"})
    b = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "b.mp4"})
    url_a = a["upload"]["url"]
    sig = parse_qs(urlsplit(url_a).query)["sig"][0]

    tampered = _with_query(url_a, sig=("A" if sig[0] != "A" else "B") + sig[1:])
    resp = api.put(tampered, b"x")
    assert resp.status_code == 403 and error_code(resp) == "signature_invalid"

    # A's signature on B's object.
    cross = _with_query(b["upload"]["url"], sig=sig, exp=parse_qs(urlsplit(url_a).query)["exp"][0])
    resp = api.put(cross, b"x")
    assert resp.status_code == 403 and error_code(resp) == "signature_invalid"

    # The PUT URL does not allow GET.
    resp = api.client.get(url_a)
    assert resp.status_code == 403 and error_code(resp) == "signature_invalid"

    late = _with_query(url_a, exp=str(int(time.time()) - 10))
    resp = api.put(late, b"x")
    assert resp.status_code == 403 and error_code(resp) in ("signature_expired", "signature_invalid")
    assert api.ok("GET", f"/v1/assets/{a['asset']['id']}")["status"] == "awaiting_upload"


def test_rate_limit_answers_429_with_retry_after(data_dir: Path) -> None:
    runtime = build_local(make_settings(data_dir, rate_limit_per_minute=3))
    try:
        with TestClient(build_app(runtime), base_url=BASE_URL) as client:
            api = Api(client, runtime.services.keys.create_key("acme")[2])
            codes = [api.call("GET", "/v1/indexes").status_code for _ in range(4)]
            assert codes[:3] == [200, 200, 200] and codes[3] == 429
            resp = api.call("GET", "/v1/indexes")
            assert error_code(resp) == "rate_limited" and int(resp.headers["retry-after"]) >= 1
            assert client.get("/v1/health").status_code == 200  # unauthenticated health is not limited
    finally:
        runtime.close()


def test_keys_are_stored_only_as_hashes(api: Api, runtime: object) -> None:
    raw = api.key
    db_files = list(Path(runtime.settings.data_dir).rglob("*.db*"))  # type: ignore[attr-defined]
    assert db_files
    for f in db_files:
        assert raw.encode() not in f.read_bytes()


def test_query_image_url_passes_the_same_ssrf_guard(api: Api) -> None:
    idx = api.index()
    for url in (
        "http://169.254.169.254/latest/meta-data/iam",
        "http://127.0.0.1:8000/v1/health",
        "file:///etc/passwd",
    ):
        resp = api.call("POST", "/v1/search", json={"index_id": idx["id"], "query_image_url": url})
        assert resp.status_code == 400 and error_code(resp) == "asset_url_forbidden", (url, resp.text)
        assert resp.json()["error"]["field"] == "query_image_url"
