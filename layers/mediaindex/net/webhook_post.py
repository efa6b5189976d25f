"""One webhook POST: the target checked by the same SSRF guard as asset_url and connected only at
the addresses the check accepted (net/pinned.py), short timeouts, no redirects followed, and no
more of the answer read than a small cap (only its status counts)."""

from __future__ import annotations

import httpcore
import httpx

from mediaindex.domain.errors import ValidationError
from mediaindex.net.budget import FetchBudget
from mediaindex.net.pinned import PinnedBackend, pinned_client
from mediaindex.net.url_guard import Resolver, system_resolver
from mediaindex.net.webhook_target import PostResult, check_webhook_url


def post_signed(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_private: bool,
    timeout_s: float,
    max_response_bytes: int,
    resolver: Resolver = system_resolver,
    connect_via: httpcore.NetworkBackend | None = None,
) -> PostResult:
    """POSTs `body` once. The URL is checked again here (its name may resolve elsewhere now)."""
    try:
        addresses = check_webhook_url(url, allow_private=allow_private, resolver=resolver)
    except ValidationError as e:
        return PostResult(None, f"{e.code}: {e.message}")
    # Connect and read each within timeout_s; the whole exchange within twice that.
    with FetchBudget(deadline_s=2 * timeout_s) as budget:
        backend = PinnedBackend(budget, connect_via=connect_via)
        backend.pin(httpx.URL(url).host, addresses)
        try:
            with (
                pinned_client(backend) as client,
                client.stream(
                    "POST",
                    url,
                    content=body,
                    headers={**headers, "content-type": "application/json"},
                    timeout=timeout_s,
                    follow_redirects=False,
                ) as resp,
            ):
                read = 0
                for chunk in resp.iter_raw(1024):
                    read += len(chunk)
                    if read >= max_response_bytes:
                        break
                status = resp.status_code
        except Exception as e:  # noqa: BLE001 - any failure is one failed attempt
            return PostResult(None, f"{type(e).__name__}: {e}"[:300])
    if 200 <= status < 300:
        return PostResult(status, None)
    return PostResult(status, f"HTTP {status}")
