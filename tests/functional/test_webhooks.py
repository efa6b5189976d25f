"""Webhooks end to end on the local runtime: a real HTTP receiver on loopback, the API, the
pipeline, the delivery rows in SQLite, restarts, the retry schedule and the SSRF guard."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mediaindex.adapters.local.secret_box import KEY_FILE, AesGcmSecretBox, load_or_create_key
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.adapters.local.sqlite.webhooks import SqliteWebhookRepository
from mediaindex.adapters.local.webhook_loop import WakeupQueue
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.local import DATABASE_FILE, build_local
from mediaindex.bootstrap.webhooks import build_local_webhooks
from mediaindex.domain.errors import ValidationError
from mediaindex.domain.webhooks import DeliveryState, WebhookEvent
from mediaindex.services.webhooks import WebhookConfig, Webhooks, WebhookSettings, build_webhooks
from tests.apiclient import Api, error_code
from tests.functional.conftest import BASE_URL, make_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    status: int = 200
    got: list[Received] = field(default_factory=list)

    def events(self) -> list[str]:
        return [r.headers["mediaindex-event"] for r in self.got]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            state.got.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()


def docs_verifier() -> Any:
    """The verification snippet of docs/webhooks.md, run as written."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    scope: dict[str, Any] = {}
    exec(blocks[0], scope)
    return scope["verify_mediaindex_signature"]


@pytest.fixture
def local(data_dir: Path) -> Iterator[Runtime]:
    runtime = build_local(make_settings(data_dir, allow_private_urls=True))
    yield runtime
    runtime.close()


def hooks_of(runtime: Runtime) -> Webhooks:
    assert runtime.webhooks is not None
    return runtime.webhooks


@pytest.fixture
def local_api(local: Runtime) -> Iterator[Api]:
    with TestClient(build_app(local), base_url=BASE_URL, raise_server_exceptions=False) as c:
        yield Api(c, local.services.keys.create_key("acme")[2])


