"""The reliability suite attacks the real server: `python -m mediaindex.cli serve` in a subprocess,
over loopback HTTP, killed with SIGKILL where a test says so."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
_KEY_LINE = re.compile(r"\(shown once\): (\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """One `mediaindex serve` process over a data dir; start again after a kill to restart it."""

    def __init__(self, data_dir: Path, log_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "MEDIAINDEX_DATA_DIR": str(data_dir),
            "MEDIAINDEX_WORKERS": "1",
            "MEDIAINDEX_RATE_LIMIT_PER_MINUTE": "0",
            "MEDIAINDEX_JOB_RETRY_BACKOFF_S": "0",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.key: str | None = None

    @property
    def logs(self) -> list[Path]:
        return sorted(self.log_dir.glob("server-*.log"))

    def start(self, *, create_key: str | None = None, timeout_s: float = 60.0) -> None:
        self.runs += 1
        log = (self.log_dir / f"server-{self.runs}.log").open("wb")
        cmd = [sys.executable, "-m", "mediaindex.cli", "serve", "--port", str(self.port)]
        if create_key:
            cmd += ["--create-key", create_key]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.logs[-1].read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not answer /v1/health in time")
        if create_key:
            found = _KEY_LINE.search(self.logs[-1].read_text())
            assert found, "the server did not print the key it created"
            self.key = found.group(1)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> httpx.Client:
        assert self.key
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30)

    def db_rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Reads the server's database read-only, beside the running server (WAL lets readers in)."""
        conn = sqlite3.connect(f"file:{self.data_dir / 'mediaindex.db'}?mode=ro", uri=True, timeout=5)
        try:
            return [tuple(r) for r in conn.execute(sql, args).fetchall()]
        finally:
            conn.close()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    data = tmp_path / "data"
    logs = tmp_path / "logs"
    logs.mkdir()
    server = LiveServer(data, logs)
    yield server
    server.stop()


def upload(client: httpx.Client, index_id: str, path: Path, **fields: Any) -> dict[str, Any]:
    """Creates an asset and sends its bytes to the signed URL (never with the API key)."""
    data = path.read_bytes()
    resp = client.post(
        "/v1/assets", json={"index_id": index_id, "name": path.name, "size_bytes": len(data), **fields}
    )
    assert resp.status_code == 201, resp.text
    out = resp.json()
    put = httpx.put(out["upload"]["url"], content=data, headers=out["upload"]["headers"], timeout=30)
    assert put.status_code == 200, put.text
    return dict(out["asset"])


def wait_settled(client: httpx.Client, asset_id: str, timeout_s: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        asset = client.get(f"/v1/assets/{asset_id}").json()
        if asset["status"] in ("ready", "failed") and not client.get("/v1/tasks/active").json()["data"]:
            return dict(asset)
        time.sleep(0.2)
    raise AssertionError(f"asset {asset_id} did not settle: {asset}")
