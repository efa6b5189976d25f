"""`/docs` in a real Chromium against the local server: Swagger UI renders under the app's strict
Content-Security-Policy from files this server serves, lists every operation of the OpenAPI
document, and its Authorize button takes an API key that "Try it out" then sends.
The screenshot goes to test-artifacts/api-docs.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import LiveServer

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("docs")
    (tmp / "logs").mkdir()
    live = LiveServer(tmp / "data", tmp / "logs", MEDIAINDEX_START_WORKERS="false")
    live.start(create_key="docs")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def page(server: LiveServer) -> Iterator[tuple[Any, list[str], list[str]]]:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server.url + "/docs")
        yield page, errors, requests
        browser.close()


def test_docs_render_every_operation_from_this_server_alone(
    server: LiveServer, page: tuple[Any, list[str], list[str]]
) -> None:
    p, errors, requests = page
    doc = httpx.get(server.url + "/v1/openapi.json").json()
    expected = sum(
        1 for item in doc["paths"].values() for m in item if m in ("get", "put", "post", "patch", "delete")
    )

    # Then every operation of the document is listed, each with its summary
    blocks = p.locator(".opblock")
    expect(blocks).to_have_count(expected, timeout=30_000)
    expect(p.locator(".opblock-summary-path", has_text="/v1/capabilities")).to_have_count(1)
    expect(p.locator(".opblock-summary-description", has_text="What this server can do now")).to_have_count(1)
    # And nothing was blocked by the CSP or fetched from elsewhere
    assert errors == []
    assert requests and all(u.startswith(server.url) for u in requests), requests
    ARTIFACTS.mkdir(exist_ok=True)
    p.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
    assert (ARTIFACTS / "api-docs.png").stat().st_size > 10_000


def test_authorize_takes_a_key_that_try_it_out_sends(
    server: LiveServer, page: tuple[Any, list[str], list[str]]
) -> None:
    p, errors, _ = page
    assert server.key
    # Given the Authorize button, with the two ways a key is sent
    p.click("button.authorize")
    dialog = p.locator(".modal-ux")
    expect(dialog).to_contain_text("bearerAuth")
    expect(dialog).to_contain_text("apiKeyHeader")
    # When the key is given as a bearer token
    dialog.locator("input").first.fill(server.key)
    dialog.locator("button.authorize").first.click()
    dialog.locator("button.btn-done").first.click()

    # And GET /v1/capabilities is tried
    op = p.locator("#operations-meta-capabilities_v1_capabilities_get")
    op.locator(".opblock-summary").click()
    op.locator("button.try-out__btn").click()
    op.locator("button.execute").click()

    # Then the server answered it with the key: 200 and the capabilities
    live = op.locator(".live-responses-table tr.response .response-col_status").first
    expect(live).to_have_text("200", timeout=15_000)
    expect(op.locator(".live-responses-table")).to_contain_text("search_options")
    ARTIFACTS.mkdir(exist_ok=True)
    op.screenshot(path=str(ARTIFACTS / "api-docs-try-it-out.png"))
    assert errors == []
