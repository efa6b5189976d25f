"""One server per data dir: the second `mediaindex serve` on a dir exits at once naming the first,
and a server killed with SIGKILL leaves nothing that blocks the next start."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from mediaindex.adapters.local.data_dir_lock import (
    LOCK_FILE,
    DataDirInUse,
    DataDirLock,
    ServerInfo,
    running_server,
)
from tests.functional.test_cli import cli_command, cli_env, mi
from tests.reliability.conftest import REPO, LiveServer, free_port


def _serve(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command("--data-dir", str(data_dir), "serve", "--port", str(port)),
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_lock_names_its_holder_and_is_free_again_after_release(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire("http://127.0.0.1:1234")
    try:
        assert running_server(tmp_path) == ServerInfo(pid=os.getpid(), url="http://127.0.0.1:1234")
        with pytest.raises(DataDirInUse) as refused:
            DataDirLock(tmp_path).acquire("http://127.0.0.1:9", wait_s=0.2)
        assert refused.value.holder == ServerInfo(pid=os.getpid(), url="http://127.0.0.1:1234")
        assert f"(pid {os.getpid()} at http://127.0.0.1:1234)" in str(refused.value)
    finally:
        first.release()
    assert running_server(tmp_path) is None
    assert (tmp_path / LOCK_FILE).read_text() == ""  # nobody reads a gone server's url
    with DataDirLock(tmp_path) as again:
        again.acquire("http://127.0.0.1:9")
        assert running_server(tmp_path) == ServerInfo(pid=os.getpid(), url="http://127.0.0.1:9")


def test_a_stale_lock_file_blocks_nothing(tmp_path: Path) -> None:
    # Given the text a SIGKILLed server left behind (the kernel dropped its flock)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 2**22 + 1, "url": "http://127.0.0.1:1"}))
    assert running_server(tmp_path) is None
    with DataDirLock(tmp_path) as lock:
        lock.acquire("http://127.0.0.1:2", wait_s=0)
        assert json.loads((tmp_path / LOCK_FILE).read_text()) == {
            "pid": os.getpid(),
            "url": "http://127.0.0.1:2",
        }


def test_a_second_server_on_a_data_dir_exits_at_once_naming_the_first(live_server: LiveServer) -> None:
    live_server.start()
    assert live_server.proc is not None
    started = time.monotonic()
    second = _serve(live_server.data_dir, free_port())
    assert second.returncode == 5, second.stderr
    assert second.stderr.strip() == (
        f"error: the data dir {live_server.data_dir.resolve()} is in use by a mediaindex server"
        f" (pid {live_server.proc.pid} at {live_server.url}); stop it first, or use another --data-dir"
    )
    assert time.monotonic() - started < 30  # it never built a runtime over the dir
    assert mi("status", "--url", live_server.url, cwd=live_server.log_dir).returncode == 0


def test_after_a_kill_9_the_next_server_starts_and_is_found(live_server: LiveServer) -> None:
    live_server.start()
    live_server.kill9()
    # The file still names the dead server, but nobody holds its lock
    assert json.loads((live_server.data_dir / LOCK_FILE).read_text())["url"] == live_server.url
    assert running_server(live_server.data_dir) is None
    live_server.port = free_port()
    live_server.url = f"http://127.0.0.1:{live_server.port}"
    live_server.start()
    assert live_server.proc is not None
    assert running_server(live_server.data_dir) == ServerInfo(pid=live_server.proc.pid, url=live_server.url)
    status = mi("--data-dir", str(live_server.data_dir), "status", cwd=live_server.log_dir)
    assert status.returncode == 0 and json.loads(status.stdout)["url"] == live_server.url
    # And a clean stop leaves the lock free and empty
    live_server.stop()
    assert running_server(live_server.data_dir) is None
    assert (live_server.data_dir / LOCK_FILE).read_text() == ""


def test_a_port_in_use_is_a_clear_error(live_server: LiveServer, tmp_path: Path) -> None:
    live_server.start()
    other = _serve(tmp_path / "other-data", live_server.port)
    assert other.returncode == 5, other.stderr
    assert other.stderr.strip() == (
        f"error: port {live_server.port} on 127.0.0.1 is already in use; pick another with --port"
    )
    assert running_server(tmp_path / "other-data") is None  # it let go of its own dir
