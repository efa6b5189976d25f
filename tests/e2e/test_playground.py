"""The browser playground, driven by a real Chromium against the local server over HTTP.

Upload a talking clip through the page, see its card in the library with a picture, search a spoken
phrase, see the word marked and a tick on the player's bar, play from the hit, rename and delete it;
a file that is not media ends failed with a plain sentence. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import mediagen

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SENTENCE = "The quick brown fox jumps over the lazy dog beside the quiet river."
PHRASE = "brown fox jumps"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
READY_TIMEOUT_S = 240
PART = 5 * 1024 * 1024
# What the page must never show as a message: raw tool output.
RAW = re.compile(r"ffmpeg|ffprobe|moov atom|Invalid data found|Traceback", re.IGNORECASE)

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)", allow_module_level=True)
if not mediagen.have_tools():
    pytest.skip("ffmpeg, ffprobe or espeak-ng is missing", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mediaindex.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The local server on a free port with a fresh data dir; yields (base url, api key)."""
    data = tmp_path_factory.mktemp("data")
    port = _free_port()
    env = {
        **os.environ,
        "MEDIAINDEX_DATA_DIR": str(data),
        "MEDIAINDEX_PORT": str(port),
        # The smallest parts storage takes, so that a 12 MiB file goes up in three.
        "MEDIAINDEX_MULTIPART_THRESHOLD_BYTES": str(PART),
        "MEDIAINDEX_PART_SIZE_BYTES": str(PART),
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers"), str(ROOT), env.get("PYTHONPATH", "")])
    key = _cli(env, "keys", "create", "--tenant", "t1").strip().splitlines()[-1].strip()
    log = (data / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mediaindex.cli", "serve", "--port", str(port)],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (data / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"{base}/v1/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /v1/health within 60 s"
            time.sleep(0.3)
        yield base, key
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mediagen.talking_video(tmp_path_factory.mktemp("media") / "fox.mp4", SENTENCE, size="320x180")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _capabilities(base: str, key: str) -> dict[str, Any] | None:
    """The server's GET /v1/capabilities, or None where it has none (an older server: 404)."""
    req = urllib.request.Request(f"{base}/v1/capabilities", headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body: dict[str, Any] = json.load(r)
            return body
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


class Session:
    """A browser context (its own local storage) with one tab open on the playground. Records page
    errors and every answer of 400 or above, so that a test can say which ones it expected."""

    def __init__(self, browser: Any, base: str, viewport: dict[str, int] = DESKTOP) -> None:
        self.base = base
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.requests: list[str] = []
        self.context = browser.new_context(viewport=viewport)
        self.page = self.tab()

    def tab(self) -> Any:
        page = self.context.new_page()
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(f"{r.method} {r.url}"))
        page.on(
            "response",
            lambda r: (
                self.failed.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None
            ),
        )
        page.goto(self.base + "/")
        return page

    def use_key(self, key: str) -> None:
        self.page.fill("#api-key", key)
        self.page.click("#save-key")

    def use_key_and_wait(self, key: str) -> None:
        self.use_key(key)
        expect(self.page.locator("#library")).to_have_attribute("data-loaded", "true")

    def new_index(self, name: str) -> None:
        page = self.page
        if page.locator("#index-form").is_hidden():
            page.click("#new-index-toggle")
        page.fill("#new-index-name", name)
        page.click("#create-index")
        # The new index is selected (not merely some index: an earlier test's may be selected already)
        expect(page.locator("#index-select option:checked")).to_have_text(name)
        expect(page.locator("#index-select")).to_have_value(re.compile(r"^idx_"))
        expect(page.locator("#library")).to_have_attribute("data-loaded", "true")

    def upload(self, path: Path) -> Any:
        self.page.set_input_files("#file-input", str(path))
        return self.page.locator('[data-testid="asset-card"]').filter(
            has=self.page.locator('[data-testid="asset-name"]', has_text=path.name)
        )

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"playground-{name}.png"), full_page=True)

    def unexpected(self, *allowed: str) -> list[str]:
        """Failed answers other than the allowed URL patterns; console lines about them are left out."""
        bad = [f for f in self.failed if not any(re.search(a, f) for a in allowed)]
        errs = [e for e in self.errors if not e.startswith("Failed to load resource")]
        return bad + errs

    def close(self) -> None:
        self.context.close()


