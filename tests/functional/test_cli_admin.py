"""The CLI's admin commands as a user meets them: `keys` (list, create --remote, revoke, rotate),
`webhooks`, `quotas` and `models export-clip`, run as subprocesses against a live local server,
with their outputs, exit codes and one-line errors (docs/cli.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.functional.test_cli import mi
from tests.reliability.conftest import LiveServer, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("cli-admin-server")
    (root / "logs").mkdir()
    # Private URLs allowed: the webhook receiver below listens on 127.0.0.1 (docs/webhooks.md, Targets)
    live = LiveServer(root / "data", root / "logs", MEDIAINDEX_ALLOW_PRIVATE_URLS="true")
    live.start(create_key="acme")
    yield live
    live.stop()


class Receiver:
    """A webhook target on 127.0.0.1 that answers 200 and keeps what it got."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def admin(
    server: LiveServer, *args: str, cwd: Path, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI against the server, with the server's admin key unless `key` is given, on a terminal
    wide enough that no table cell is cut."""
    return mi(*args, "--url", server.url, cwd=cwd, MEDIAINDEX_API_KEY=key or str(server.key), COLUMNS="200")


def one_error(done: subprocess.CompletedProcess[str], code: int, starts: str) -> None:
    assert done.returncode == code, (done.args, done.stdout, done.stderr)
    assert done.stderr.startswith(starts), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def new_key(server: LiveServer, here: Path, *extra: str) -> str:
    done = admin(server, "keys", "create", "--remote", *extra, cwd=here)
    assert done.returncode == 0, done.stderr
    raw = done.stdout.strip()
    assert raw.startswith("mi_") and "\n" not in raw
    return raw


def status_with(server: LiveServer, key: str, path: str = "/v1/indexes") -> int:
    return httpx.get(
        f"{server.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ).status_code


def listed(server: LiveServer, here: Path) -> list[dict[str, Any]]:
    done = admin(server, "keys", "list", "--json", cwd=here)
    assert done.returncode == 0, done.stderr
    keys: list[dict[str, Any]] = json.loads(done.stdout)
    return keys


def key_of(server: LiveServer, here: Path, raw: str) -> dict[str, Any]:
    (key,) = [k for k in listed(server, here) if k["prefix"] == raw[:7] and k["last4"] == raw[-4:]]
    return key


# ---- keys ---------------------------------------------------------------------------------------


def test_a_remote_key_is_printed_once_and_listed_by_its_prefix_and_last4(
    server: LiveServer, here: Path
) -> None:
    # When an admin creates a read_only key with a name and an expiry
    done = admin(
        server,
        "keys", "create", "--remote", "--scope", "read_only", "--name", "ci-reader",
        "--expires-at", "2030-01-01T00:00:00+02:00",
        cwd=here,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    raw = done.stdout.strip()
    # Then stdout holds only the key, and stderr says what it is
    assert raw.startswith("mi_") and len(raw.split()) == 1
    key = key_of(server, here, raw)
    assert done.stderr.strip() == (
        f"created read_only key {key['id']}, expires 2029-12-31T22:00:00Z; it is shown only once:"
    )
    assert (key["name"], key["scope"], key["revoked"]) == ("ci-reader", "read_only", False)
    # And it works, within its scope
    assert status_with(server, raw) == 200
    # And the table shows it by id, name, scope, prefix...last4, expiry, last use, revoked
    table = admin(server, "keys", "list", cwd=here)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["id", "name", "scope", "key", "expires_at", "last_used_at", "revoked"]
    (row,) = [r.split() for r in rows if r.startswith(key["id"])]
    assert row[1:4] == ["ci-reader", "read_only", f"{raw[:7]}...{raw[-4:]}"]
    assert row[4] == "2029-12-31T22:00:00Z" and row[6] == "no"
    assert row[5].startswith(datetime.now(UTC).strftime("%Y-%m-%d"))  # used just now


def test_a_key_without_the_admin_scope_is_refused_with_exit_3(server: LiveServer, here: Path) -> None:
    reader = new_key(server, here, "--scope", "read_only")
    for args in (
        ["keys", "list"],
        ["keys", "create", "--remote"],
        ["quotas", "set", "--max-concurrent-tasks", "2"],
    ):
        done = admin(server, *args, cwd=here, key=reader)
        one_error(done, 3, "error: scope_insufficient: this API key's scope (read_only) does not allow")
        assert done.stderr.rstrip().endswith(
            "(HTTP 403); use a key with a wider scope (--api-key or MEDIAINDEX_API_KEY)"
        )
    # A search_only key may not even list webhooks
    searcher = new_key(server, here, "--scope", "search_only")
    one_error(admin(server, "webhooks", "list", cwd=here, key=searcher), 3, "error: scope_insufficient: ")


def test_rotate_prints_the_new_key_and_when_the_old_one_stops(server: LiveServer, here: Path) -> None:
    old_raw = new_key(server, here, "--scope", "read_write", "--name", "deploy")
    old = key_of(server, here, old_raw)
    asked = datetime.now(UTC)
    done = admin(server, "keys", "rotate", old["id"], "--overlap", "90m", cwd=here)
    assert done.returncode == 0, done.stderr
    new_raw = done.stdout.strip()
    new = key_of(server, here, new_raw)
    assert (new["scope"], new["name"]) == ("read_write", "deploy")
    # The old key's end is now + 90 minutes, as the server recorded it and as stderr says
    ends = key_of(server, here, old_raw)["expires_at"]
    assert abs(datetime.fromisoformat(ends) - (asked + timedelta(minutes=90))) < timedelta(seconds=60)
    shown_end = datetime.fromisoformat(ends).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert done.stderr.strip() == (
        f"rotated {old['id']} into {new['id']}; the old key works until {shown_end}."
        " The new key is shown only once:"
    )
    # Both work during the overlap
    assert status_with(server, old_raw) == status_with(server, new_raw) == 200
    # With --overlap 0 the old key is refused at once
    done = admin(server, "keys", "rotate", new["id"], "--overlap", "0", cwd=here)
    assert done.returncode == 0, done.stderr
    assert status_with(server, new_raw) == 401
    assert status_with(server, done.stdout.strip()) == 200
    # And an ended key cannot be rotated again
    one_error(admin(server, "keys", "rotate", new["id"], cwd=here), 1, "error: key_not_active: ")


def test_a_rotated_key_is_printed_even_when_the_old_ones_end_cannot_be_read(here: Path) -> None:
    # A server that rotates, then fails the read-back of the old key: the new key must not be lost
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._answer(201, {"id": "key_new", "key": "mi_" + "n" * 43})

        def do_GET(self) -> None:
            self._answer(503, {"error": {"code": "unavailable", "message": "try later"}})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    fake = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{fake.server_address[1]}"
        done = mi(
            "keys", "rotate", "key_old", "--overlap", "1h", "--url", url, cwd=here, MEDIAINDEX_API_KEY="mi_x"
        )
    finally:
        fake.shutdown()
        fake.server_close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "mi_" + "n" * 43
    assert done.stderr.strip() == (
        "rotated key_old into key_new; the old key works for at most 3600 s more."
        " The new key is shown only once:"
    )


def test_revoke_takes_effect_at_once_and_errors_name_the_code(server: LiveServer, here: Path) -> None:
    raw = new_key(server, here, "--name", "leaked")
    key = key_of(server, here, raw)
    done = admin(server, "keys", "revoke", key["id"], cwd=here)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"revoked {key['id']} ({raw[:7]}...{raw[-4:]}) at ")
    assert status_with(server, raw) == 401
    assert key_of(server, here, raw)["revoked"] is True
    # An unknown id is 404 key_not_found, exit 1, for revoke and rotate alike
    for action in ("revoke", "rotate"):
        one_error(admin(server, "keys", action, "key_nope", cwd=here), 1, "error: key_not_found: ")
    # The calling key cannot revoke itself
    me = key_of(server, here, str(server.key))
    one_error(admin(server, "keys", "revoke", me["id"], cwd=here), 1, "error: key_is_caller: ")


def test_bad_key_arguments_are_usage_errors_before_any_request(here: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # a request would be exit 4, not 2
    runs = {
        ("keys", "rotate", "key_x", "--overlap", "8d"): "longer than 7d",
        ("keys", "rotate", "key_x", "--overlap", "soon"): "is not a duration",
        ("keys", "rotate", "key_x", "--overlap", "-5"): "is not a duration",
        ("keys", "create", "--remote", "--expires-at", "2030-01-01T00:00:00"): "has no offset",
        ("keys", "create", "--remote", "--expires-at", "next year"): "is not an ISO 8601 time",
        ("keys", "create", "--remote", "--scope", "root"): "invalid choice: 'root'",
        ("keys", "create"): "one of the arguments --tenant --remote is required",
        ("keys", "create", "--tenant", "t", "--remote"): "not allowed with argument",
    }
    for args, says in runs.items():
        done = mi(*args, "--url", dead, cwd=here, MEDIAINDEX_API_KEY="mi_x")
        assert done.returncode == 2, (args, done.stderr)
        assert says in done.stderr.splitlines()[-1], (args, done.stderr)
    # Options of a remote key given with --tenant: one line, exit 2, nothing created
    done = mi(
        "--data-dir", str(here / "data"), "keys", "create", "--tenant", "t", "--scope", "admin", cwd=here
    )
    one_error(done, 2, "error: --scope go with --remote, not --tenant")
    assert not (here / "data").exists()


def test_keys_create_tenant_still_writes_into_the_data_dir(server: LiveServer, here: Path) -> None:
    done = mi("--data-dir", str(server.data_dir), "keys", "create", "--tenant", "beta", cwd=here)
    assert done.returncode == 0, done.stderr
    raw = done.stdout.strip()
    assert "for tenant beta" in done.stderr
    # An admin key of another tenant: it manages its own keys, and sees none of acme's
    assert status_with(server, raw, "/v1/keys") == 200
    mine = admin(server, "keys", "list", "--json", cwd=here, key=raw)
    assert [k["prefix"] for k in json.loads(mine.stdout)] == [raw[:7]]


# ---- webhooks -----------------------------------------------------------------------------------


def _deliveries(server: LiveServer, here: Path, webhook_id: str) -> list[dict[str, Any]]:
    done = admin(server, "webhooks", "deliveries", webhook_id, "--json", cwd=here)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def _settled(server: LiveServer, here: Path, webhook_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 120
    while True:
        found = _deliveries(server, here, webhook_id)
        if len(found) >= count and all(d["state"] == "succeeded" for d in found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.5)


def test_webhooks_from_create_to_delete(server: LiveServer, here: Path, receiver: Receiver) -> None:
    # When a webhook is created for failures
    done = admin(
        server,
        "webhooks", "create", receiver.url, "--event", "asset.failed", "--event", "task.failed",
        "--description", "pager",
        cwd=here,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Then stdout is its id, then its secret (once)
    hook_id, secret = done.stdout.split()
    assert hook_id.startswith("whk_")
    assert done.stderr.strip() == (
        f"created webhook {hook_id} for asset.failed, task.failed; its signing secret is shown only once:"
    )
    listing = admin(server, "webhooks", "list", cwd=here)
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["id", "state", "events", "description", "url"]
    (row,) = [r.split() for r in rows if r.startswith(hook_id)]
    assert row[1:] == ["enabled", "asset.failed,task.failed", "pager", receiver.url]
    assert secret not in listing.stdout

    # When an upload fails (not media), Then both events arrive, signed with that secret
    bad = here / "notes.mp4"
    bad.write_bytes(b"this is not a video")
    ingest = mi("ingest", str(bad), "--index", "hooks", "--wait", "--url", server.url, cwd=here,
                MEDIAINDEX_API_KEY=str(server.key))  # fmt: skip
    assert ingest.returncode == 1, ingest.stderr
    deliveries = _settled(server, here, hook_id, 2)
    assert sorted(d["event"] for d in deliveries) == ["asset.failed", "task.failed"]
    for headers, body in receiver.got:
        stamp, mac = (part.split("=", 1)[1] for part in headers["mediaindex-signature"].split(","))
        expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(mac, expected)
    # And the log's table shows each with its state, attempts and status
    table = admin(server, "webhooks", "deliveries", hook_id, "--limit", "1", cwd=here)
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["id", "event", "state", "attempts", "status", "next_attempt_at", "last_error"]
    assert len(rows) == 1 and rows[0].split()[2:5] == ["succeeded", "1", "200"]

    # Redeliver sends the same delivery (same id) again
    first = deliveries[0]["id"]
    done = admin(server, "webhooks", "redeliver", hook_id, first, cwd=here)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"redelivering {first} (")
    deadline = time.monotonic() + 60
    while [h["mediaindex-delivery"] for h, _ in receiver.got].count(first) < 2:
        assert time.monotonic() < deadline, receiver.got
        time.sleep(0.2)
    # enable answers the webhook
    done = admin(server, "webhooks", "enable", hook_id, cwd=here)
    assert (done.returncode, done.stdout.strip()) == (0, f"enabled {hook_id}")
    # Unknown ids are 404, exit 1
    one_error(
        admin(server, "webhooks", "redeliver", hook_id, "dlv_nope", cwd=here),
        1,
        "error: delivery_not_found: ",
    )
    # delete removes it with its log
    done = admin(server, "webhooks", "delete", hook_id, cwd=here)
    assert (done.returncode, done.stdout.strip()) == (0, f"deleted {hook_id}")
    assert hook_id not in admin(server, "webhooks", "list", cwd=here).stdout
    for action in ("deliveries", "enable", "delete"):
        one_error(admin(server, "webhooks", action, hook_id, cwd=here), 1, "error: webhook_not_found: ")


def test_webhook_create_errors(server: LiveServer, here: Path) -> None:
    one_error(
        admin(server, "webhooks", "create", "ftp://example.com/x", "--event", "asset.ready", cwd=here),
        1,
        "error: webhook_url_forbidden: url must be http or https (HTTP 400)",
    )
    bad_event = admin(
        server, "webhooks", "create", "https://example.com/x", "--event", "asset.done", cwd=here
    )
    assert bad_event.returncode == 2 and "invalid choice: 'asset.done'" in bad_event.stderr
    no_event = admin(server, "webhooks", "create", "https://example.com/x", cwd=here)
    assert no_event.returncode == 2 and "--event" in no_event.stderr.splitlines()[-1]


# ---- quotas -------------------------------------------------------------------------------------


def test_quotas_show_and_set(server: LiveServer, here: Path) -> None:
    # A tenant of its own, so its quotas bind no other test
    made = mi("--data-dir", str(server.data_dir), "keys", "create", "--tenant", "quota-test", cwd=here)
    key = made.stdout.strip()
    done = admin(server, "quotas", "set", "--max-concurrent-tasks", "3", "--max-media-hours-per-day", "1.5",
                 cwd=here, key=key)  # fmt: skip
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["quota", "limit", "used", "resets_at"]
    limits = {r.split()[0]: r.split()[1] for r in rows}
    assert limits["max_concurrent_tasks"] == "3" and limits["max_media_hours_per_day"] == "1.5"
    # What set left out went back to the operator's default (this server's: none)
    assert limits["max_stored_bytes"] == "none"
    shown = json.loads(admin(server, "quotas", "show", "--json", cwd=here, key=key).stdout)
    assert shown["quotas"]["max_concurrent_tasks"] == 3
    # 'default' clears one
    done = admin(server, "quotas", "set", "--max-concurrent-tasks", "default", "--json", cwd=here, key=key)
    assert json.loads(done.stdout)["quotas"]["max_concurrent_tasks"] is None
    # Usage errors: nothing to set, a negative or non-numeric value
    one_error(
        admin(server, "quotas", "set", cwd=here, key=key), 2, "error: give at least one of --max-stored-bytes"
    )
    for value in ("-1", "lots"):
        bad = admin(server, "quotas", "set", "--requests-per-minute", value, cwd=here, key=key)
        assert bad.returncode == 2 and "--requests-per-minute" in bad.stderr.splitlines()[-1]


# ---- models -------------------------------------------------------------------------------------


def test_the_cli_imports_no_model_library_to_start(here: Path) -> None:
    probe = (
        "import sys; from mediaindex.cli.app import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'transformers', 'mediaindex.ml') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_export_clip_errors_are_one_line(here: Path) -> None:
    dest = here / "clip"
    dest.mkdir()
    one_error(mi("models", "export-clip", "openai/clip-vit-base-patch32", str(dest), cwd=here), 1,
              f"error: {dest} already exists: choose a new directory, or remove it first")  # fmt: skip
    one_error(mi("models", "export-clip", "./no-such-dir", str(here / "new"), cwd=here), 2,
              "error: no checkpoint directory at ./no-such-dir")  # fmt: skip
    empty = here / "empty"
    empty.mkdir()
    one_error(mi("models", "export-clip", str(empty), str(here / "new"), "--offline", cwd=here), 1,
              f"error: cannot read a CLIP checkpoint from {empty}: ")  # fmt: skip
    assert not (here / "new").exists()


@pytest.mark.slow
def test_export_clip_writes_the_directory_the_runtime_loads(here: Path) -> None:
    from mediaindex.ml.clip import ClipEncoder
    from tests.functional.test_ml import build_tiny_clip

    checkpoint = build_tiny_clip(here / "tiny-clip", seed=5)
    done = mi("models", "export-clip", str(checkpoint), "models/clip", "--offline", cwd=here)
    assert done.returncode == 0, done.stderr
    dest = Path(done.stdout.strip())
    assert dest == (here / "models" / "clip").resolve()
    # (transformers' own progress bars come before it: a hub download takes a while)
    assert done.stderr.splitlines()[-1] == f"exported {checkpoint}; set MEDIAINDEX_CLIP_MODEL_PATH to:"
    assert ClipEncoder(dest).encode_text(["a red square"]).shape == (1, 16)
