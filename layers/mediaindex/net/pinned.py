"""The transport a fetch connects through: `PinnedBackend` connects a host only to the addresses
its check accepted (the connection goes to the checked IP while Host, SNI and certificate checks
keep the URL's host name), so a name that answers public to the check and private to the connection
(DNS rebinding) cannot slip through. Every connection it opens answers to the download's
`FetchBudget` (a blocked read or write wakes to check the deadline, the rate and an abort), and
`pinned_client` is an httpx client over it, with no proxies from the environment."""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from mediaindex.net.budget import FetchBudget

_HEADERS = {"user-agent": "mediaindex-fetch/1", "accept-encoding": "identity"}


class _BudgetStream(httpcore.NetworkStream):
    """A connection whose reads and writes answer to the download's budget: a blocked read wakes
    every SLICE_S to check the deadline, the rate and an abort; a read timeout still applies."""

    def __init__(self, inner: httpcore.NetworkStream, budget: FetchBudget) -> None:
        self._inner = inner
        self._budget = budget

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        while True:
            self._budget.check()
            wait, until = self._budget.slice(timeout)
            try:
                data = self._inner.read(max_bytes, timeout=wait)
            except httpcore.ReadTimeout:
                if until is not None and time.monotonic() >= until:
                    raise
                continue  # a slice ended, not the read timeout: look at the budget again
            self._budget.received += len(data)
            return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._budget.check()
        remaining = max(0.001, self._budget.remaining())
        self._inner.write(buffer, timeout=remaining if timeout is None else min(timeout, remaining))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self._budget.check()
        remaining = max(0.001, self._budget.remaining())
        tls = self._inner.start_tls(
            ssl_context, server_hostname, remaining if timeout is None else min(timeout, remaining)
        )
        return _BudgetStream(tls, self._budget)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects a host only to the addresses its check accepted (`pin`), never resolving again;
    TLS still names the host (SNI, certificate) because httpcore passes it to `start_tls`.
    `connect_via` is the backend that opens the sockets (tests swap it)."""

    def __init__(self, budget: FetchBudget, *, connect_via: httpcore.NetworkBackend | None = None) -> None:
        self._budget = budget
        self._via = connect_via or httpcore.SyncBackend()
        self._pins: dict[str, list[str]] = {}
        self.connected: list[tuple[str, int]] = []  # (address, port) of each connection opened

    def pin(self, host: str, addresses: list[str] | None) -> None:
        """`addresses` None: private addresses are allowed, the name is resolved as usual."""
        self._pins[host.rstrip(".").lower()] = list(addresses) if addresses is not None else []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        key = host.rstrip(".").lower()
        if key not in self._pins:
            raise httpcore.ConnectError(f"{host} was not checked before connecting")
        addresses = self._pins[key] or [host]
        last: Exception | None = None
        for addr in addresses:
            self._budget.check()
            remaining = max(0.001, self._budget.remaining())
            wait = remaining if timeout is None else min(timeout, remaining)
            try:
                stream = self._via.connect_tcp(addr, port, wait, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
                continue
            self.connected.append((addr, port))
            return _BudgetStream(stream, self._budget)
        assert last is not None
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are never fetched")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=False)


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool on `backend`: only the pool differs, so the
    parent's constructor (which would build a pool and an SSL context of its own) is not run."""

    def __init__(self, backend: PinnedBackend) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=4,
            max_keepalive_connections=0,
            retries=0,
            network_backend=backend,
        )


def pinned_client(backend: PinnedBackend) -> httpx.Client:
    """A client whose every connection goes through `backend` (no proxies from the environment)."""
    return httpx.Client(transport=_PinnedTransport(backend), headers=_HEADERS, trust_env=False)
