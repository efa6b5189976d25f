"""A webhook's target checked by the same SSRF guard as asset_url, with the webhook's own error codes,
and what one delivery attempt came to. No HTTP client here: the API imports this at start, and
only a delivery loads httpx (net/webhook_post.py)."""

from __future__ import annotations

from dataclasses import dataclass

from mediaindex.domain.errors import ValidationError
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
