"""The browser playground, driven by a real Chromium against the local server over HTTP.

Upload a talking clip through the page, watch it reach ready, search a spoken phrase, open the first
hit and check that the player stands inside the hit's time range. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
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
READY_TIMEOUT_S = 240
PART = 5 * 1024 * 1024

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


class Session:
    """One tab of the playground with its key saved and an index picked; records console errors."""

    def __init__(self, browser: Any, base: str, key: str, index_name: str) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page = page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(f"{r.method} {r.url}"))
        page.goto(base + "/")
        page.fill("#api-key", key)
        page.click("#save-key")
        page.fill("#new-index-name", index_name)
        page.click("#create-index")
        expect(page.locator("#index-select")).to_have_value(re.compile(r"^idx_"))

    def upload(self, path: Path) -> Any:
        self.page.set_input_files("#file-input", str(path))
        item = self.page.locator(f'[data-testid="upload-item"][data-name="{path.name}"]')
        expect(item.locator("progress")).to_have_attribute("value", "1", timeout=60_000)
        return item

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"playground-{name}.png"), full_page=True)


def test_upload_search_and_play_from_the_hit(server: tuple[str, str], browser: Any, clip: Path) -> None:
    # Given a key and a fresh index
    s = Session(browser, *server, "talk")
    page = s.page

    # When a talking clip is uploaded through the file input
    item = s.upload(clip)
    # Then its feature states update until it is ready
    expect(item).to_have_attribute("data-status", "ready", timeout=READY_TIMEOUT_S * 1000)
    states = item.locator('[data-testid="feature-state"]')
    assert "completed" in [states.nth(i).get_attribute("data-state") for i in range(states.count())]
    s.shot("upload")

    # When a spoken phrase is searched
    page.fill("#search-input", PHRASE)
    page.click("#search-button")
    hit = page.locator('[data-testid="hit"]').first
    expect(hit).to_be_visible(timeout=30_000)
    expect(hit).to_contain_text("fox", ignore_case=True)
    s.shot("search")
    start = float(hit.get_attribute("data-start") or "nan")
    end = float(hit.get_attribute("data-end") or "nan")
    assert 0 <= start <= end

    # And the first hit is opened
    hit.click()
    player = page.locator("#player")
    expect(player).to_have_attribute("data-seeked", re.compile(r".+"), timeout=30_000)
    now = float(player.evaluate("m => m.currentTime"))

    # Then the proxy plays from inside the hit, and the transcript shows and follows what was said
    assert start - 0.5 <= now <= end + 0.5, (now, start, end)
    transcript = page.locator('[data-testid="transcript"]')
    expect(transcript).to_contain_text("fox", ignore_case=True)
    expect(transcript.locator("li.active")).to_have_count(1, timeout=10_000)
    expect(page.locator('[data-testid="derivatives"] [data-kind="proxy"]')).to_have_count(1)

    # And hovering the timeline shows a storyboard tile
    timeline = page.locator("#timeline")
    timeline.scroll_into_view_if_needed()
    box = timeline.bounding_box()
    assert box is not None
    timeline.hover(position={"x": box["width"] * 0.5, "y": box["height"] / 2})
    expect(page.locator('[data-testid="storyboard-preview"]')).to_be_visible()
    s.shot("asset")

    # And the page fits a phone
    page.set_viewport_size({"width": 390, "height": 844})
    # Layout settles on the next frame after a resize.
    page.wait_for_function("document.documentElement.scrollWidth <= 390", timeout=3000)
    s.shot("phone")
    page.close()
    assert s.errors == []


def test_a_big_file_goes_up_in_parts_and_a_bad_one_ends_failed(
    server: tuple[str, str], browser: Any, tmp_path: Path
) -> None:
    # Given a 12 MiB file that is not media
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(os.urandom(12 * 1024 * 1024))
    s = Session(browser, *server, "parts")

    # When it is uploaded through the page
    item = s.upload(noise)

    # Then it ends failed with a reason shown
    expect(item).to_have_attribute("data-status", "failed", timeout=60_000)
    expect(item.locator('[data-testid="asset-status"]')).to_have_text("failed")
    expect(item).to_contain_text(re.compile(r"media_corrupt|unsupported_media"))
    # And it went up in three parts, straight to storage, and was completed once
    puts = [r for r in s.requests if r.startswith("PUT ")]
    assert len(puts) == 3, puts
    assert not any("/v1/" in r for r in puts)
    assert len([r for r in s.requests if r.startswith("POST ") and r.endswith("/upload/complete")]) == 1
    s.shot("failed")
    s.page.close()
    assert s.errors == []
