"""Guards server-side fetches of user URLs (asset_url, query_image_url) against SSRF: http(s)
only, no credentials in the URL, and every address the host resolves to must be public, checked
again on each redirect hop. Loopback, private, link-local (cloud metadata at 169.254.169.254),
multicast, reserved and unspecified ranges are refused unless a setting allows them.

A fetch connects only to the addresses its check accepted (`PinnedBackend`: the connection goes
to the checked IP while Host, SNI and certificate checks keep the URL's host name), so a name that
answers public to the check and private to the connection (DNS rebinding) cannot slip through.

Every download also has a budget (`FetchBudget`): an overall deadline across all its hops and
reads, and a minimum average rate after a grace period, so a source that trickles bytes cannot hold
a worker or a request thread for long; `abort_in_flight()` (at shutdown) ends every download in
flight within a fraction of a second. Bodies are saved as sent (`Accept-Encoding: identity`, raw
bytes): a compressed body is never inflated here, so a gzip bomb stays its own size."""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from mediaindex.domain.errors import MediaError, PayloadTooLargeError, UnavailableError, ValidationError

Resolver = Callable[[str, int], list[str]]
_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}
# A blocked read or connect wakes this often to look at the budget (deadline, rate, abort).
_SLICE_S = 0.25
_HEADERS = {"user-agent": "mediaindex-fetch/1", "accept-encoding": "identity"}


class FetchAborted(Exception):
    """The process is shutting down and gave up the download in flight: the source is not at
    fault, so callers must not record a failure (a job stays to be resumed)."""


class FetchTooSlow(Exception):
    """The download ran past its deadline or under its minimum average rate."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ValidationError(
            f"asset_url host {host!r} does not resolve", code="asset_url_unreachable"
        ) from e
    return sorted({str(i[4][0]) for i in infos})


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified


def check_url(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> list[str] | None:
    """Raises ValidationError(`asset_url_forbidden`) for a URL the service must not fetch. Returns
    the addresses the host resolved to, all checked (what a fetch may connect to), or None when
    private addresses are allowed (nothing was resolved)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise ValidationError(
            "asset_url is not a valid URL", code="asset_url_invalid", field="asset_url"
        ) from e
    if parts.scheme not in ("http", "https"):
        raise ValidationError(
            "asset_url must be http or https", code="asset_url_forbidden", field="asset_url"
        )
    if not parts.hostname:
        raise ValidationError("asset_url has no host", code="asset_url_invalid", field="asset_url")
    if parts.username or parts.password:
        raise ValidationError(
            "asset_url must not carry credentials", code="asset_url_forbidden", field="asset_url"
        )
    if allow_private:
        return None
    host = parts.hostname.rstrip(".").lower()
    if host in _METADATA_HOSTS or host == "localhost" or host.endswith(".localhost"):
        raise ValidationError(
            f"asset_url host {host!r} is not allowed", code="asset_url_forbidden", field="asset_url"
        )
    addresses = resolver(host, port)
    if not addresses:
        raise ValidationError(f"asset_url host {host!r} does not resolve", code="asset_url_unreachable")
    for addr in addresses:
        if _forbidden(ipaddress.ip_address(addr.split("%")[0])):
            raise ValidationError(
                "asset_url resolves to a private, loopback, link-local or metadata address",
                code="asset_url_forbidden",
                field="asset_url",
            )
    return addresses


# ---- budgets -------------------------------------------------------------------------------------
_in_flight: set[FetchBudget] = set()
_in_flight_lock = threading.Lock()
_aborts = 0  # how many times abort_in_flight ran: a waiter that sees it change gives up


def abort_in_flight() -> None:
    """Ends every download in flight now (they raise FetchAborted within about _SLICE_S): called
    at shutdown, so threads stuck on slow sources let the process exit."""
    global _aborts
    with _in_flight_lock:
        budgets = list(_in_flight)
        _aborts += 1
    for b in budgets:
        b.aborted = True


