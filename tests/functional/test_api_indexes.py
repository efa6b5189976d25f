"""Indexes, auth, errors and the OpenAPI document, on both runtimes."""

from __future__ import annotations

from tests.apiclient import Api, error_code


def test_health_needs_no_key(api: Api) -> None:
    resp = api.client.get("/v1/health")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"


def test_requests_without_a_valid_key_are_401(api: Api) -> None:
    assert error_code(api.client.get("/v1/indexes")) == "unauthorized"
    resp = api.client.get("/v1/indexes", headers={"Authorization": "Bearer mi_not_a_key"})
    assert resp.status_code == 401 and error_code(resp) == "unauthorized"


def test_x_api_key_header_is_accepted(api: Api) -> None:
    resp = api.client.get("/v1/indexes", headers={"x-api-key": api.key})
    assert resp.status_code == 200


def test_create_index_defaults_to_all_features(api: Api) -> None:
    idx = api.index("My Project", description="Demo index")
    assert idx["id"].startswith("idx_")
    assert idx["default_features"] == ["proxy", "preview", "transcription", "embedding"]
    assert idx["asset_count"] == 0 and idx["is_sample"] is False
    assert api.ok("GET", f"/v1/indexes/{idx['id']}") == idx


def test_visual_is_an_alias_of_embedding(api: Api) -> None:
    idx = api.index("v", default_features=["proxy", "visual"])
    assert idx["default_features"] == ["proxy", "embedding"]


def test_duplicate_index_name_is_409(api: Api) -> None:
    api.index("dup")
    resp = api.call("POST", "/v1/indexes", json={"name": "dup"})
    assert resp.status_code == 409 and error_code(resp) == "index_name_already_exists"


def test_the_same_name_in_another_tenant_is_fine(api: Api, other_api: Api) -> None:
    api.index("shared-name")
    other_api.index("shared-name")


def test_validation_errors_use_the_error_body_and_name_the_field(api: Api) -> None:
    resp = api.call("POST", "/v1/indexes", json={"name": "x", "default_features": ["ocr"]})
    assert resp.status_code == 400 and error_code(resp) == "parameter_invalid"
    assert resp.json()["error"]["field"] == "default_features"

    resp = api.call("POST", "/v1/indexes", json={"name": "x", "colour": "red"})
    assert resp.status_code == 400 and error_code(resp) == "parameter_unknown"
    assert resp.json()["error"]["field"] == "colour"

    resp = api.call("POST", "/v1/indexes", json={})
    assert resp.status_code == 400 and error_code(resp) == "parameter_missing"

    resp = api.call("POST", "/v1/indexes", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and error_code(resp) == "invalid_json"


def test_unknown_routes_and_methods_use_the_error_body(api: Api) -> None:
    resp = api.call("GET", "/v1/nothing-here")
    assert resp.status_code == 404 and error_code(resp) == "route_not_found"
    resp = api.call("PUT", "/v1/indexes")
    assert resp.status_code == 405 and error_code(resp) == "method_not_allowed"


def test_list_pages_with_cursors(api: Api) -> None:
    made = [api.index(f"i{n}")["id"] for n in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.ok("GET", "/v1/indexes", params=params)
        assert len(page["data"]) <= 2
        seen += [i["id"] for i in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))  # newest first, each once
    resp = api.call("GET", "/v1/indexes", params={"limit": 101})
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "limit"


def test_patch_changes_only_what_is_sent(api: Api) -> None:
    idx = api.index("before", description="keep me")
    out = api.ok("PATCH", f"/v1/indexes/{idx['id']}", json={"name": "after"})
    assert out["name"] == "after" and out["description"] == "keep me"
    out = api.ok("PATCH", f"/v1/indexes/{idx['id']}", json={"default_features": ["transcription"]})
    assert out["default_features"] == ["transcription"] and out["name"] == "after"


def test_delete_index_is_202_and_then_gone(api: Api) -> None:
    idx = api.index("temp")
    resp = api.call("DELETE", f"/v1/indexes/{idx['id']}")
    assert resp.status_code == 202
    resp = api.call("GET", f"/v1/indexes/{idx['id']}")
    assert resp.status_code == 404 and error_code(resp) == "index_not_found"
    assert idx["id"] not in [i["id"] for i in api.ok("GET", "/v1/indexes")["data"]]


def test_openapi_describes_every_route_of_the_contract(api: Api) -> None:
    doc = api.client.get("/v1/openapi.json").json()
    paths = doc["paths"]
    expected = {
        "/v1/indexes": {"get", "post"},
        "/v1/indexes/{index_id}": {"get", "patch", "delete"},
        "/v1/assets": {"get", "post"},
        "/v1/assets/{asset_id}": {"get", "patch", "delete"},
        "/v1/assets/batch-get": {"post"},
        "/v1/assets/batch-delete": {"post"},
        "/v1/assets/{asset_id}/upload/parts": {"post"},
        "/v1/assets/{asset_id}/upload/complete": {"post"},
        "/v1/assets/{asset_id}/upload": {"delete"},
        "/v1/assets/{asset_id}/download": {"get"},
        "/v1/assets/{asset_id}/derivatives": {"get"},
        "/v1/assets/{asset_id}/transcript": {"get"},
        "/v1/assets/{asset_id}/segments": {"get"},
        "/v1/tasks": {"get", "post"},
        "/v1/tasks/active": {"get"},
        "/v1/tasks/{task_id}": {"get"},
        "/v1/tasks/{task_id}/cancel": {"post"},
        "/v1/search": {"post"},
        "/v1/usage": {"get"},
        "/v1/health": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    body = paths["/v1/assets"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)
