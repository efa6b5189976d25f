"""Webhooks in the browser playground, driven by a real Chromium against the local server with a
loopback receiver: the panel is collapsed at first; a webhook added for asset.ready shows its
signing secret once (the one that signs the deliveries); an uploaded image makes a succeeded
delivery appear; a failing receiver disables the webhook with its reason, Turn back on and
Redeliver recover it; Delete asks first. Refused addresses, no events ticked and a server without
webhooks are shown in plain words. Fixtures and the browser session come from test_playground.py;
the receiver from tests/functional/test_webhooks.py."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mediaindex.domain.webhooks import verify
from tests import mediagen
from tests.e2e.test_playground import (  # noqa: F401 (server and browser are fixtures)
    PHONE,
    RAW,
    Session,
    _free_port,
    browser,
    expect,
    server,
)
from tests.e2e.test_playground_reindex import _call
from tests.functional.test_webhooks import Receiver, receiver  # noqa: F401 (receiver is a fixture)

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 800}
# An image is indexed in seconds and delivered at once; this bounds either.
SETTLE_MS = 30_000


@pytest.fixture(scope="module")
def hook_env() -> Iterator[None]:
    """Set before the server starts: a loopback receiver is a permitted target, and a failed
    attempt is final (a one-second retry window), so that a failing receiver disables the webhook
    at once instead of after a day of retries."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDIAINDEX_ALLOW_PRIVATE_URLS", "true")
        mp.setenv("MEDIAINDEX_WEBHOOK_RETRY_WINDOW_S", "1")
        yield


@pytest.fixture(scope="module")
def hooked(hook_env: None, server: tuple[str, str]) -> tuple[str, str]:  # noqa: F811
    return server


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("media")
    return mediagen.image(d / "first.png", size="320x240"), mediagen.image(d / "second.png", size="320x240")