def test_a_processed_upload_reaches_the_receiver_signed(
    local: Runtime, local_api: Api, receiver: Receiver, small_image: Path
) -> None:
    created = local_api.ok(
        "POST", "/v1/webhooks", 201, json={"url": receiver.url, "events": ["asset.ready", "task.completed"]}
    )
    secret = created["secret"]
    assert secret.startswith("whsec_")
    listed = local_api.ok("GET", "/v1/webhooks")["data"]
    assert [w["id"] for w in listed] == [created["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in local_api.ok("GET", f"/v1/webhooks/{created['id']}")

    asset = local_api.upload(local_api.index()["id"], "still.png", small_image.read_bytes())
    assert local.executor is not None
    local.executor.pool.run_until_idle()
    assert hooks_of(local).deliverer.run_due() == 2

    assert sorted(receiver.events()) == ["asset.ready", "task.completed"]
    verify = docs_verifier()
    for got in receiver.got:
        assert verify(secret, got.headers["mediaindex-signature"], got.body)
        assert not verify("whsec_wrong", got.headers["mediaindex-signature"], got.body)
        assert not verify(secret, got.headers["mediaindex-signature"], got.body + b" ")
        body = json.loads(got.body)
        assert body["id"] == got.headers["mediaindex-delivery"]
        assert body["type"] == got.headers["mediaindex-event"]
        assert body["data"]["asset_id"] == asset["id"]
    ready = json.loads(next(r.body for r in receiver.got if r.headers["mediaindex-event"] == "asset.ready"))
    assert ready["data"]["status"] == "ready"

    log = local_api.ok("GET", f"/v1/webhooks/{created['id']}/deliveries")["data"]
    assert {(d["event"], d["state"], d["attempts"], d["status_code"]) for d in log} == {
        ("asset.ready", "succeeded", 1, 200),
        ("task.completed", "succeeded", 1, 200),
    }

    # A redelivery through the API: the same delivery (id and body) sent again, signed afresh.
    first = next(d for d in log if d["event"] == "asset.ready")
    again = local_api.ok("POST", f"/v1/webhooks/{created['id']}/deliveries/{first['id']}/redeliver", 202)
    assert (again["id"], again["state"], again["attempts"]) == (first["id"], "pending", 0)
    assert hooks_of(local).deliverer.run_due() == 1
    assert receiver.got[-1].headers["mediaindex-delivery"] == first["id"]
    assert receiver.got[-1].body == next(
        r.body for r in receiver.got[:2] if r.headers["mediaindex-delivery"] == first["id"]
    )
    enabled = local_api.ok("POST", f"/v1/webhooks/{created['id']}/enable")
    assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)

    # The executor reporting the same settlement again adds no delivery.
    task_id = ready["data"]["task_id"]
    assert local.runner is not None
    local.runner.finish_task(ready["tenant_id"], task_id)
    assert hooks_of(local).deliverer.run_due() == 0
    assert len(local_api.ok("GET", f"/v1/webhooks/{created['id']}/deliveries")["data"]) == 2


def test_a_replayed_signature_is_refused_by_the_docs_snippet() -> None:
    from mediaindex.domain.webhooks import sign

    verify = docs_verifier()
    body = b'{"type":"asset.ready"}'
    old = int((datetime.now(UTC) - timedelta(minutes=6)).timestamp())
    assert not verify("s", sign("s", old, body), body)
    assert verify("s", sign("s", old + 120, body), body)


def test_webhook_api_validates_and_scopes_to_the_tenant(
    local: Runtime, local_api: Api, receiver: Receiver
) -> None:
    assert error_code(local_api.call("POST", "/v1/webhooks", json={"url": receiver.url, "events": []})) in {
        "parameter_invalid",
        "webhook_events_invalid",
    }
    bad = local_api.call("POST", "/v1/webhooks", json={"url": receiver.url, "events": ["asset.gone"]})
    assert (bad.status_code, error_code(bad)) == (400, "webhook_events_invalid")
    ftp = local_api.call(
        "POST", "/v1/webhooks", json={"url": "ftp://example.com/x", "events": ["task.failed"]}
    )
    assert (ftp.status_code, error_code(ftp)) == (400, "webhook_url_forbidden")
    created = local_api.ok(
        "POST",
        "/v1/webhooks",
        201,
        json={"url": receiver.url, "events": ["index.reindexed"], "description": "x"},
    )
    other = Api(local_api.client, local.services.keys.create_key("globex")[2])
    assert other.ok("GET", "/v1/webhooks")["data"] == []
    assert error_code(other.call("GET", f"/v1/webhooks/{created['id']}")) == "webhook_not_found"
    assert other.call("DELETE", f"/v1/webhooks/{created['id']}").status_code == 404
    missing = local_api.call("POST", f"/v1/webhooks/{created['id']}/deliveries/dlv_nope/redeliver")
    assert (missing.status_code, error_code(missing)) == (404, "delivery_not_found")
    assert local_api.call("DELETE", f"/v1/webhooks/{created['id']}").status_code == 204
    assert local_api.call("GET", f"/v1/webhooks/{created['id']}").status_code == 404


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://localhost:8080/hook", "http://10.0.0.7/hook"]
)
def test_private_targets_are_refused_at_creation(data_dir: Path, url: str) -> None:
    runtime = build_local(make_settings(data_dir))  # private targets not allowed
    try:
        with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as c:
            api = Api(c, runtime.services.keys.create_key("acme")[2])
            resp = api.call("POST", "/v1/webhooks", json={"url": url, "events": ["asset.ready"]})
            assert (resp.status_code, error_code(resp)) == (400, "webhook_url_forbidden")
            assert api.ok("GET", "/v1/webhooks")["data"] == []
    finally:
        runtime.close()


# ---- the delivery machinery over a real SQLite file, a controlled clock and resolver -------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def webhooks_over(data_dir: Path, **config: Any) -> tuple[Webhooks, SqliteWebhookRepository, Database]:
    db = Database(data_dir / DATABASE_FILE)
    db.migrate()
    repo = SqliteWebhookRepository(db)
    settings = config.pop("settings", WebhookSettings(retry_jitter=0))
    hooks = build_webhooks(
        repo,
        AesGcmSecretBox(load_or_create_key(data_dir)),
        WakeupQueue(),
        WebhookConfig(settings=settings, **config),
        due=repo,
    )
    return hooks, repo, db


