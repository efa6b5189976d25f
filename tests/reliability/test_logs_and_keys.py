"""Secrets stay out of logs; key checks are constant-time; the playground page carries its security
headers. (Keys hashed at rest and signed-URL binding are tested in tests/functional/test_api_security.py;
the server's own stdout/stderr is checked in test_kill9.py.)"""

from __future__ import annotations

import contextlib
import hmac
import logging
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mediaindex.api.app import RedactSignatures
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import build_local, signing_secret
from mediaindex.domain.errors import UnauthorizedError
from mediaindex.services import keys as keys_module
from tests.apiclient import Api
from tests.functional.conftest import BASE_URL, make_settings

# Client-side loggers of the test's own HTTP client print the URLs it requests; they are not the server.
CLIENT_LOGGERS = ("httpx", "httpcore")


@pytest.fixture
def local(data_dir: Path) -> Iterator[tuple[Runtime, TestClient]]:
    runtime = build_local(make_settings(data_dir))
    with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as client:
        yield runtime, client
    runtime.close()


def _rendered(record: logging.LogRecord) -> str:
    """Everything a handler could print: the message, every `extra` field, the traceback."""
    parts = [record.getMessage(), repr({k: v for k, v in vars(record).items() if k not in ("msg", "args")})]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def test_no_secret_reaches_any_log_line(
    local: tuple[Runtime, TestClient], small_image: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime, client = local
    caplog.set_level(logging.DEBUG)
    # Given a full request cycle: a key is made, bad keys are tried, a file goes up and is processed
    _, _, raw = runtime.services.keys.create_key("acme")
    api = Api(client, raw)
    bad = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    for headers in (
        {"Authorization": f"Bearer {bad}"},
        {"x-api-key": bad},
        {"Authorization": f"Basic {raw}"},
    ):
        denied = client.get("/v1/indexes", headers=headers)
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthorized"
    idx = api.index(default_features=["proxy", "preview"])
    created = api.ok("POST", "/v1/assets", 201, json={"index_id": idx["id"], "name": "still.png"})
    # The second PUT to the one-shot URL is refused (and logged): the URL, its signature included,
    # goes through the refusal path's logging too.
    for expected in (200, 409):
        put = api.put(created["upload"]["url"], small_image.read_bytes(), created["upload"]["headers"])
        assert put.status_code == expected
    runtime.executor.pool.run_until_idle()
    asset_id = created["asset"]["id"]
    download = api.ok("GET", f"/v1/assets/{asset_id}/download")["url"]
    derived = [d["url"] for d in api.ok("GET", f"/v1/assets/{asset_id}/derivatives")["data"]]
    assert client.get(download).status_code == 200
    # An odd request (a 5,000-character id) must not dump the key either
    assert api.call("GET", "/v1/assets/" + "x" * 5000).status_code in (400, 404)

    # Then no server log line holds the key, a bad key, the URL secret or a URL signature
    secret = signing_secret(runtime.settings).decode()
    sigs = [u.split("sig=")[1].split("&")[0] for u in [created["upload"]["url"], download, *derived]]
    server_records = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    assert server_records, "nothing was logged: the capture is not working"
    for record in server_records:
        text = _rendered(record)
        for needle in (raw, bad, raw[7:], secret, *sigs):
            assert needle not in text, (record.name, text[:500])


def test_the_access_log_filter_masks_signatures() -> None:
    # The uvicorn access logger formats (client, method, path, version, status) from args
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5",
            "PUT",
            "/_blobs/originals/a/b/original.mp4?ct=video%2Fmp4&exp=99&sig=SECRETSIG",
            "1.1",
            200,
        ),
        None,
    )
    assert RedactSignatures().filter(record) is True
    assert "SECRETSIG" not in record.getMessage()
    assert "exp=99&sig=REDACTED" in record.getMessage()


def test_key_checks_use_a_constant_time_comparison(
    local: tuple[Runtime, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, client = local
    _, stored, raw = runtime.services.keys.create_key("acme")
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", spy)
    # When a good key authenticates, Then the final equality check went through compare_digest
    assert client.get("/v1/indexes", headers={"x-api-key": raw}).status_code == 200
    assert calls == [(stored.key_hash, stored.key_hash)]

    # And a wrong key costs the same whether it shares a long prefix with the real one or nothing:
    # the lookup is by sha256, so no byte-by-byte comparison of the secret ever happens.
    monkeypatch.undo()
    near = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    far = "mi_" + "Z" * (len(raw) - 3)

    def cost(key: str) -> float:
        t0 = time.perf_counter_ns()
        with contextlib.suppress(UnauthorizedError):  # only the timing matters here
            runtime.services.keys.authenticate(key)
        return float(time.perf_counter_ns() - t0)

    for _ in range(50):  # warm up caches and the connection
        cost(near), cost(far)
    near_t, far_t = [], []
    for _ in range(1500):  # interleaved so machine noise hits both alike
        near_t.append(cost(near))
        far_t.append(cost(far))
    ratio = statistics.median(near_t) / statistics.median(far_t)
    near_us, far_us = statistics.median(near_t) / 1e3, statistics.median(far_t) / 1e3
    print(f"auth median near={near_us:.1f} us far={far_us:.1f} us")
    assert 0.67 < ratio < 1.5, ratio


def test_playground_page_has_security_headers(local: tuple[Runtime, TestClient]) -> None:
    _, client = local
    for path in ("/", "/v1/health", "/no/such/route"):
        resp = client.get(path)
        csp = resp.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, (path, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "no-referrer"
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # The page loads only same-origin scripts, so the CSP above does not break it
    assert "<script>" not in page.text.replace(" ", "")
