"""Guards server-side fetches of user URLs (asset_url, query_image_url) against SSRF: http(s)
only, no credentials in the URL, and every address the host resolves to must be public, checked
again on each redirect hop. Loopback, private, link-local (cloud metadata at 169.254.169.254),
multicast, reserved and unspecified ranges are refused unless a setting allows them."""

from __future__ import annotations

import ipaddress
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from mediaindex.domain.errors import MediaError, PayloadTooLargeError, ValidationError

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
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified


def check_url(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> None:
    """Raises ValidationError(`asset_url_forbidden`) for a URL the service must not fetch."""
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
        return
    host = parts.hostname.rstrip(".").lower()
    if host in _METADATA_HOSTS or host == "localhost" or host.endswith(".localhost"):
        raise ValidationError(
            f"asset_url host {host!r} is not allowed", code="asset_url_forbidden", field="asset_url"
        )
    for addr in resolver(host, port):
        if _forbidden(ipaddress.ip_address(addr.split("%")[0])):
            raise ValidationError(
                "asset_url resolves to a private, loopback, link-local or metadata address",
                code="asset_url_forbidden",
                field="asset_url",
            )


@contextmanager
def guarded_stream(
    url: str,
    *,
    allow_private: bool,
    timeout_s: float,
    max_redirects: int,
    client: httpx.Client,
    resolver: Resolver = system_resolver,
) -> Iterator[httpx.Response]:
    """Follows redirects by hand so every hop is checked before it is requested."""
    for _ in range(max_redirects + 1):
        check_url(url, allow_private=allow_private, resolver=resolver)
        with client.stream("GET", url, timeout=timeout_s, follow_redirects=False) as resp:
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
    client: httpx.Client,
    resolver: Resolver = system_resolver,
) -> tuple[int, str | None]:
    """Streams `url` to `dest` within `max_bytes`. Returns (size, content type)."""
    size = 0
    try:
        with guarded_stream(
            url,
            allow_private=allow_private,
            timeout_s=timeout_s,
            max_redirects=max_redirects,
            client=client,
            resolver=resolver,
        ) as resp:
            if resp.status_code != 200:
                raise MediaError(f"asset_url answered HTTP {resp.status_code}", code="asset_url_unreachable")
            declared = int(resp.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise PayloadTooLargeError(
                    f"asset_url is over {max_bytes} bytes", code="asset_file_too_large"
                )
            with dest.open("wb") as out:
                for chunk in resp.iter_bytes(1024 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLargeError(
                            f"asset_url is over {max_bytes} bytes", code="asset_file_too_large"
                        )
                    out.write(chunk)
            return size, resp.headers.get("content-type")
    except httpx.HTTPError as e:
        raise MediaError(
            f"asset_url could not be fetched: {type(e).__name__}", code="asset_url_unreachable"
        ) from e


MAX_QUERY_IMAGE_BYTES = 20 * 1024 * 1024


def image_fetcher(*, allow_private: bool, timeout_s: float, max_redirects: int) -> Callable[[str], bytes]:
    """A loader for `query_image_url`: the same guard as asset_url, capped at 20 MiB. A bad URL is
    the caller's error (400), never a crash."""

    def load(url: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="mi-query-") as tmp, httpx.Client() as client:
            dest = Path(tmp) / "image"
            try:
                download(
                    url,
                    dest,
                    max_bytes=MAX_QUERY_IMAGE_BYTES,
                    allow_private=allow_private,
                    timeout_s=timeout_s,
                    max_redirects=max_redirects,
                    client=client,
                )
            except MediaError as e:
                raise ValidationError(e.message, code=e.code, field="query_image_url") from e
            except ValidationError as e:
                raise ValidationError(e.message, code=e.code, field="query_image_url") from e
            return dest.read_bytes()

    return load