def test_a_failing_receiver_is_retried_on_the_schedule_then_disabled(
    data_dir: Path, receiver: Receiver
) -> None:
    clock = Clock()
    hooks, _, db = webhooks_over(data_dir, allow_private=True, clock=clock)
    receiver.status = 500
    webhook, _ = hooks.service.create("ten_a", receiver.url, ["task.failed"])
    hooks.notifier.emit("ten_a", "task.failed", "tsk_1", {"task_id": "tsk_1"})
    start = clock.now
    gaps: list[float] = []
    while True:
        assert hooks.deliverer.run_due() == 1
        (d,) = hooks.service.deliveries("ten_a", webhook.id, limit=5)
        if d.next_attempt_at is None:
            break
        gaps.append((d.next_attempt_at - clock.now).total_seconds())
        clock.now = d.next_attempt_at
    assert gaps[:6] == [30, 120, 600, 3600, 3600, 3600]
    assert set(gaps[4:]) == {3600}
    assert (clock.now - start) <= timedelta(hours=24) < clock.now - start + timedelta(hours=1)
    assert (d.state, d.attempts, d.last_status_code, d.last_error) == (
        DeliveryState.FAILED,
        len(gaps) + 1,
        500,
        "HTTP 500",
    )
    assert len(receiver.got) == d.attempts
    disabled = hooks.service.get("ten_a", webhook.id)
    assert not disabled.enabled
    assert disabled.disabled_reason is not None and "without a success" in disabled.disabled_reason
    # A disabled webhook gets no new deliveries and refuses a redelivery until enabled.
    hooks.notifier.emit("ten_a", "task.failed", "tsk_2", {})
    assert len(hooks.service.deliveries("ten_a", webhook.id, limit=5)) == 1
    with pytest.raises(Exception, match="disabled") as refused:
        hooks.service.redeliver("ten_a", webhook.id, d.id)
    assert getattr(refused.value, "code", None) == "webhook_disabled"
    enabled = hooks.service.enable("ten_a", webhook.id)
    assert (enabled.enabled, enabled.disabled_reason, enabled.failing_since) == (True, None, None)
    receiver.status = 204
    again = hooks.service.redeliver("ten_a", webhook.id, d.id)
    assert (again.state, again.attempts) == (DeliveryState.PENDING, 0)
    assert hooks.deliverer.run_due() == 1
    (done,) = hooks.service.deliveries("ten_a", webhook.id, limit=5)
    assert (done.state, done.attempts, done.last_status_code, done.id) == (
        DeliveryState.SUCCEEDED,
        1,
        204,
        d.id,
    )
    assert receiver.got[-1].body == receiver.got[0].body  # the same delivery, byte for byte
    db.close()


def test_a_target_that_resolves_private_later_is_refused_at_delivery(data_dir: Path) -> None:
    answers = {"hooks.example.com": ["93.184.216.34"]}
    hooks, _, db = webhooks_over(data_dir, allow_private=False, resolver=lambda host, port: answers[host])
    webhook, _ = hooks.service.create("ten_a", "http://hooks.example.com/in", ["task.completed"])
    answers["hooks.example.com"] = ["10.0.0.9"]  # the DNS changed since
    hooks.notifier.emit("ten_a", "task.completed", "tsk_1", {})
    assert hooks.deliverer.run_due() == 1
    (d,) = hooks.service.deliveries("ten_a", webhook.id, limit=5)
    assert d.state == DeliveryState.PENDING and d.attempts == 1
    assert d.last_status_code is None
    assert d.last_error is not None and d.last_error.startswith("webhook_url_forbidden")
    with pytest.raises(ValidationError) as refused:
        hooks.service.create("ten_a", "http://hooks.example.com/other", ["task.completed"])
    assert refused.value.code == "webhook_url_forbidden"
    answers["hooks.example.com"] = []
    with pytest.raises(ValidationError) as unresolved:
        hooks.service.create("ten_a", "http://hooks.example.com/other", ["task.completed"])
    assert (unresolved.value.code, unresolved.value.field) == ("webhook_url_unreachable", "url")
    with pytest.raises(ValidationError) as no_events:
        hooks.service.create("ten_a", "http://hooks.example.com/other", [])
    assert no_events.value.code == "webhook_events_invalid"
    db.close()


