"""Reliability, round two (the API's share), on both runtimes: request bodies are read only after
the key is checked and never past their cap or deadline; content types, index names and asset
names are checked; cursors and search filters that made 500s are 400s; JSON bodies are strict.
The live-server half (a real socket, the server's RSS) is tests/reliability/test_body_limits.py;
the index-name rules over data of the previous release are tests/contract/test_index_names.py."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mediaindex.api import strict_json
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local
from tests.apiclient import Api, error_code
from tests.functional.conftest import BASE_URL, make_settings

MiB = 1024 * 1024
CHUNK = 64 * 1024


# ---- a request straight into the ASGI app, its body streamed chunk by chunk ------------------------
class Streamed:
    """What came back from `asgi()`: status, headers, JSON body, and how many body chunks the app
    asked for (`receive` calls that returned a body)."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.chunks_read = 0

    def json(self) -> Any:
        return json.loads(self.body)


def asgi(
    app: Any,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Iterator[bytes] | None = None,
    *,
    stall_after: int | None = None,
) -> Streamed:
    """Sends `chunks` as the body (more_body until they end); `stall_after`: after that many
    chunks, the client goes quiet without ending the body (a slowloris)."""
    out = Streamed()
    ended = False

    async def receive() -> dict[str, Any]:
        nonlocal ended
        if ended:
            await asyncio.sleep(3600)
        if stall_after is not None and out.chunks_read >= stall_after:
            await asyncio.sleep(3600)
        chunk = next(chunks, None) if chunks is not None else None
        if chunk is None:
            ended = True
            return {"type": "http.request", "body": b"", "more_body": False}
        out.chunks_read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out.status = message["status"]
            out.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            out.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    return out


def endless(chunk: bytes = b" " * CHUNK) -> Iterator[bytes]:
    while True:
        yield chunk