def _webhooks(base: str, key: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = _call(base, key, "GET", "/v1/webhooks")["data"]
    return data


def _shots(s: Session, name: str) -> None:
    """The page as a person sees it, on a desktop and on a phone."""
    s.page.set_viewport_size(DESKTOP)
    s.shot(f"{name}-desktop")
    s.page.set_viewport_size(PHONE)
    s.page.wait_for_function(f"document.documentElement.scrollWidth <= {PHONE['width']}", timeout=3000)
    s.shot(f"{name}-phone")
    s.page.set_viewport_size(DESKTOP)


def _open_panel(s: Session) -> Any:
    page = s.page
    panel = page.locator('[data-testid="webhooks"]')
    body = panel.locator("#webhooks-body")
    expect(body).to_be_hidden()  # collapsed: search and the library come first
    toggle = page.locator('[data-testid="webhooks-toggle"]')
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(body).to_be_visible()
    return panel


def test_add_see_the_secret_once_deliver_recover_and_delete(
    hooked: tuple[str, str],
    browser: Any,  # noqa: F811
    receiver: Receiver,  # noqa: F811
    pictures: tuple[Path, Path],
) -> None:
    base, key = hooked
    s = Session(browser, base, viewport=DESKTOP)
    page = s.page
    s.use_key_and_wait(key)
    s.new_index("hooks")
    expect(page.locator('[data-testid="webhooks-summary"]')).to_have_text("None yet")
    _shots(s, "webhooks-collapsed")

    # When the panel is opened with no webhooks, the form is offered at once, its address focused
    panel = _open_panel(s)
    form = page.locator('[data-testid="webhook-form"]')
    expect(form).to_be_visible()
    expect(page.locator("#webhook-url")).to_be_focused()
    # And it offers all five events
    offered = form.locator('input[name="event"]').evaluate_all("bs => bs.map(b => b.value)")
    assert offered == ["asset.ready", "asset.failed", "task.completed", "task.failed", "index.reindexed"]

    # When a webhook for asset.ready alone is added
    page.fill("#webhook-url", receiver.url)
    form.locator('input[value="asset.ready"]').check()
    page.click('[data-testid="webhook-add"]')

    # Then its secret is shown once, selected for copying, with the note that it is shown only now
    box = page.locator('[data-testid="webhook-secret"]')
    expect(box).to_be_visible()
    expect(box).to_contain_text("Shown only now")
    field = page.locator('[data-testid="webhook-secret-value"]')
    expect(field).to_be_focused()
    secret = field.input_value()
    assert secret.startswith("whsec_"), secret
    hook = panel.locator('[data-testid="webhook"]')
    expect(hook).to_have_count(1)
    expect(hook.locator('[data-testid="webhook-url"]')).to_have_text(receiver.url)
    expect(hook.locator('[data-testid="webhook-state"]')).to_have_text("Enabled")
    expect(hook.locator('[data-testid="no-deliveries"]')).to_be_visible()
    (server_hook,) = _webhooks(base, key)
    assert (server_hook["url"], server_hook["events"]) == (receiver.url, ["asset.ready"]), server_hook
    _shots(s, "webhooks-secret")

    # When Done is pressed, the secret is gone from the page for good
    page.click('[data-testid="webhook-secret-done"]')
    expect(box).to_be_hidden()
    assert secret not in page.content()
    expect(field).to_have_value("")

    # When an image is uploaded, the panel (polling while open) shows a succeeded delivery
    first, second = pictures
    expect(s.upload(first)).to_have_attribute("data-status", "ready", timeout=SETTLE_MS)
    done = hook.locator('[data-testid="delivery"][data-state="succeeded"]')
    expect(done).to_have_count(1, timeout=SETTLE_MS)
    expect(done).to_contain_text("asset.ready")
    expect(done.locator('[data-testid="delivery-facts"]')).to_contain_text("1 attempt · HTTP 200")
    expect(done.locator('[data-testid="redeliver"]')).to_have_count(0)
    # And the receiver got it, signed with the secret the page showed
    (got,) = receiver.got
    assert got.headers["mediaindex-event"] == "asset.ready"
    assert verify(secret, got.headers["mediaindex-signature"], got.body, now=time.time())
    _shots(s, "webhooks-delivered")

    # When the receiver fails, the next delivery fails and the webhook is disabled with its reason
    receiver.status = 500
    expect(s.upload(second)).to_have_attribute("data-status", "ready", timeout=SETTLE_MS)
    failed = hook.locator('[data-testid="delivery"][data-state="failed"]')
    expect(failed).to_have_count(1, timeout=SETTLE_MS)
    expect(failed.locator('[data-testid="delivery-facts"]')).to_contain_text("HTTP 500")
    expect(hook).to_have_attribute("data-enabled", "false")
    expect(hook.locator('[data-testid="webhook-state"]')).to_have_text("Disabled")
    expect(hook.locator('[data-testid="webhook-disabled"]')).to_contain_text("Deliveries stopped")
    reason = hook.locator('[data-testid="webhook-disabled-reason"]')
    expect(reason).to_be_hidden()  # the server's words wait under Details
    expect(reason).to_contain_text("HTTP 500")
    expect(page.locator('[data-testid="webhooks-summary"]')).to_have_text("1 webhook, 1 disabled")
    # And Redeliver is not offered while the server would refuse it
    expect(failed.locator('[data-testid="redeliver"]')).to_have_count(0)
    _shots(s, "webhooks-disabled")

    # When it is turned back on and the failed delivery redelivered to a mended receiver
    hook.locator('[data-testid="webhook-enable"]').click()
    expect(hook).to_have_attribute("data-enabled", "true")
    receiver.status = 200
    redeliver = failed.locator('[data-testid="redeliver"]')
    expect(redeliver).to_be_visible()
    _shots(s, "webhooks-redeliver")
    redeliver.click()
    # Then the same delivery ends succeeded
    delivery_id = failed.get_attribute("data-delivery-id")
    again = hook.locator(f'[data-testid="delivery"][data-delivery-id="{delivery_id}"]')
    expect(again).to_have_attribute("data-state", "succeeded", timeout=SETTLE_MS)
    assert [r.headers["mediaindex-delivery"] for r in receiver.got].count(str(delivery_id)) == 2

    # When Delete is cancelled, the webhook stays; when confirmed, it is gone here and on the server
    hook.locator('[data-testid="webhook-delete"]').click()
    page.click('[data-testid="confirm-cancel"]')
    expect(hook).to_have_count(1)
    hook.locator('[data-testid="webhook-delete"]').click()
    page.click('[data-testid="confirm-ok"]')
    expect(hook).to_have_count(0)
    expect(page.locator('[data-testid="webhooks-empty"]')).to_be_visible()
    expect(page.locator("#webhooks-h")).to_be_focused()
    assert _webhooks(base, key) == []
    assert s.unexpected() == []
    s.close()


def test_refusals_a_dead_receiver_and_a_server_without_webhooks_are_plain_words(
    hooked: tuple[str, str],
    browser: Any,  # noqa: F811
    pictures: tuple[Path, Path],
) -> None:
    base, key = hooked
    s = Session(browser, base, viewport=DESKTOP)
    page = s.page
    s.use_key_and_wait(key)
    _open_panel(s)
    if page.locator('[data-testid="webhook-form"]').is_hidden():
        page.click('[data-testid="webhook-add-toggle"]')

    _shots(s, "webhooks-form")

    # When no event is ticked, nothing is sent and the first box says why
    page.fill("#webhook-url", "https://example.com/hook")
    page.locator('input[name="event"]:checked').uncheck()
    sent = len(s.requests)
    page.click('[data-testid="webhook-add"]')
    first = page.locator('input[name="event"]').first
    assert first.evaluate("b => b.validationMessage") == "Pick at least one event."
    assert not [r for r in s.requests[sent:] if r.startswith("POST")]
    # And ticking one clears it
    first.check()
    assert first.evaluate("b => b.validity.valid")

    # When the address carries credentials (refused even where private targets are allowed)
    page.fill("#webhook-url", "http://user:pw@127.0.0.1:9/hook")
    page.click('[data-testid="webhook-add"]')
    # Then the notice says so in plain words, the raw answer under Details, and no secret appears
    notice = page.locator('[data-testid="status"]')
    expect(notice).to_have_attribute("data-kind", "error")
    expect(notice).to_contain_text("Add webhook:")
    text = page.locator("#notice-text").inner_text()
    assert "webhook_url" not in text and not RAW.search(text), text
    expect(page.locator('[data-testid="webhook-secret"]')).to_be_hidden()
    expect(page.locator("#webhook-url")).to_be_focused()
    assert _webhooks(base, key) == []

    # Given a webhook whose receiver is not listening, when an image is uploaded
    dead = _call(
        base,
        key,
        "POST",
        "/v1/webhooks",
        {"url": f"http://127.0.0.1:{_free_port()}/hook", "events": ["asset.ready"]},
    )
    expect(s.upload(pictures[0])).to_have_attribute("data-status", "ready", timeout=SETTLE_MS)
    # Then its delivery shows the network error in a line of its own, there being no HTTP status
    hook = page.locator(f'[data-testid="webhook"][data-webhook-id="{dead["id"]}"]')
    failed = hook.locator('[data-testid="delivery"][data-state="failed"]')
    expect(failed).to_have_count(1, timeout=SETTLE_MS)
    expect(failed.locator('[data-testid="delivery-error"]')).to_contain_text("Last attempt: ")
    expect(failed.locator('[data-testid="delivery-facts"]')).not_to_contain_text("HTTP")
    _call(base, key, "DELETE", f"/v1/webhooks/{dead['id']}")

    # When the server has no delivery path (an AWS deployment without its queue), the page says so
    # in a line instead of the panel. A local server always has one, so its answer is replayed.
    unavailable = {"error": {"code": "webhooks_unavailable", "message": "webhooks are not configured"}}
    page.route(
        re.compile(r".*/v1/webhooks$"),
        lambda route: route.fulfill(
            status=503, content_type="application/json", body=json.dumps(unavailable)
        ),
    )
    page.reload()
    note = page.locator('[data-testid="webhooks-unavailable"]')
    expect(note).to_have_text("Webhooks are not set up on this server, so no events can be sent from it.")
    expect(page.locator('[data-testid="webhooks-toggle"]')).to_be_hidden()
    expect(page.locator("#webhooks-body")).to_be_hidden()
    expect(page.locator('[data-testid="status"]')).to_be_hidden()  # a state, not an error
    _shots(s, "webhooks-unavailable")
    assert s.unexpected(r"400 POST .*/v1/webhooks$", r"503 GET .*/v1/webhooks$") == []
    s.close()
