"""One webhook POST: the target checked by the same SSRF guard as asset_url and connected only at
the addresses the check accepted (net/pinned.py), short timeouts, no redirects followed, and no
more of the answer read than a small cap (only its status counts)."""

from __future__ import annotations

from dataclasses import dataclass

import httpcore
import httpx

from mediaindex.domain.errors import ValidationError
from mediaindex.net.budget import FetchBudget
from mediaindex.net.pinned import PinnedBackend, pinned_client
from mediaindex.net.url_guard import Resolver, check_url, system_resolver

_ERROR_CODE = {"asset_url_forbidden": "webhook_url_forbidden", "asset_url_invalid": "webhook_url_invalid"}


@dataclass(frozen=True)
class PostResult:
    status_code: int | None  # None: no answer (refused, unreachable, timed out)
    error: str | None  # why it failed; None for a 2xx

    @property
    def ok(self) -> bool:
        return self.error is None


def check_webhook_url(
    url: str, *, allow_private: bool, resolver: Resolver = system_resolver
) -> list[str] | None:
    """check_url with the webhook's own codes: `webhook_url_forbidden` (private, loopback,
    link-local or metadata targets; credentials; not http(s)), `webhook_url_invalid`."""
    try:
        return check_url(url, allow_private=allow_private, resolver=resolver)
    except ValidationError as e:
        code = _ERROR_CODE.get(e.code, "webhook_url_unreachable")
        raise ValidationError(e.message.replace("asset_url", "url"), code=code, field="url") from e


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