def padded(doc: dict[str, Any], size: int) -> bytes:
    """`doc` as JSON, padded with spaces to exactly `size` bytes (whitespace is valid JSON)."""
    raw = json.dumps(doc).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def fullwidth(text: str) -> str:
    """ASCII letters as their FULLWIDTH forms (U+FF21...), which NFKC folds back."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalpha() else c for c in text)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


# ---- 1. bodies: key first, then the cap ----------------------------------------------------------------
@pytest.mark.parametrize("auth", [{}, {"Authorization": "Bearer mi_not_a_key"}, {"x-api-key": "wrong"}])
def test_a_body_without_a_valid_key_is_refused_before_one_byte_is_read(
    client: TestClient, auth: dict[str, str]
) -> None:
    for framing in ({"transfer-encoding": "chunked"}, {"content-length": str(300 * MiB)}):
        headers = {"content-type": "application/json", **framing, **auth}
        out = asgi(client.app, "POST", "/v1/indexes", headers, endless())
        assert out.status == 401 and out.json()["error"]["code"] == "unauthorized", out.body
        assert out.chunks_read == 0  # the body was never asked for
        assert out.headers["connection"] == "close" and out.headers["x-request-id"]


def test_an_oversized_body_is_413_with_the_one_error_body(api: Api, runtime: Runtime) -> None:
    cap = runtime.settings.max_json_body_bytes
    body = padded({"name": "big"}, cap + 1)
    resp = api.call("POST", "/v1/indexes", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 413 and error_code(resp) == "payload_too_large", resp.text
    assert str(cap) in resp.json()["error"]["message"]
    assert api.ok("GET", "/v1/indexes")["data"] == []
    # Search has a cap of its own, well below
    idx = api.index()
    search = padded({"index_id": idx["id"], "query_text": "x"}, runtime.settings.max_search_body_bytes + 1)
    resp = api.call("POST", "/v1/search", content=search, headers={"content-type": "application/json"})
    assert resp.status_code == 413 and error_code(resp) == "payload_too_large", resp.text


def test_a_body_just_under_the_cap_works(api: Api, runtime: Runtime) -> None:
    cap = runtime.settings.max_json_body_bytes
    resp = api.call(
        "POST",
        "/v1/indexes",
        content=padded({"name": "edge"}, cap),
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 201, resp.text
    search = padded(
        {"index_id": resp.json()["id"], "query_text": "x", "search_options": ["transcription"]},
        runtime.settings.max_search_body_bytes,
    )
    resp = api.call("POST", "/v1/search", content=search, headers={"content-type": "application/json"})
    assert resp.status_code == 200, resp.text


def test_a_streamed_body_is_cut_off_at_the_cap(api: Api, runtime: Runtime) -> None:
    """No Content-Length (chunked): the guard counts the bytes and stops at the cap."""
    cap = runtime.settings.max_json_body_bytes
    headers = {**api.headers, "content-type": "application/json", "transfer-encoding": "chunked"}
    out = asgi(api.client.app, "POST", "/v1/indexes", headers, endless())
    assert out.status == 413 and out.json()["error"]["code"] == "payload_too_large", out.body
    assert out.chunks_read <= cap // CHUNK + 1
    assert out.headers["connection"] == "close"
    assert api.ok("GET", "/v1/indexes")["data"] == []


def test_a_streamed_form_is_cut_off_at_the_form_limit(api: Api, runtime: Runtime) -> None:
    idx = api.index()
    limit = runtime.settings.max_form_upload_bytes
    head = (
        b'--b\r\nContent-Disposition: form-data; name="index_id"\r\n\r\n' + idx["id"].encode() + b"\r\n"
        b'--b\r\nContent-Disposition: form-data; name="asset_file"; filename="a.mp4"\r\n'
        b"Content-Type: video/mp4\r\n\r\n"
    )
    chunks = itertools.chain([head], endless(b"\0" * CHUNK))
    headers = {
        **api.headers,
        "content-type": "multipart/form-data; boundary=b",
        "transfer-encoding": "chunked",
    }
    out = asgi(api.client.app, "POST", "/v1/assets", headers, chunks)
    assert out.status == 413 and out.json()["error"]["code"] == "asset_file_too_large", out.body
    assert out.chunks_read <= (limit + 64 * 1024) // CHUNK + 2
    assert api.ok("GET", "/v1/assets")["data"] == []


def test_a_declared_length_over_the_cap_is_refused_unread(api: Api) -> None:
    headers = {**api.headers, "content-type": "application/json", "content-length": str(300 * MiB)}
    out = asgi(api.client.app, "POST", "/v1/indexes", headers, endless())
    assert out.status == 413 and out.json()["error"]["code"] == "payload_too_large"
    assert out.chunks_read == 0


def test_a_content_length_that_is_not_a_number_is_400(api: Api) -> None:
    headers = {**api.headers, "content-type": "application/json", "content-length": "12abc"}
    out = asgi(api.client.app, "POST", "/v1/indexes", headers, iter([b'{"name": "x"}']))
    assert out.status == 400 and out.json()["error"]["field"] == "Content-Length"


def test_the_upload_complete_call_takes_ten_thousand_parts(api: Api) -> None:
    parts = [{"part_number": n, "etag": '"' + "e" * 198 + '"'} for n in range(1, 10_001)]
    body = json.dumps({"parts": parts}).encode()
    assert len(body) > 2 * MiB
    resp = api.call(
        "POST",
        "/v1/assets/ast_missing/upload/complete",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 404 and error_code(resp) == "asset_not_found", resp.text


def test_a_body_that_trickles_is_cut_off_at_its_deadline(data_dir: Path) -> None:
    runtime = build_local(make_settings(data_dir, body_read_timeout_s=0.5))
    try:
        app = build_app(runtime, close_on_shutdown=False)
        key = runtime.services.keys.create_key("acme")[2]
        headers = {
            "authorization": f"Bearer {key}",
            "content-type": "application/json",
            "content-length": "40",
        }
        t0 = time.monotonic()
        out = asgi(app, "POST", "/v1/indexes", headers, iter([b'{"na']), stall_after=1)
        took = time.monotonic() - t0
        assert out.status == 408 and out.json()["error"]["code"] == "request_timeout", out.body
        assert took < 5 and out.headers["connection"] == "close"
        assert (
            runtime.services.indexes.list_indexes(
                runtime.services.keys.authenticate(key).tenant_id, limit=10, cursor=None
            ).data
            == []
        )
    finally:
        runtime.close()


# ---- 2. content types ------------------------------------------------------------------------------
BAD_CONTENT_TYPES = [
    "video/mp4\r\nX-Evil: 1",
    "video/mp4\n",
    "vidéo/mp4",
    "video/mp4\u2028",
    "视频/mp4",
    "text/html",
    "text/html; charset=utf-8",
    "image/svg+xml",
    "application/javascript",
    "video/mp4;",
    " video/mp4",
    "",
]


@pytest.mark.parametrize("content_type", BAD_CONTENT_TYPES, ids=lambda v: repr(v)[:30])
def test_a_content_type_off_the_list_is_refused(api: Api, content_type: str) -> None:
    idx = api.index()
    resp = api.call(
        "POST", "/v1/assets", json={"index_id": idx["id"], "name": "a.mp4", "content_type": content_type}
    )
    assert resp.status_code == 400 and error_code(resp) == "content_type_invalid", resp.text
    assert resp.json()["error"]["field"] == "content_type"
    assert api.ok("GET", "/v1/assets")["data"] == []


@pytest.mark.parametrize(
    "content_type",
    ["video/mp4", "Video/MP4", "audio/mpeg", "image/png", "application/octet-stream",
     'video/mp4; codecs="avc1.42E01E, mp4a.40.2"'],
)  # fmt: skip
def test_a_media_content_type_is_taken_and_signed_as_sent(api: Api, content_type: str) -> None:
    idx = api.index()
    out = api.ok(
        "POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "a.mp4", "content_type": content_type}
    )
    assert out["asset"]["content_type"] == content_type
    assert {k.lower(): v for k, v in out["upload"]["headers"].items()}["content-type"] == content_type


def test_a_form_file_sent_as_a_web_page_is_refused(api: Api) -> None:
    idx = api.index()
    resp = api.call(
        "POST",
        "/v1/assets",
        data={"index_id": idx["id"], "name": "a.mp4"},
        files={"asset_file": ("a.mp4", b"<script>alert(1)</script>", "text/html")},
    )
    assert resp.status_code == 400 and error_code(resp) == "content_type_invalid", resp.text
    assert api.ok("GET", "/v1/assets")["data"] == []


def test_a_guessed_content_type_is_never_a_web_page(api: Api) -> None:
    idx = api.index()
    for name in ("page.html", "img.svg", "clip.ts"):
        asset = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": name})["asset"]
        assert asset["content_type"] == ("video/mp2t" if name == "clip.ts" else "application/octet-stream")


# ---- 3. cursors and filters that were 500s ------------------------------------------------------------
BAD_CURSORS = {
    "nested": b64("[" * 1500),
    "nested object": b64('{"a":' * 300),
    "too long": "A" * 5000,
    "lone surrogate": b64('{"id":"\\ud800"}'),
    "id not a string": b64('{"id":["x"]}'),
    "huge start": b64('{"id":"seg_x","start":' + str(2**70) + "}"),
    "infinite start": b64('{"id":"seg_x","start":1e400}'),
    "dynamo shape, surrogate": b64('{"pk":{"S":"\\udfff"},"sk":{"S":"x"}}'),
    "not base64": "%%%",
}


@pytest.mark.parametrize("cursor", BAD_CURSORS.values(), ids=list(BAD_CURSORS))
def test_a_malformed_cursor_is_400_on_every_list(api: Api, cursor: str) -> None:
    idx = api.index()
    asset = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "a.mp4"})["asset"]
    for path in (
        "/v1/indexes",
        "/v1/assets",
        "/v1/tasks",
        "/v1/tasks/active",
        f"/v1/assets/{asset['id']}/segments",
    ):
        resp = api.call("GET", path, params={"cursor": cursor})
        assert resp.status_code == 400 and error_code(resp) == "cursor_invalid", (path, resp.text)
    resp = api.call("POST", "/v1/search", json={"index_id": idx["id"], "query_text": "x", "cursor": cursor})
    assert resp.status_code == 400 and error_code(resp) == "cursor_invalid", resp.text


def test_search_filter_keys_are_capped(api: Api) -> None:
    idx = api.index()

    def search(user_metadata: dict[str, Any]) -> Any:
        body = {
            "index_id": idx["id"],
            "query_text": "x",
            "search_options": ["transcription"],
            "filter": {"user_metadata": user_metadata},
        }
        return api.call("POST", "/v1/search", json=body)

    assert search({f"k{i}": i for i in range(32)}).status_code == 200
    resp = search({f"k{i}": i for i in range(33)})
    assert resp.status_code == 400 and error_code(resp) == "search_filter_too_large", resp.text
    assert resp.json()["error"]["field"] == "filter.user_metadata"
    resp = search({f"k{i}": i for i in range(10_000)})  # 160 KB: over the search body cap first
    assert resp.status_code == 413 and error_code(resp) == "payload_too_large"
    resp = search({"k": {"nested": 1}})
    assert resp.status_code == 400 and error_code(resp) == "parameter_invalid"


def test_ten_thousand_filter_keys_are_400_not_an_expression_tree_500(data_dir: Path) -> None:
    """The case as reported (SQLite: "Expression tree is too large"), with the body cap raised so
    only the filter cap stands in the way."""
    runtime = build_local(make_settings(data_dir, max_search_body_bytes=4 * MiB))
    try:
        with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as client:
            api = Api(client, runtime.services.keys.create_key("acme")[2])
            idx = api.index()
            body = {
                "index_id": idx["id"],
                "query_text": "x",
                "filter": {"user_metadata": {f"k{i}": i for i in range(10_000)}},
            }
            resp = api.call("POST", "/v1/search", json=body)
            assert resp.status_code == 400 and error_code(resp) == "search_filter_too_large", resp.text
    finally:
        runtime.close()


# ---- 4. index and asset names -------------------------------------------------------------------------
BAD_NAMES = [
    "a\x00b",
    "a\nb",
    "a\rb",
    "a\x1b[31mb",
    "a\x7fb",
    "a\x85b",
    "a\u202eb",
    "a\u202ab",
    "a\u2066b",
    "a\u2069b",
    "   ",
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda v: repr(v))
def test_index_names_with_control_or_bidi_characters_are_refused(api: Api, name: str) -> None:
    resp = api.call("POST", "/v1/indexes", json={"name": name})
    assert resp.status_code == 400 and error_code(resp) == "index_name_invalid", resp.text
    assert resp.json()["error"]["field"] == "name"
    idx = api.index("fine")
    resp = api.call("PATCH", f"/v1/indexes/{idx['id']}", json={"name": name})
    assert resp.status_code == 400 and error_code(resp) == "index_name_invalid", resp.text
    assert [i["name"] for i in api.ok("GET", "/v1/indexes")["data"]] == ["fine"]


def test_index_names_are_nfc_and_unique_whatever_the_case_or_form(api: Api) -> None:
    first = api.index("Cafe\u0301 Clips")  # a combining accent
    assert first["name"] == "Caf\u00e9 Clips"  # stored composed (NFC)
    for variant in (
        "café clips",
        "CAFÉ CLIPS",
        "CAFE\u0301 CLIPS",
        fullwidth("Caf") + "é " + fullwidth("Clips"),
    ):
        resp = api.call("POST", "/v1/indexes", json={"name": variant})
        assert resp.status_code == 409 and error_code(resp) == "index_name_already_exists", (
            variant,
            resp.text,
        )
    other = api.index("other")
    resp = api.call("PATCH", f"/v1/indexes/{other['id']}", json={"name": "CAFÉ clips"})
    assert resp.status_code == 409 and error_code(resp) == "index_name_already_exists"
    # An index may change the case of its own name
    renamed = api.ok("PATCH", f"/v1/indexes/{first['id']}", json={"name": "CAFE\u0301 CLIPS"})
    assert renamed["name"] == "CAF\u00c9 CLIPS"
    assert sorted(i["name"] for i in api.ok("GET", "/v1/indexes")["data"]) == ["CAFÉ CLIPS", "other"]


def test_concurrent_creates_of_one_name_in_many_cases_make_one_index(api: Api, runtime_kind: str) -> None:
    if runtime_kind == "aws":
        pytest.skip(
            "moto is not safe under concurrent transactions; the DynamoDB race is pinned in tests/contract"
        )
    variants = ["Shared", "shared", "SHARED", "sHaReD", "Shared", fullwidth("shared"), "shareD", "SHAREd"]
    codes: list[int] = []
    barrier = threading.Barrier(len(variants))

    def create(name: str) -> None:
        barrier.wait()
        codes.append(api.call("POST", "/v1/indexes", json={"name": name}).status_code)

    threads = [threading.Thread(target=create, args=(v,)) for v in variants]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201] + [409] * (len(variants) - 1)
    assert len(api.ok("GET", "/v1/indexes")["data"]) == 1


@pytest.mark.parametrize("name", ["clip\u202egpj.mp4", "clip\x00.mp4", "clip\u2067.mp4"], ids=repr)
def test_asset_names_with_control_or_bidi_characters_are_refused(api: Api, name: str) -> None:
    idx = api.index()
    resp = api.call("POST", "/v1/assets", json={"index_id": idx["id"], "name": name})
    assert resp.status_code == 400 and error_code(resp) == "asset_name_invalid", resp.text
    asset = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "ok.mp4"})["asset"]
    resp = api.call("PATCH", f"/v1/assets/{asset['id']}", json={"name": name})
    assert resp.status_code == 400 and error_code(resp) == "asset_name_invalid", resp.text


# ---- 5. strict JSON ---------------------------------------------------------------------------------------
COERCIONS = [
    ("/v1/assets", {"name": "a.mp4", "size_bytes": True}, "size_bytes"),
    ("/v1/assets", {"name": "a.mp4", "size_bytes": "10"}, "size_bytes"),
    ("/v1/assets", {"name": "a.mp4", "size_bytes": 10.0}, "size_bytes"),
    ("/v1/assets", {"name": "a.mp4", "save_original": 1}, "save_original"),
    ("/v1/assets", {"name": "a.mp4", "save_original": "false"}, "save_original"),
    ("/v1/assets", {"name": "a.mp4", "features": "proxy"}, "features"),
    ("/v1/assets", {"name": 5}, "name"),
    ("/v1/indexes", {"name": "n", "is_sample": 1}, "is_sample"),
    ("/v1/indexes", {"name": 10}, "name"),
    ("/v1/search", {"query_text": "x", "limit": "5"}, "limit"),
    ("/v1/search", {"query_text": "x", "threshold": "0.5"}, "threshold"),
    ("/v1/search", {"query_text": "x", "filter": {"media_type": 1}}, "filter.media_type"),
    ("/v1/tasks", {"asset_id": "ast_x", "feature_types": "transcription"}, "feature_types"),
    ("/v1/assets/batch-get", {"ids": "ast_x"}, "ids"),
]


@pytest.mark.parametrize(("path", "fields", "field"), COERCIONS, ids=lambda v: str(v)[:40])
def test_json_values_are_not_coerced(api: Api, path: str, fields: dict[str, Any], field: str) -> None:
    idx = api.index()
    body = {"index_id": idx["id"], **fields} if path in ("/v1/assets", "/v1/search") else fields
    resp = api.call("POST", path, json=body)
    assert resp.status_code == 400 and error_code(resp) == "parameter_invalid", resp.text
    assert resp.json()["error"]["field"] == field


def test_the_right_json_types_still_work(api: Api) -> None:
    idx = api.index(is_sample=True)
    body = {"index_id": idx["id"], "name": "a.mp4", "size_bytes": 10, "save_original": False,
            "features": ["proxy"], "user_metadata": {"n": 1.5, "ok": True, "s": "x", "z": None}}  # fmt: skip
    api.ok("POST", "/v1/assets", 201, json=body)
    api.ok("POST", "/v1/search", json={"index_id": idx["id"], "query_text": "x", "threshold": 1, "limit": 5,
                                       "filter": {"media_type": "video"}})  # fmt: skip


@pytest.mark.parametrize(
    ("path", "raw", "why"),
    [
        ("/v1/assets", b'{"index_id": "IDX", "name": "a.mp4", "name": "b.mp4"}', "duplicate key 'name'"),
        (
            "/v1/assets",
            b'{"index_id": "IDX", "name": "a.mp4", "user_metadata": {"k": 1, "k": 2}}',
            "duplicate key 'k'",
        ),
        ("/v1/indexes", b'{"name": "a", "name": "b"}', "duplicate key 'name'"),
        (
            "/v1/search",
            b'{"index_id": "IDX", "index_id": "IDX", "query_text": "x"}',
            "duplicate key 'index_id'",
        ),
        ("/v1/assets", b'{"index_id": "IDX", "name": "a.mp4", "user_metadata": {"k": NaN}}', "NaN"),
        ("/v1/search", b'{"index_id": "IDX", "query_text": "x", "threshold": -Infinity}', "Infinity"),
        ("/v1/indexes", b'{"name": "a\\ud800b"}', "surrogate"),
        # the same surrogate as raw UTF-8-style bytes, which `json` decodes with surrogatepass
        ("/v1/indexes", b'{"name": "a\xed\xa0\x80b"}', "invalid continuation byte"),
        ("/v1/search", b'{"index_id": "IDX", "query_text": "\xed\xa0\x80"}', "invalid continuation byte"),
        (
            "/v1/assets",
            b'{"index_id": "IDX", "name": "a.mp4", "user_metadata": {"\xed\xa0\x80": 1}}',
            "invalid continuation byte",
        ),
        # past a float's range: was inf, stored as null
        ("/v1/assets", b'{"index_id": "IDX", "name": "a.mp4", "user_metadata": {"k": 1e400}}', "1e400"),
        ("/v1/search", b'{"index_id": "IDX", "query_text": "x", "threshold": -1e999}', "out of range"),
        (
            "/v1/assets",
            b'{"index_id": "IDX", "name": "a.mp4", "size_bytes": 1' + b"0" * 5000 + b"}",
            "digits",
        ),
        ("/v1/indexes", b'{"name": "a", "default_features": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested"),
        ("/v1/assets", b'{"index_id": "IDX", "user_metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested"),
    ],
    ids=lambda v: v.decode(errors="backslashreplace")[:40] if isinstance(v, bytes) else str(v)[:20],
)
def test_invalid_json_is_named_not_guessed(api: Api, path: str, raw: bytes, why: str) -> None:
    idx = api.index()
    body = raw.replace(b"IDX", idx["id"].encode())
    resp = api.call("POST", path, content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400 and error_code(resp) == "invalid_json", resp.text
    assert why in resp.json()["error"]["message"]
    assert api.ok("GET", "/v1/assets")["data"] == []
    assert len(api.ok("GET", "/v1/indexes")["data"]) == 1


def test_a_parsed_form_field_holding_a_lone_surrogate_is_invalid_json() -> None:
    # A form's user_metadata reaches `loads` as a str: a surrogate in it is refused, not stored
    with pytest.raises(json.JSONDecodeError) as refused:
        strict_json.loads('{"k": "a\ud800b"}')
    assert "surrogates not allowed" in refused.value.msg
    assert strict_json.loads('{"k": "a\\ud83c\\udfacb"}') == {"k": "a\U0001f3acb"}


def test_a_surrogate_pair_is_a_character_not_an_error(api: Api) -> None:
    resp = api.call(
        "POST",
        "/v1/indexes",
        content=b'{"name": "clips \\ud83c\\udfac"}',
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 201 and resp.json()["name"] == "clips \U0001f3ac", resp.text


# ---- 6. what an attacker tries next -----------------------------------------------------------------
def test_ids_past_64_characters_are_400_on_every_route(api: Api) -> None:
    long = "ast_" + "a" * 3000
    for method, path in (
        ("GET", f"/v1/assets/{long}"),
        ("GET", f"/v1/assets/{long}/segments"),
        ("DELETE", f"/v1/assets/{long}"),
        ("GET", f"/v1/indexes/{long}"),
        ("GET", f"/v1/tasks/{long}"),
    ):
        resp = api.call(method, path)
        assert resp.status_code == 400 and error_code(resp) == "parameter_invalid", (
            path[:30],
            resp.text[:200],
        )
        assert len(resp.content) < 1000  # not an echo of the 3 KB id
    for path, body in (
        ("/v1/assets/batch-get", {"ids": [long]}),
        ("/v1/assets", {"index_id": long, "name": "a.mp4"}),
        ("/v1/tasks", {"asset_id": long, "feature_types": ["transcription"]}),
        ("/v1/search", {"index_id": long, "query_text": "x"}),
    ):
        resp = api.call("POST", path, json=body)
        assert resp.status_code == 400 and error_code(resp) == "parameter_invalid", (path, resp.text[:200])


def test_a_100_kb_path_parameter_is_refused_quickly(api: Api) -> None:
    t0 = time.monotonic()
    out = asgi(api.client.app, "GET", "/v1/assets/" + "a" * 100_000, api.headers)
    assert out.status == 400 and out.json()["error"]["code"] == "parameter_invalid"
    assert time.monotonic() - t0 < 10 and len(out.body) < 1000  # bounded, under CI load too


@pytest.mark.parametrize(
    "raw_id", ["%E2%80%AE", "%ED%A0%80", "%00", "%FF%FE", "ast_%F0%9F%8E%AC", "..%2F..%2Fkeys"]
)
def test_odd_unicode_in_ids_is_a_404(api: Api, raw_id: str) -> None:
    for path in (f"/v1/assets/{raw_id}", f"/v1/indexes/{raw_id}", f"/v1/tasks/{raw_id}"):
        resp = api.call("GET", path)
        assert resp.status_code == 404, (path, resp.text)
        assert error_code(resp) in ("asset_not_found", "index_not_found", "task_not_found", "route_not_found")


@pytest.mark.parametrize("limit", ["0", "-1", "101", "1e9", "1000000000", "abc", "1.5", "", "٣"])
def test_limits_out_of_range_are_400(api: Api, limit: str) -> None:
    for path in ("/v1/indexes", "/v1/assets", "/v1/tasks"):
        resp = api.call("GET", path, params={"limit": limit})
        assert resp.status_code == 400 and error_code(resp) == "parameter_invalid", (path, resp.text)
        assert resp.json()["error"]["field"] == "limit"
    idx = api.index()
    for value in (0, -1, 101, 10**9, 10**30):
        resp = api.call("POST", "/v1/search", json={"index_id": idx["id"], "query_text": "x", "limit": value})
        assert resp.status_code == 400 and error_code(resp) == "parameter_invalid", resp.text


def test_request_ids_are_echoed_only_when_printable(api: Api) -> None:
    assert (
        api.call("GET", "/v1/health", headers={"x-request-id": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    long = api.call("GET", "/v1/health", headers={"x-request-id": "r" * 5000}).headers["x-request-id"]
    assert long == "r" * 100
    for odd in ("caf\xe9", "a\x01b", "   "):
        scope_headers = {"x-request-id": odd}
        out = asgi(api.client.app, "GET", "/v1/health", scope_headers)
        assert out.status == 200 and out.headers["x-request-id"].startswith("req_"), out.headers


def test_a_huge_authorization_header_is_a_plain_401(client: TestClient) -> None:
    resp = client.get("/v1/indexes", headers={"Authorization": "Bearer " + "a" * 200_000})
    assert resp.status_code == 401 and error_code(resp) == "unauthorized"


def test_a_malformed_form_is_a_400_that_names_it(api: Api) -> None:
    resp = api.call(
        "POST",
        "/v1/assets",
        content=b"this is not multipart at all" * 100,
        headers={"content-type": "multipart/form-data; boundary=zz"},
    )
    assert resp.status_code == 400 and error_code(resp) == "parameter_invalid", resp.text
    assert "malformed" in resp.json()["error"]["message"]


@pytest.mark.parametrize("meta", ['{"k": NaN}', '{"k": 1, "k": 2}', '{"k": "\\ud800"}'])
def test_form_user_metadata_is_read_as_strictly_as_a_json_body(api: Api, meta: str) -> None:
    """The form's user_metadata (a JSON string) was read by lax json.loads: NaN was stored (and
    served back as null), a duplicated key silently dropped."""
    idx = api.index()
    resp = api.call(
        "POST",
        "/v1/assets",
        data={"index_id": idx["id"], "name": "a.mp4", "user_metadata": meta},
        files={"asset_file": ("a.mp4", b"123", "video/mp4")},
    )
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "user_metadata", resp.text
    assert api.ok("GET", "/v1/assets")["data"] == []


def test_keep_alive_is_kept_when_the_body_was_read(api: Api) -> None:
    out = asgi(api.client.app, "GET", "/v1/indexes", api.headers)
    assert out.status == 200 and "connection" not in out.headers
    body = json.dumps({"name": "kept"}).encode()
    headers = {**api.headers, "content-type": "application/json", "content-length": str(len(body))}
    out = asgi(api.client.app, "POST", "/v1/indexes", headers, iter([body]))
    assert out.status == 201 and "connection" not in out.headers, out.headers
    # A refusal after the whole body was read keeps the connection too
    headers = {**api.headers, "content-type": "application/json", "transfer-encoding": "chunked"}
    out = asgi(api.client.app, "POST", "/v1/indexes", headers, iter([b"{", b'"name"', b": 5}"]))
    assert out.status == 400 and "connection" not in out.headers