def _fits_phone(page: Any) -> None:
    page.set_viewport_size(PHONE)
    # Layout settles on the next frame after a resize.
    page.wait_for_function(f"document.documentElement.scrollWidth <= {PHONE['width']}", timeout=3000)


def test_upload_search_play_from_the_hit_rename_and_delete(
    server: tuple[str, str], browser: Any, clip: Path
) -> None:
    base, key = server
    s = Session(browser, base)
    page = s.page

    # Given a key and a fresh index (a new tenant has none: the form is offered at once)
    s.use_key_and_wait(key)
    s.new_index("talk")
    expect(page.locator('[data-testid="library-empty"]')).to_be_visible()
    s.shot("empty-index")

    # Then the search options say what this server can search
    caps = _capabilities(base, key)
    expect(page.locator("#search-form")).to_have_attribute(
        "data-capabilities", "assumed" if caps is None else "server"
    )
    visual = page.locator("#opt-visual")
    if caps is not None and not caps["search_options"]["visual"]["available"]:
        expect(visual).to_be_disabled()
        expect(visual).not_to_be_checked()
        reason = caps["search_options"]["visual"]["reason"]
        expect(page.locator('[data-testid="capability-note"]')).to_contain_text(reason)
    else:
        expect(visual).to_be_enabled()

    # When a talking clip is uploaded through the file input
    card = s.upload(clip)
    # Then its card reaches ready, with a picture of the clip and its duration
    expect(card).to_have_attribute("data-status", "ready", timeout=READY_TIMEOUT_S * 1000)
    expect(card.locator('[data-testid="asset-status"]')).to_have_text(re.compile(r"^Ready"))
    expect(card.locator('[data-testid="asset-duration"]')).to_have_text(re.compile(r"^0:0[3-9]$"))
    pic = card.locator(".card-pic:not(.none)")
    expect(pic).to_be_visible()
    drawn = pic.evaluate(
        "el => el.tagName === 'IMG' ? el.complete && el.naturalWidth > 0"
        " : getComputedStyle(el).backgroundImage"
    )
    assert drawn is True or "url(" in str(drawn), drawn
    s.shot("library")

    # When a spoken phrase is searched
    page.fill("#search-input", PHRASE)
    page.click("#search-button")
    hit = page.locator('[data-testid="hit"]').first
    expect(hit).to_be_visible(timeout=30_000)
    # Then the hit names the clip and marks the words of the query it holds
    expect(hit).to_contain_text(clip.name)
    marks = hit.locator('[data-testid="hit-text"] mark')
    expect(marks.first).to_be_visible()
    marked = {m.lower() for m in marks.all_inner_texts()}
    assert {"brown", "fox"} <= marked, marked
    expect(hit.locator(".hit-pic")).to_be_visible()
    s.shot("search")
    start = float(hit.get_attribute("data-start") or "nan")
    end = float(hit.get_attribute("data-end") or "nan")
    assert 0 <= start <= end

    # When the first hit is opened
    hit.click()
    player = page.locator("#player")
    expect(player).to_have_attribute("data-seeked", re.compile(r".+"), timeout=30_000)
    now = float(player.evaluate("m => m.currentTime"))

    # Then the proxy plays from inside the hit, with one seek bar carrying a tick per hit
    assert start - 0.5 <= now <= end + 0.5, (now, start, end)
    assert player.get_attribute("controls") is None
    hits_here = page.locator(f'[data-testid="hit"][data-asset-id="{hit.get_attribute("data-asset-id")}"]')
    expect(page.locator('[data-testid="marker"]')).to_have_count(hits_here.count())
    starts = {
        float(m)
        for m in page.locator('[data-testid="marker"]').evaluate_all("ms => ms.map(m => m.dataset.start)")
    }
    assert start in starts, (start, starts)
    # And the player fits the screen beside the results
    box = player.bounding_box()
    assert box is not None
    assert box["height"] <= DESKTOP["height"] * 0.6 + 1 and box["width"] < DESKTOP["width"] * 0.5, box
    assert box["y"] + box["height"] <= DESKTOP["height"], box
    transcript = page.locator('[data-testid="transcript"]')
    expect(transcript).to_contain_text("fox", ignore_case=True)
    expect(transcript.locator("li.active")).to_have_count(1, timeout=10_000)

    # And hovering the bar shows a storyboard tile
    timeline = page.locator("#timeline")
    tl = timeline.bounding_box()
    assert tl is not None
    timeline.hover(position={"x": tl["width"] * 0.5, "y": tl["height"] / 2})
    expect(page.locator('[data-testid="storyboard-preview"]')).to_be_visible()
    s.shot("player")

    # And the page fits a phone
    _fits_phone(page)
    s.shot("player-phone")
    page.set_viewport_size(DESKTOP)

    # When the original is downloaded from its card
    with page.expect_download() as got:
        card.locator('[data-testid="download"]').click()
    # Then the browser saves the very bytes that were uploaded
    assert Path(got.value.path()).read_bytes() == clip.read_bytes()

    # When a rename drops the extension
    card.locator('[data-testid="rename"]').click()
    page.fill('[data-testid="rename-input"]', "river fox")
    page.keyboard.press("Enter")
    # Then the page says why in plain words, and the form stays open to fix it
    error = page.locator('[data-testid="status"][data-kind="error"]')
    expect(error).to_contain_text("File names need an extension")
    assert not RAW.search(error.inner_text())

    # When the clip is renamed properly
    page.fill('[data-testid="rename-input"]', "river fox.mp4")
    page.keyboard.press("Enter")
    renamed = page.locator('[data-testid="asset-card"]').filter(has_text="river fox.mp4")
    # Then the card and the open player carry the new name
    expect(renamed).to_have_count(1)
    expect(page.locator('[data-testid="asset-title"]')).to_have_text("river fox.mp4")

    # When it is deleted, and the deletion confirmed
    renamed.locator('[data-testid="delete"]').click()
    page.locator('[data-testid="confirm-ok"]').click()
    # Then its card, its hits and the player are gone, and the index reads empty
    expect(page.locator('[data-testid="asset-card"]')).to_have_count(0)
    expect(page.locator('[data-testid="hit"]')).to_have_count(0)
    expect(page.locator('[data-testid="viewer"]')).to_be_hidden()
    expect(page.locator('[data-testid="library-empty"]')).to_be_visible()
    s.shot("deleted")
    assert s.unexpected(r"/v1/capabilities$", r"^400 PATCH .*/v1/assets/ast_\w+$") == []
    s.close()