class FetchBudget:
    """The limits of one download, shared by every connection and read it makes: an overall
    deadline, and after `grace_s` a minimum average rate (bytes received / time elapsed)."""

    def __init__(self, *, deadline_s: float, min_rate_bytes_s: float = 0.0, grace_s: float = 0.0) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + deadline_s
        self.deadline_s = deadline_s
        self.min_rate = min_rate_bytes_s
        self.grace_s = grace_s
        self.received = 0
        self.aborted = False

    def __enter__(self) -> FetchBudget:
        with _in_flight_lock:
            _in_flight.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _in_flight_lock:
            _in_flight.discard(self)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        if self.aborted:
            raise FetchAborted("the download was abandoned: the server is shutting down")
        now = time.monotonic()
        if now >= self.deadline:
            raise FetchTooSlow(f"the download did not finish within {self.deadline_s:.0f} s")
        elapsed = now - self.started
        if self.min_rate > 0 and elapsed > self.grace_s and self.received / elapsed < self.min_rate:
            raise FetchTooSlow(
                f"the source sent {self.received} bytes in {elapsed:.0f} s, under the minimum average"
                f" of {self.min_rate:.0f} bytes/s"
            )

    def slice(self, timeout: float | None) -> tuple[float, float | None]:
        """(how long the next blocking call may wait, when the caller's own timeout ends)."""
        now = time.monotonic()
        until = None if timeout is None else now + timeout
        wait = min(_SLICE_S, max(0.0, self.deadline - now))
        if until is not None:
            wait = min(wait, max(0.0, until - now))
        return max(wait, 0.001), until


# ---- pinned connections ----------------------------------------------------------------------------
class _BudgetStream(httpcore.NetworkStream):
    """A connection whose reads and writes answer to the download's budget: a blocked read wakes
    every _SLICE_S to check the deadline, the rate and an abort; a read timeout still applies."""

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


def _host_key(url: str) -> str:
    try:
        return httpx.URL(url).raw_host.decode("ascii").lower()
    except (httpx.InvalidURL, UnicodeError) as e:
        raise ValidationError(
            "asset_url is not a valid URL", code="asset_url_invalid", field="asset_url"
        ) from e


@contextmanager
def guarded_stream(
    url: str,
    *,
    allow_private: bool,
    timeout_s: float,
    max_redirects: int,
    client: httpx.Client,
    resolver: Resolver = system_resolver,
    backend: PinnedBackend | None = None,
) -> Iterator[httpx.Response]:
    """Follows redirects by hand so every hop is checked before it is requested; with `backend`,
    each hop connects only to the addresses its check accepted."""
    for _ in range(max_redirects + 1):
        addresses = check_url(url, allow_private=allow_private, resolver=resolver)
        if backend is not None:
            backend.pin(_host_key(url), addresses)
        with client.stream(
            "GET", url, timeout=timeout_s, follow_redirects=False, headers={"accept-encoding": "identity"}
        ) as resp:
            if resp.is_redirect and "location" in resp.headers:
                url = urljoin(url, resp.headers["location"])
                continue
            yield resp
            return
    raise ValidationError("asset_url redirects too many times", code="asset_url_unreachable")


def download(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    allow_private: bool,
    timeout_s: float,
    max_redirects: int,
    client: httpx.Client | None = None,
    resolver: Resolver = system_resolver,
    deadline_s: float = 3600.0,
    min_rate_bytes_s: float = 0.0,
    rate_grace_s: float = 0.0,
    connect_via: httpcore.NetworkBackend | None = None,
) -> tuple[int, str | None]:
    """Streams `url` to `dest` within `max_bytes` and the budget (`deadline_s` for the whole
    download; after `rate_grace_s`, at least `min_rate_bytes_s` on average). Returns (size, content
    type). Without `client` (the service's own fetches) connections are pinned to the checked
    addresses; a caller that passes its own client keeps its transport (and only the chunk-by-chunk
    checks of the budget). MediaError(`asset_url_unreachable`) for a source that fails or is too
    slow; FetchAborted at shutdown."""
    with FetchBudget(
        deadline_s=deadline_s, min_rate_bytes_s=min_rate_bytes_s, grace_s=rate_grace_s
    ) as budget:
        backend = None
        own = client is None
        if client is None:
            backend = PinnedBackend(budget, connect_via=connect_via)
            client = pinned_client(backend)
        try:
            return _download(
                url,
                dest,
                budget,
                max_bytes,
                allow_private,
                timeout_s,
                max_redirects,
                client,
                resolver,
                backend,
            )
        except FetchTooSlow as e:
            dest.unlink(missing_ok=True)
            raise MediaError(f"asset_url is too slow: {e}", code="asset_url_unreachable") from e
        except httpx.HTTPError as e:
            dest.unlink(missing_ok=True)
            if budget.aborted:
                raise FetchAborted("the download was abandoned: the server is shutting down") from e
            raise MediaError(
                f"asset_url could not be fetched: {type(e).__name__}", code="asset_url_unreachable"
            ) from e
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        finally:
            if own:
                client.close()


