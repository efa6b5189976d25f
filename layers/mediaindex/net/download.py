"""The download of a user URL (`download`): every redirect hop followed by hand and checked
before it is requested (`guarded_stream`), each connection pinned to the addresses its check
accepted, within a size limit and a `FetchBudget` (an overall deadline, a minimum average rate).
Bodies are saved as sent (`Accept-Encoding: identity`, raw bytes): a compressed body is never
inflated here, so a gzip bomb stays its own size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin

import httpcore
import httpx

from mediaindex.domain.errors import MediaError, PayloadTooLargeError, ValidationError
from mediaindex.net.budget import FetchAborted, FetchBudget, FetchTooSlow
from mediaindex.net.pinned import PinnedBackend, pinned_client
from mediaindex.net.url_guard import Resolver, check_url, system_resolver


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