def test_a_big_file_goes_up_in_parts_and_a_bad_one_says_why_in_plain_words(
    server: tuple[str, str], browser: Any, tmp_path: Path
) -> None:
    # Given a 12 MiB file that is not media
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(os.urandom(12 * 1024 * 1024))
    s = Session(browser, server[0])
    s.use_key_and_wait(server[1])
    s.new_index("parts")

    # When it is uploaded through the page
    card = s.upload(noise)

    # Then it ends failed with a plain sentence, the server's words kept under Details
    expect(card).to_have_attribute("data-status", "failed", timeout=60_000)
    status = card.locator('[data-testid="asset-status"]')
    expect(status).to_have_text(re.compile(r"damaged or incomplete|not a video, audio file or image"))
    assert not RAW.search(status.inner_text())
    details = card.locator("details")
    expect(details.locator("pre")).to_be_hidden()
    expect(details.locator("pre")).to_contain_text(re.compile(r"code: (media_corrupt|unsupported_media)"))
    # And it went up in three parts, straight to storage, and was completed once
    puts = [r for r in s.requests if r.startswith("PUT ")]
    assert len(puts) == 3, puts
    assert not any("/v1/" in r for r in puts)
    assert len([r for r in s.requests if r.startswith("POST ") and r.endswith("/upload/complete")]) == 1
    s.shot("failed")
    _fits_phone(s.page)
    s.shot("failed-phone")
    assert s.unexpected(r"/v1/capabilities$") == []
    s.close()


