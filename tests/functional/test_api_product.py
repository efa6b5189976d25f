"""What a new user touches first, on both runtimes: every route with or without a trailing slash
(no redirect), the download redirect, error field paths, /v1/capabilities, and an OpenAPI document
that documents itself (summaries, field descriptions, security, errors, the transcript's schema)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mediaindex.api.errors import from_pydantic
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from tests.apiclient import Api, error_code
from tests.functional.conftest import BASE_URL, make_settings

METHODS = ("get", "post", "put", "patch", "delete")


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items() if m in METHODS]


def _outcome(api: Api, method: str, path: str) -> tuple[int, str | None]:
    kw: dict[str, Any] = {"json": {}} if method in ("post", "patch") else {}
    resp = api.call(method.upper(), path, follow_redirects=False, **kw)
    code = resp.json()["error"]["code"] if resp.status_code >= 400 and resp.content else None
    return resp.status_code, code


# ---- trailing slashes ------------------------------------------------------------------------------
def test_every_documented_route_answers_alike_with_a_trailing_slash(api: Api) -> None:
    # Given every operation of the served document, its ids filled with ones that name nothing
    doc = api.client.get("/v1/openapi.json").json()
    ops = _operations(doc)
    assert len(ops) >= 28
    for method, template, _ in ops:
        path = re.sub(r"\{[^}]+\}", "nope_1", template)
        # When it is called as written and with a trailing slash
        plain, slashed = _outcome(api, method, path), _outcome(api, method, path + "/")
        # Then both reach the route (no redirect, no unknown route) and answer the same
        assert slashed == plain, (method, template, plain, slashed)
        assert plain[0] != 307 and plain[1] not in ("route_not_found", "method_not_allowed"), (method, path)


def test_a_post_with_a_trailing_slash_creates_what_it_says(api: Api) -> None:
    # Given Aspect's spelling of the create call
    resp = api.call("POST", "/v1/indexes/", json={"name": "Slashed"}, follow_redirects=False)
    # Then it creates the index at once, and the plain path lists it
    assert resp.status_code == 201, resp.text
    names = [i["name"] for i in api.ok("GET", "/v1/indexes/")["data"]]
    assert names == ["Slashed"]
    assert api.ok("GET", f"/v1/indexes/{resp.json()['id']}/")["name"] == "Slashed"


def test_the_root_and_the_docs_page_keep_working_with_a_slash(client: TestClient) -> None:
    assert client.get("/docs/", follow_redirects=False).status_code == 200
    assert client.get("/v1/health/", follow_redirects=False).json()["status"] == "ok"


# ---- download redirect -----------------------------------------------------------------------------
def test_download_redirects_to_the_signed_url_when_asked(api: Api) -> None:
    # Given an uploaded original
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
    idx = api.index(default_features=["proxy"])
    asset = api.upload(idx["id"], "clip.mp4", data)

    # When its download is asked for with redirect=true
    resp = api.call("GET", f"/v1/assets/{asset['id']}/download?redirect=true", follow_redirects=False)

    # Then the answer is a 307 to a signed URL that serves the original's bytes
    assert resp.status_code == 307, resp.text
    location = resp.headers["location"]
    assert location.split("?")[0] == api.ok("GET", f"/v1/assets/{asset['id']}/download")["url"].split("?")[0]
    got = api.client.get(location)
    assert got.status_code == 200 and got.content == data
    # And without it the answer stays JSON
    assert set(api.ok("GET", f"/v1/assets/{asset['id']}/download?redirect=false")) == {"url", "expires_at"}


def test_download_redirect_keeps_the_errors(api: Api) -> None:
    idx = api.index(default_features=["proxy"])
    created = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "a.mp4"})
    resp = api.call(
        "GET", f"/v1/assets/{created['asset']['id']}/download?redirect=true", follow_redirects=False
    )
    assert resp.status_code == 409 and error_code(resp) == "original_not_available"
    resp = api.call("GET", "/v1/assets/ast_nope/download?redirect=true", follow_redirects=False)
    assert resp.status_code == 404 and error_code(resp) == "asset_not_found"
    resp = api.call("GET", "/v1/assets/ast_nope/download?redirect=maybe")
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "redirect"


# ---- error field paths -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {"query": "fish"},
        {"index_id": "idx_x", "query": "fish"},
        {"index_id": "idx_x", "query_text": "a", "query": 1},
    ],
)
def test_an_unknown_body_field_is_named_even_when_called_query(api: Api, body: dict[str, Any]) -> None:
    resp = api.call("POST", "/v1/search", json=body)
    assert resp.status_code == 400 and error_code(resp) == "parameter_unknown"
    assert resp.json()["error"]["field"] == "query"
    assert resp.json()["error"]["message"] == "unknown field: query"


def test_field_paths_keep_names_that_are_also_locations() -> None:
    # A body field named like a location (`path`, `header`) keeps its name; only the location goes.
    err = from_pydantic([{"loc": ("body", "filter", "path"), "msg": "bad", "type": "string_type"}])
    assert err.field == "filter.path"
    err = from_pydantic([{"loc": ("query", "limit"), "msg": "too big", "type": "less_than_equal"}])
    assert err.field == "limit" and err.code == "parameter_invalid"
    err = from_pydantic([{"loc": ("body",), "msg": "Field required", "type": "missing"}])
    assert err.field == "body" and err.code == "parameter_missing"


def test_a_missing_field_is_named_when_nothing_is_unknown(api: Api) -> None:
    resp = api.call("POST", "/v1/search", json={"query_text": "fish"})
    assert resp.status_code == 400 and error_code(resp) == "parameter_missing"
    assert resp.json()["error"]["field"] == "index_id"


# ---- capabilities ----------------------------------------------------------------------------------
def test_capabilities_say_visual_search_needs_a_clip_model(api: Api) -> None:
    # Given a server without a CLIP model (the test runtimes configure none)
    caps = api.ok("GET", "/v1/capabilities")
    # Then visual search is unavailable and says why; transcript search works; features are listed
    assert caps["search_options"]["visual"] == {
        "available": False,
        "reason": "no CLIP model is configured (MEDIAINDEX_CLIP_MODEL_PATH)",
    }
    assert caps["search_options"]["transcription"] == {"available": True, "reason": None}
    assert caps["features"] == ["proxy", "preview", "transcription", "embedding"]
    assert caps["version"] == api.client.get("/v1/health").json()["version"]


def test_capabilities_need_a_key(client: TestClient) -> None:
    resp = client.get("/v1/capabilities")
    assert resp.status_code == 401 and error_code(resp) == "unauthorized"


def _capabilities(data_dir: Path, **settings: Any) -> dict[str, Any]:
    runtime = build_local(make_settings(data_dir, **settings))
    try:
        key = runtime.services.keys.create_key("t")[2]
        with TestClient(build_app(runtime, close_on_shutdown=False), base_url=BASE_URL) as c:
            resp = c.get("/v1/capabilities", headers={"Authorization": f"Bearer {key}"})
            assert resp.status_code == 200, resp.text
            return dict(resp.json()["search_options"])
    finally:
        runtime.close()


def test_capabilities_follow_the_configured_models(tmp_path: Path) -> None:
    # Given a CLIP model folder that exists, without loading it
    clip = tmp_path / "clip"
    clip.mkdir()
    assert _capabilities(tmp_path / "a", clip_model_path=clip)["visual"] == {
        "available": True,
        "reason": None,
    }
    # Given model paths that do not exist, each says so
    missing = _capabilities(
        tmp_path / "b", clip_model_path=tmp_path / "gone", text_model_path=tmp_path / "none"
    )
    assert missing["visual"] == {
        "available": False,
        "reason": f"the CLIP model path {tmp_path / 'gone'} does not exist",
    }
    assert missing["transcription"] == {
        "available": False,
        "reason": f"the text model path {tmp_path / 'none'} does not exist",
    }


# ---- the OpenAPI document --------------------------------------------------------------------------
@pytest.fixture
def doc(client: TestClient) -> dict[str, Any]:
    return dict(client.get("/v1/openapi.json").json())


def test_every_operation_has_a_summary_a_description_and_its_errors(doc: dict[str, Any]) -> None:
    for method, path, op in _operations(doc):
        assert op.get("summary") and op.get("description"), (method, path)
        responses = op["responses"]
        if path == "/v1/health":
            assert "security" not in op
            continue
        assert op["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}], (method, path)
        expected = {"401", "429"} | ({"400", "413"} if "requestBody" in op else set())
        if "{" in path:
            expected |= {"404"}
        assert expected <= set(responses), (method, path, sorted(responses))
        assert "422" not in responses
        for status, response in responses.items():
            if status[0] == "4":
                body = response["content"]["application/json"]
                assert body["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
                assert set(body["example"]["error"]) == {"code", "message", "request_id"}


def test_every_field_is_described(doc: dict[str, Any]) -> None:
    undescribed = [
        f"{name}.{field}"
        for name, schema in doc["components"]["schemas"].items()
        for field, prop in schema.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undescribed == []
    form = doc["paths"]["/v1/assets"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert all(p.get("description") for p in form["properties"].values())


def test_the_document_declares_how_keys_are_sent(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["apiKeyHeader"] == {
        **schemes["apiKeyHeader"],
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }


def test_the_transcript_json_schema_is_the_transcript(doc: dict[str, Any]) -> None:
    content = doc["paths"]["/v1/assets/{asset_id}/transcript"]["get"]["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/Transcript"}
    transcript = doc["components"]["schemas"]["Transcript"]
    assert set(transcript["properties"]) == {"language", "duration", "model_id", "segments"}
    assert set(content) == {"application/json", "text/vtt", "application/x-subrip", "text/plain"}


def test_the_api_key_is_still_read_from_either_header(api: Api, client: TestClient) -> None:
    assert client.get("/v1/indexes", headers={"x-api-key": api.key}).status_code == 200
    assert client.get("/v1/indexes", headers={"Authorization": f"bearer {api.key}"}).status_code == 200
    resp = client.get("/v1/indexes", headers={"Authorization": f"Basic {api.key}"})
    assert resp.status_code == 401 and error_code(resp) == "unauthorized"


# ---- the docs page, self-hosted ---------------------------------------------------------------------
def test_the_docs_page_needs_nothing_but_this_server(client: TestClient, runtime: Runtime) -> None:
    # Given the page
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # Then its CSP is the app's strict one, and it holds no inline script or style
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp and "unsafe-inline" not in csp
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all('src="/' in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in page.text and "style=" not in page.text
    # And every file it loads is served here, the document's URL included
    urls = re.findall(r'(?:src|href|data-openapi-url)="([^"]+)"', page.text)
    assert urls and all(u.startswith("/") for u in urls)
    for url in urls:
        resp = client.get(url)
        assert resp.status_code == 200 and resp.content, url
    init = client.get("/docs/init.js")
    assert init.headers["content-type"].startswith("text/javascript") and "SwaggerUIBundle" in init.text


def test_the_docs_page_links_under_the_apps_root_path(runtime: Runtime) -> None:
    # Given the app mounted under a prefix (an API Gateway stage, a reverse proxy's path)
    with TestClient(build_app(runtime, close_on_shutdown=False), base_url=BASE_URL, root_path="/prod") as c:
        page = c.get("/prod/docs")
        # Then every URL the page loads carries the prefix, and is served there
        urls = re.findall(r'(?:src|href|data-openapi-url)="([^"]+)"', page.text)
        assert urls and all(u.startswith("/prod/") for u in urls), urls
        assert all(c.get(u).status_code == 200 for u in urls)
