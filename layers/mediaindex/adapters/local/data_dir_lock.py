"""One server per data dir. `mediaindex serve` holds an exclusive flock on `server.lock` in the data
dir for its lifetime; the file names the holder (pid, url), so that a second server can say who has
the dir and the CLI can find the URL without being told the port.

The kernel drops a flock when its process dies, kill -9 included: a lock file left behind then only
holds stale text, and `running_server` reports nobody because it can take the lock itself."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = "server.lock"


@dataclass(frozen=True)
class ServerInfo:
    """What the lock file says about the server holding it (None where it has not said yet)."""

    pid: int | None
    url: str | None


class DataDirInUse(Exception):
    def __init__(self, data_dir: Path, holder: ServerInfo) -> None:
        who = f"pid {holder.pid}" if holder.pid else "another process"
        where = f" at {holder.url}" if holder.url else ""
        super().__init__(f"the data dir {data_dir.resolve()} is in use by a mediaindex server ({who}{where})")
        self.data_dir = data_dir
        self.holder = holder


class DataDirLock:
    """The server's exclusive hold on a data dir: `acquire` once at start, `release` at exit."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, url: str, *, wait_s: float = 2.0) -> None:
        """Takes the lock and writes this process's pid and `url` into it; raises DataDirInUse when
        another process keeps it for `wait_s` (a `running_server` probe holds it for an instant)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read(fd)
                    os.close(fd)
                    raise DataDirInUse(self.data_dir, holder) from None
                time.sleep(0.05)
        self._fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "url": url}).encode(), 0)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)  # nobody should read our url after we are gone
        os.close(self._fd)  # closing the last descriptor drops the flock
        self._fd = None

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def running_server(data_dir: Path) -> ServerInfo | None:
    """The server holding `data_dir`, or None when none does (no lock file, or a stale one)."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read(fd: int) -> ServerInfo:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid, url = data.get("pid"), data.get("url")
    return ServerInfo(
        pid=pid if isinstance(pid, int) else None, url=url if isinstance(url, str) and url else None
    )