def test_a_pending_delivery_survives_a_crash_mid_attempt_and_a_restart(
    data_dir: Path, receiver: Receiver
) -> None:
    settings = make_settings(data_dir, allow_private_urls=True)
    first = build_local(settings)
    webhook, secret = hooks_of(first).service.create("ten_a", receiver.url, ["asset.failed"])
    first.close()

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt("killed mid-delivery")

    hooks, _, db = webhooks_over(data_dir, allow_private=True, poster=crash)
    hooks.notifier.emit("ten_a", "asset.failed", "ast_1/tsk_1", {"asset_id": "ast_1"})
    with pytest.raises(KeyboardInterrupt):
        hooks.deliverer.run_due()
    db.close()

    second = build_local(settings)  # a new process on the same data dir
    try:
        (pending,) = hooks_of(second).service.deliveries("ten_a", webhook.id, limit=5)
        assert (pending.state, pending.attempts) == (DeliveryState.PENDING, 0)
        assert hooks_of(second).deliverer.run_due() == 1
    finally:
        second.close()
    (got,) = receiver.got
    assert got.headers["mediaindex-event"] == WebhookEvent.ASSET_FAILED
    assert docs_verifier()(secret, got.headers["mediaindex-signature"], got.body)


def test_the_delivery_loop_sends_without_being_driven(data_dir: Path, receiver: Receiver) -> None:
    # What build_local starts beside the worker pool when it serves.
    db = Database(data_dir / DATABASE_FILE)
    db.migrate()
    local = build_local_webhooks(make_settings(data_dir, allow_private_urls=True), db)
    local.loop.start()
    try:
        local.webhooks.service.create("ten_a", receiver.url, ["task.completed"])
        local.webhooks.notifier.emit("ten_a", "task.completed", "tsk_1", {})  # wakes the loop
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while not receiver.got and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
    finally:
        local.loop.stop()
        db.close()
    assert receiver.events() == ["task.completed"]


