"""The local runtime's server from this process's side: the data dir's lock and the port it
needs, a free port, waiting for health, and keys made straight in the data dir."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mediaindex.cli.errors import EXIT_CONNECTION, EXIT_IN_USE, CliError
from mediaindex.settings import Settings


def create_local_key(settings: Settings, tenant_name: str) -> tuple[str, str, str]:
    """A key made straight in the local data dir (safe beside its running server: SQLite WAL).
    Returns (tenant description, key id, raw key)."""
    from mediaindex.bootstrap import build_runtime

    runtime = build_runtime(settings.model_copy(update={"start_workers": False}))
    try:
        tenant, key, raw = runtime.services.keys.create_key(tenant_name)
    finally:
        runtime.close()
    return f"{tenant.name} ({tenant.id})", key.id, raw


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, *, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/v1/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise CliError(EXIT_CONNECTION, f"the server at {url} did not answer /v1/health")
        time.sleep(0.3)


@contextmanager
def local_server(settings: Settings) -> Iterator[Any]:
    """Holds the data dir's lock while the block runs; raises DataDirInUse (exit 5) when another
    server holds it, and CliError when the port is taken."""
    from mediaindex.adapters.local.data_dir_lock import DataDirLock

    with DataDirLock(settings.data_dir) as lock:
        lock.acquire(settings.base_url)
        if not port_free(settings.host, settings.port):
            raise CliError(
                EXIT_IN_USE,
                f"port {settings.port} on {settings.host} is already in use; pick another with --port",
            )
        yield lock
