"""Re-indexing in the browser playground, driven by a real Chromium against the local server with
one short spoken clip indexed: the index shows its generation and Whisper model, Re-index offers
the server's models and is followed by polling until the page shows the new generation; refusals
(a re-index another client started, a cancel that came too late), the page's own Cancel and an
index deleted while followed are shown in plain words. Fixtures and the browser session come from
test_playground.py."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests import mediagen
from tests.e2e.test_playground import (  # noqa: F401 (server and browser are fixtures)
    RAW,
    Session,
    _capabilities,
    browser,
    expect,
    server,
)

pytestmark = pytest.mark.e2e

SPOKEN = "Every index can be rebuilt with another model."
# One short clip is indexed, and re-indexed, in seconds; this is the bound for either.
READY_MS = 40_000


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mediagen.speech_wav(tmp_path_factory.mktemp("media") / "rebuild.wav", SPOKEN)


def _call(base: str, key: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def _index_with_the_clip(s: Session, key: str, name: str, speech: Path) -> str:
    s.use_key_and_wait(key)
    s.new_index(name)
    card = s.upload(speech)
    expect(card).to_have_attribute("data-status", "ready", timeout=READY_MS)
    return str(s.page.locator("#index-select").input_value())


def _other_model(caps: dict[str, Any], current: str) -> str:
    others = [m for m in caps["transcription_models"] if m != current]
    if not others:
        pytest.skip("this server offers a single Whisper model: nothing to re-index onto")
    return str(others[0])


def test_reindex_with_another_model_shows_the_new_generation(
    server: tuple[str, str],  # noqa: F811
    browser: Any,  # noqa: F811
    speech: Path,
) -> None:
    base, key = server
    caps = _capabilities(base, key)
    assert caps is not None
    s = Session(browser, base)
    page = s.page
    index_id = _index_with_the_clip(s, key, "rebuild", speech)
    before = _call(base, key, "GET", f"/v1/indexes/{index_id}")

    # Given an index of one spoken clip, the page says which generation and model search uses
    expect(page.locator('[data-testid="index-generation"]')).to_have_text(str(before["generation"]))
    expect(page.locator('[data-testid="index-model"]')).to_have_text(before["models"]["transcription"])
    expect(page.locator('[data-testid="reindex"]')).to_be_hidden()

    # When Re-index is opened
    page.click('[data-testid="reindex-toggle"]')
    choice = page.locator('[data-testid="reindex-model"]')
    # Then it offers exactly the server's models, the index's own preselected
    offered = choice.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert offered == caps["transcription_models"], offered
    expect(choice).to_have_value(before["models"]["transcription"])
    expect(choice).to_be_focused()

    # When another model is chosen and the re-index started
    model = _other_model(caps, before["models"]["transcription"])
    choice.select_option(model)
    page.click('[data-testid="reindex-start"]')

    # Then the page follows it to the end and shows the new generation with the chosen model
    box = page.locator('[data-testid="reindex"]')
    expect(box).to_have_attribute("data-state", "completed", timeout=READY_MS)
    new = before["generation"] + 1
    expect(page.locator('[data-testid="index-generation"]')).to_have_text(str(new))
    expect(page.locator('[data-testid="index-model"]')).to_have_text(model)
    expect(page.locator('[data-testid="reindex-state"]')).to_contain_text(f"generation {new} ({model})")
    expect(page.locator('[data-testid="reindex-progress"]')).to_be_hidden()
    expect(page.locator('[data-testid="reindex-cancel"]')).to_be_hidden()
    expect(page.locator('[data-testid="reindex-toggle"]')).to_be_enabled()
    # And that is what the server says too
    after = _call(base, key, "GET", f"/v1/indexes/{index_id}")
    assert (after["generation"], after["models"]["transcription"]) == (new, model), after
    # And it was followed by polling the index, not guessed
    polls = [r for r in s.requests if r == f"GET {base}/v1/indexes/{index_id}"]
    assert polls, s.requests
    s.shot("reindex-completed")
    assert s.unexpected() == []
    s.close()


def test_refusals_cancel_and_a_deleted_index_are_shown_in_plain_words(
    server: tuple[str, str],  # noqa: F811
    browser: Any,  # noqa: F811
    speech: Path,
) -> None:
    base, key = server
    caps = _capabilities(base, key)
    assert caps is not None
    s = Session(browser, base)
    page = s.page
    # The page's timers run on a clock this test holds, so that it polls only when told to.
    page.clock.install()
    page.reload()
    index_id = _index_with_the_clip(s, key, "elsewhere", speech)
    model = _other_model(caps, page.locator('[data-testid="index-model"]').inner_text())
    box = page.locator('[data-testid="reindex"]')
    error = page.locator('[data-testid="status"][data-kind="error"]')
    page.click('[data-testid="reindex-toggle"]')
    page.clock.pause_at(int(page.evaluate("Date.now()")) + 1000)

    # Given another client starts a re-index while this page's form is open
    started = _call(
        base, key, "POST", f"/v1/indexes/{index_id}/reindex", {"models": {"transcription": model}}
    )
    assert started["reindex"]["state"] == "running", started
    # When the page starts one too
    page.click('[data-testid="reindex-start"]')
    # Then the refusal is shown the way the page shows errors, and the page follows the running one
    expect(error).to_contain_text("Re-index: This index is already being re-indexed.")
    expect(page.locator("#notice-raw")).to_contain_text("code: reindex_running", use_inner_text=False)
    expect(box).to_have_attribute("data-state", "running")
    expect(page.locator('[data-testid="reindex-progress"]')).to_be_visible()
    expect(page.locator('[data-testid="reindex-toggle"]')).to_be_disabled()

    # When the other client cancels it before this page's Cancel arrives
    _call(base, key, "POST", f"/v1/indexes/{index_id}/reindex/cancel")
    page.click('[data-testid="reindex-cancel"]')
    # Then the page says so, and shows where the index stands: cancelled, on its old generation
    expect(error).to_contain_text("Cancelling the re-index: No re-index of this index is running any more.")
    expect(box).to_have_attribute("data-state", "cancelled")
    expect(page.locator('[data-testid="reindex-state"]')).to_contain_text(
        f"Re-index cancelled: search stays on generation {started['generation']}."
    )
    expect(page.locator("#reindex-raw")).to_contain_text("code: reindex_cancelled", use_inner_text=False)

    # When the page starts a re-index and cancels it with its own button
    page.click('[data-testid="reindex-toggle"]')
    page.locator('[data-testid="reindex-model"]').select_option(model)
    page.click('[data-testid="reindex-start"]')
    expect(box).to_have_attribute("data-state", "running")
    page.click('[data-testid="reindex-cancel"]')
    # Then it ends cancelled, on the server too, and search stays on the old generation
    expect(box).to_have_attribute("data-state", "cancelled")
    after = _call(base, key, "GET", f"/v1/indexes/{index_id}")
    assert after["reindex"]["state"] == "cancelled", after
    expect(page.locator('[data-testid="index-generation"]')).to_have_text(str(after["generation"]))
    s.shot("reindex-cancelled")

    # When the index is deleted elsewhere while the page follows a re-index of it
    page.click('[data-testid="reindex-toggle"]')
    page.click('[data-testid="reindex-start"]')
    expect(box).to_have_attribute("data-state", "running")
    _call(base, key, "DELETE", f"/v1/indexes/{index_id}")
    page.clock.run_for(2500)
    # Then the next poll's answer is said in plain words
    expect(error).to_contain_text("Following the re-index: This index no longer exists.")
    assert not RAW.search(error.inner_text())
    assert s.unexpected(r"409 POST .*/reindex(/cancel)?$", rf"404 GET .*/v1/indexes/{index_id}$") == []
    s.close()