def _download(
    url: str,
    dest: Path,
    budget: FetchBudget,
    max_bytes: int,
    allow_private: bool,
    timeout_s: float,
    max_redirects: int,
    client: httpx.Client,
    resolver: Resolver,
    backend: PinnedBackend | None,
) -> tuple[int, str | None]:
    size = 0
    with guarded_stream(
        url,
        allow_private=allow_private,
        timeout_s=timeout_s,
        max_redirects=max_redirects,
        client=client,
        resolver=resolver,
        backend=backend,
    ) as resp:
        if resp.status_code != 200:
            raise MediaError(f"asset_url answered HTTP {resp.status_code}", code="asset_url_unreachable")
        try:
            declared = int(resp.headers.get("content-length") or 0)
        except ValueError:
            declared = 0
        if declared > max_bytes:
            raise PayloadTooLargeError(f"asset_url is over {max_bytes} bytes", code="asset_file_too_large")
        with dest.open("wb") as out:
            # Raw bytes, as sent: a Content-Encoding is never decoded (no inflating a gzip bomb).
            for chunk in resp.iter_raw(1024 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLargeError(
                        f"asset_url is over {max_bytes} bytes", code="asset_file_too_large"
                    )
                out.write(chunk)
                if backend is None:  # a caller's own client: the budget is checked here instead
                    budget.received = size
                    budget.check()
        return size, resp.headers.get("content-type")


MAX_QUERY_IMAGE_BYTES = 20 * 1024 * 1024


class ImageFetcher:
    """The loader of `query_image_url`: the same guard as asset_url, capped at 20 MiB and at
    `deadline_s`, run on at most `slots` threads of its own. A search that finds every slot busy
    is refused at once (503 `service_busy`) rather than queued, so slow image URLs can hold at most
    `slots` of the API's request threads, each for at most `deadline_s`. A bad URL is the caller's
    error (400), never a crash."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout_s: float,
        max_redirects: int,
        deadline_s: float = 15.0,
        slots: int = 4,
        resolver: Resolver = system_resolver,
        connect_via: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._timeout_s = timeout_s
        self._max_redirects = max_redirects
        self._deadline_s = deadline_s
        self._slots = threading.BoundedSemaphore(slots)
        self._resolver = resolver
        self._connect_via = connect_via

    def __call__(self, url: str) -> bytes:
        if not self._slots.acquire(blocking=False):
            raise UnavailableError(
                "too many searches are fetching their query image; retry shortly", code="service_busy"
            )
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["data"] = self._fetch(url)
            except BaseException as e:  # noqa: BLE001 - handed to the waiting request thread
                box["error"] = e
            finally:
                self._slots.release()
                done.set()

        aborts = _aborts
        threading.Thread(target=work, name="mi-image-fetch", daemon=True).start()
        # The fetch ends itself at its deadline; the margin covers a resolver that hangs. The
        # request thread stops waiting at once when the server shuts down.
        give_up = time.monotonic() + self._deadline_s + 2.0
        while not done.wait(_SLICE_S):
            if _aborts != aborts:
                raise UnavailableError("the server is shutting down", code="service_unavailable")
            if time.monotonic() >= give_up:
                raise ValidationError(
                    f"query_image_url did not answer within {self._deadline_s:.0f} s",
                    code="asset_url_unreachable",
                    field="query_image_url",
                )
        if "error" in box:
            raise box["error"]
        data: bytes = box["data"]
        return data

    def _fetch(self, url: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="mi-query-") as tmp:
            dest = Path(tmp) / "image"
            try:
                download(
                    url,
                    dest,
                    max_bytes=MAX_QUERY_IMAGE_BYTES,
                    allow_private=self._allow_private,
                    timeout_s=self._timeout_s,
                    max_redirects=self._max_redirects,
                    resolver=self._resolver,
                    deadline_s=self._deadline_s,
                    connect_via=self._connect_via,
                )
            except FetchAborted as e:
                raise UnavailableError("the server is shutting down", code="service_unavailable") from e
            except (MediaError, ValidationError) as e:
                raise ValidationError(e.message, code=e.code, field="query_image_url") from e
            return dest.read_bytes()


def image_fetcher(
    *,
    allow_private: bool,
    timeout_s: float,
    max_redirects: int,
    deadline_s: float = 15.0,
    slots: int = 4,
) -> ImageFetcher:
    return ImageFetcher(
        allow_private=allow_private,
        timeout_s=timeout_s,
        max_redirects=max_redirects,
        deadline_s=deadline_s,
        slots=slots,
    )