def test_the_key_is_kept_across_tabs_until_forgotten(server: tuple[str, str], browser: Any) -> None:
    base, key = server
    s = Session(browser, base)
    # Given no key: a welcome note, and no workspace
    expect(s.page.locator('[data-testid="welcome"]')).to_be_visible()
    s.shot("welcome")

    # When a key is used in one tab
    s.use_key(key)
    expect(s.page.locator("#key-saved")).to_be_visible()
    # Then a second tab of this browser starts with it, and says where it is kept
    other = s.tab()
    expect(other.locator("#key-saved")).to_be_visible()
    expect(other.locator('[data-testid="welcome"]')).to_be_hidden()
    expect(other.locator("#key-note")).to_contain_text("kept in this browser")

    # When it is forgotten in the second tab
    other.locator('[data-testid="forget-key"]').click()
    # Then this browser no longer keeps it, and the first tab follows
    assert other.evaluate("Object.keys(localStorage).filter(k => k.includes('apiKey'))") == []
    expect(s.page.locator('[data-testid="welcome"]')).to_be_visible()
    expect(s.page.locator("#api-key")).to_have_value("")

    # When a key the server does not know is used
    s.use_key("mi_not_a_key")
    # Then the page says so in plain words
    expect(s.page.locator("#welcome-problem")).to_contain_text("This API key was not accepted")
    s.shot("bad-key")
    assert s.unexpected(r"/v1/indexes\?", r"/v1/capabilities$") == []
    s.close()


@pytest.mark.parametrize(
    ("status", "code", "shown"),
    [
        (404, "route_not_found", None),  # an older server, without the route: no error to show
        (503, "service_unavailable", "A service the server needs is not available"),
    ],
)
def test_without_an_answer_on_capabilities_both_searches_are_offered(
    server: tuple[str, str], browser: Any, status: int, code: str, shown: str | None
) -> None:
    base, key = server
    s = Session(browser, base)
    # Given a server whose GET /v1/capabilities answers with an error
    body = {"error": {"code": code, "message": "no", "request_id": "req_x"}}
    s.context.route(
        re.compile(r".*/v1/capabilities$"),
        lambda route: route.fulfill(status=status, content_type="application/json", body=json.dumps(body)),
    )
    # When the page starts with a key
    s.use_key(key)
    # Then both search options are offered, with no note
    expect(s.page.locator("#search-form")).to_have_attribute("data-capabilities", "assumed")
    expect(s.page.locator("#opt-visual")).to_be_enabled()
    expect(s.page.locator("#opt-visual")).to_be_checked()
    expect(s.page.locator("#opt-transcription")).to_be_enabled()
    expect(s.page.locator('[data-testid="capability-note"]')).to_be_hidden()
    # And an error other than 404 is said in plain words
    errors = s.page.locator('[data-testid="status"][data-kind="error"]')
    if shown is None:
        expect(errors).to_have_count(0)
    else:
        expect(errors).to_contain_text(shown)
        expect(errors.locator("pre")).to_contain_text(f"code: {code}")
    assert s.unexpected(r"/v1/capabilities$") == []
    s.close()


def test_an_upload_storage_refuses_says_so_and_can_be_dismissed(
    server: tuple[str, str], browser: Any, tmp_path: Path
) -> None:
    base, key = server
    s = Session(browser, base)
    s.use_key_and_wait(key)
    s.new_index("refused")
    # Given storage that refuses every upload
    s.context.route(
        re.compile(r".*/_blobs/.*"),
        lambda route: (
            route.fulfill(status=503, body="") if route.request.method == "PUT" else route.continue_()
        ),
    )
    still = mediagen.image(tmp_path / "still.png", size="64x48")

    # When a file is uploaded
    s.page.set_input_files("#file-input", str(still))
    # Then its row says the upload failed, in plain words
    row = s.page.locator('[data-testid="upload-item"][data-name="still.png"]')
    expect(row).to_have_attribute("data-status", "upload_failed")
    expect(row.locator('[data-testid="upload-error"]')).to_contain_text("Upload failed:")
    assert not RAW.search(row.inner_text())
    s.shot("upload-refused")
    expect(row.locator('[data-testid="upload-error"]')).to_contain_text("Storage did not accept the upload")
    # And no empty asset is left behind
    expect(s.page.locator('[data-testid="asset-card"]')).to_have_count(0)
    expect(s.page.locator('[data-testid="library-empty"]')).to_be_visible()
    # And the row can be dismissed
    row.get_by_role("button", name="Dismiss").click()
    expect(row).to_have_count(0)
    assert s.unexpected(r"^503 PUT .*/_blobs/") == []
    s.close()
