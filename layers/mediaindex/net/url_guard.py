"""What a server-side fetch of a user URL (asset_url, query_image_url) may reach, against SSRF:
http(s) only, no credentials in the URL, and every address the host resolves to must be public.
Loopback, private, link-local (cloud metadata at 169.254.169.254), multicast, reserved and
unspecified ranges are refused unless a setting allows them. `check_url` returns the addresses it
accepted, which is all a fetch may then connect to (net/pinned.py); net/download.py checks again
on each redirect hop."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from mediaindex.domain.errors import ValidationError

Resolver = Callable[[str, int], list[str]]
_METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ValidationError(
            f"asset_url host {host!r} does not resolve", code="asset_url_unreachable"
        ) from e
    return sorted({str(i[4][0]) for i in infos})


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        # Python counts both as global: deprecated site-local (fec0::/10) routes inside a site, and
        # 6to4 (2002::/16, deprecated too) carries an IPv4 address a relay may deliver to (2002:7f00:1::).
        elif ip.is_site_local or ip.sixtofour is not None:
            return True
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