def test_the_secret_is_never_stored_in_the_clear(local: Runtime, local_api: Api, data_dir: Path) -> None:
    created = local_api.ok(
        "POST", "/v1/webhooks", 201, json={"url": "http://127.0.0.1:9/x", "events": ["asset.ready"]}
    )
    secret = created["secret"].encode()
    stored = b"".join(p.read_bytes() for p in data_dir.glob(f"{DATABASE_FILE}*"))
    assert created["id"].encode() in stored  # the row is there...
    assert secret not in stored  # ...its secret is not
    assert secret.split(b"_", 1)[1] not in stored
    assert (data_dir / KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_redirects_are_not_followed_and_unreachable_targets_fail_the_attempt(
    data_dir: Path, receiver: Receiver
) -> None:
    hooks, _, db = webhooks_over(data_dir, allow_private=True)
    receiver.status = 302  # with no Location followed: a failed attempt all the same
    moved, _ = hooks.service.create("ten_a", receiver.url, ["task.completed"])
    closed, _ = hooks.service.create("ten_a", "http://127.0.0.1:9/nothing-listens", ["task.completed"])
    hooks.notifier.emit("ten_a", "task.completed", "tsk_1", {})
    assert hooks.deliverer.run_due() == 2
    (d,) = hooks.service.deliveries("ten_a", moved.id, limit=5)
    assert (d.state, d.last_status_code, d.last_error) == (DeliveryState.PENDING, 302, "HTTP 302")
    (c,) = hooks.service.deliveries("ten_a", closed.id, limit=5)
    assert c.state == DeliveryState.PENDING and c.last_status_code is None
    assert c.last_error is not None and c.last_error.startswith("ConnectError")
    assert len(receiver.got) == 1
    db.close()


def test_a_large_answer_is_not_read_beyond_the_cap(data_dir: Path) -> None:
    import socket

    # A receiver that answers 200 with an endless body: only the cap is read, the attempt succeeds.
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n")
            try:
                while True:
                    conn.sendall(b"x" * 65536)
            except OSError:
                pass  # the client hung up after its cap

    threading.Thread(target=serve, daemon=True).start()
    hooks, _, db = webhooks_over(data_dir, allow_private=True)
    webhook, _ = hooks.service.create(
        "ten_a", f"http://127.0.0.1:{server.getsockname()[1]}/h", ["task.failed"]
    )
    hooks.notifier.emit("ten_a", "task.failed", "tsk_1", {})
    assert hooks.deliverer.run_due() == 1
    (d,) = hooks.service.deliveries("ten_a", webhook.id, limit=5)
    assert (d.state, d.last_status_code) == (DeliveryState.SUCCEEDED, 200)
    server.close()
    db.close()


def test_the_service_refuses_what_it_cannot_keep(data_dir: Path, receiver: Receiver) -> None:
    settings = WebhookSettings(max_per_tenant=1)
    hooks, _, db = webhooks_over(data_dir, allow_private=True, settings=settings)
    with pytest.raises(ValidationError) as too_long:
        hooks.service.create("ten_a", receiver.url + "?" + "x" * 2048, ["task.failed"])
    assert too_long.value.code == "webhook_url_invalid"
    with pytest.raises(ValidationError) as wordy:
        hooks.service.create("ten_a", receiver.url, ["task.failed"], "d" * 501)
    assert wordy.value.field == "description"
    with pytest.raises(ValidationError) as creds:
        hooks.service.create("ten_a", "http://u:p@example.com/h", ["task.failed"])
    assert creds.value.code == "webhook_url_forbidden"
    webhook, _ = hooks.service.create("ten_a", receiver.url, ["task.failed", "task.failed"])
    assert webhook.events == [WebhookEvent.TASK_FAILED]
    with pytest.raises(Exception, match="at most 1") as full:
        hooks.service.create("ten_a", receiver.url, ["task.failed"])
    assert getattr(full.value, "code", None) == "webhook_limit_reached"
    for call in (
        lambda: hooks.service.enable("ten_a", "whk_missing"),
        lambda: hooks.service.deliveries("ten_a", "whk_missing", limit=5),
        lambda: hooks.service.delete("ten_a", "whk_missing"),
    ):
        with pytest.raises(Exception, match="not found") as missing:
            call()
        assert getattr(missing.value, "code", None) == "webhook_not_found"
    db.close()


def test_pending_deliveries_of_a_disabled_or_deleted_webhook_are_not_sent(
    data_dir: Path, receiver: Receiver
) -> None:
    hooks, repo, db = webhooks_over(data_dir, allow_private=True)
    webhook, _ = hooks.service.create("ten_a", receiver.url, ["task.failed"])
    hooks.notifier.emit("ten_a", "task.failed", "tsk_1", {})
    assert repo.update(webhook.model_copy(update={"enabled": False, "disabled_reason": "by hand"}))
    assert hooks.deliverer.run_due() == 0
    (d,) = hooks.service.deliveries("ten_a", webhook.id, limit=5)
    assert (d.state, d.last_error) == (DeliveryState.FAILED, "webhook disabled: by hand")
    other, _ = hooks.service.create("ten_a", receiver.url, ["task.failed"])
    hooks.notifier.emit("ten_a", "task.failed", "tsk_2", {})
    hooks.service.delete("ten_a", other.id)
    assert hooks.deliverer.run_due() == 0
    assert receiver.got == []
    db.close()


def test_the_delivery_loop_outlives_a_failing_round() -> None:
    from mediaindex.adapters.local.webhook_loop import DeliveryLoop, WakeupQueue

    rounds: list[str] = []

    def run_due() -> int:
        rounds.append("round")
        if len(rounds) == 1:
            raise OSError("the database is locked")
        return 0

    queue = WakeupQueue()
    loop = DeliveryLoop(run_due, queue, poll_interval_s=0.01)
    loop.start()
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while len(rounds) < 3 and datetime.now(UTC) < deadline:
        threading.Event().wait(0.01)
    loop.stop()
    assert len(rounds) >= 3  # the failed round was logged, the next ones ran


def test_a_delivery_that_cannot_be_signed_blocks_no_other(data_dir: Path, receiver: Receiver) -> None:
    hooks, repo, db = webhooks_over(data_dir, allow_private=True)
    broken, _ = hooks.service.create("ten_a", receiver.url, ["task.failed"])
    assert repo.update(broken.model_copy(update={"secret_sealed": "v1:" + "A" * 64}))  # another key's
    working, _ = hooks.service.create("ten_a", receiver.url, ["task.failed"])
    hooks.notifier.emit("ten_a", "task.failed", "tsk_1", {})
    assert hooks.deliverer.run_due() == 1
    assert len(receiver.got) == 1
    (stuck,) = hooks.service.deliveries("ten_a", broken.id, limit=5)
    assert (stuck.state, stuck.attempts) == (DeliveryState.PENDING, 0)
    (sent,) = hooks.service.deliveries("ten_a", working.id, limit=5)
    assert sent.state == DeliveryState.SUCCEEDED
    db.close()
