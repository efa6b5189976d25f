"""What an attacker tries next against the URL fetcher (net/: url_guard, pinned, download), on
loopback servers: DNS rebinding between the check and the connection, a long redirect chain, a gzip
bomb, and sources too slow to finish. No test leaves the machine: names resolve through injected
resolvers and connections to "public" addresses are routed to loopback by an injected socket
backend."""

from __future__ import annotations

import gzip
import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpcore
import pytest

from mediaindex.domain.errors import MediaError, ValidationError
from mediaindex.net.budget import FetchAborted, FetchBudget, abort_in_flight
from mediaindex.net.download import download
from mediaindex.net.pinned import PinnedBackend
from mediaindex.net.url_guard import check_url

PUBLIC = "93.184.216.34"  # what the check is told the name resolves to


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str]]  # (path, Host header) of every request
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("host", "")))
        if self.path.startswith("/r/"):  # a redirect chain /r/0 -> /r/1 -> ... -> /r/50 -> /ok
            n = int(self.path.rsplit("/", 1)[1])
            self.send_response(302)
            self.send_header("Location", f"/r/{n + 1}" if n < 50 else "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/bomb":  # 64 MiB of zeros, gzip-encoded into about 64 KiB
            body = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/trickle":  # claims 1 MB, sends 1 byte a second
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            try:
                for _ in range(1_000_000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(1.0)
            except OSError:
                return
        else:
            body = b"fine"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


Server = tuple[int, type[_Handler]]


def _public(host: str, port: int) -> list[str]:
    return [PUBLIC]


@pytest.fixture
def server() -> Iterator[Server]:
    handler = type("Handler", (_Handler,), {"seen": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], handler
    srv.shutdown()
    srv.server_close()


class Loopback(httpcore.NetworkBackend):
    """Opens every connection on loopback, whatever address it is asked for, and records them."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []
        self._real = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, *args: Any) -> Any:
        self.asked.append((host, port))
        return self._real.connect_tcp("127.0.0.1", port, timeout, *args)


class Rebinding:
    """A DNS answer that changes: public to the first question, loopback to every later one."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return [PUBLIC] if len(self.calls) == 1 else ["127.0.0.1"]


def _fetch(url: str, dest: Path, **kw: Any) -> tuple[int, str | None]:
    args: dict[str, Any] = {
        "max_bytes": 10 * 1024 * 1024,
        "allow_private": False,
        "timeout_s": 5,
        "max_redirects": 5,
        **kw,
    }
    return download(url, dest, **args)


def test_the_connection_goes_to_the_checked_address_not_a_second_answer(
    server: Server, tmp_path: Path
) -> None:
    port, handler = server
    resolver, loop = Rebinding(), Loopback()
    # Given a name that answers public to the check and loopback to any later lookup
    size, _ = _fetch(f"http://rebind.test:{port}/ok", tmp_path / "out", resolver=resolver, connect_via=loop)
    # Then it was looked up once, and the socket was opened to the checked address itself
    assert resolver.calls == ["rebind.test"]
    assert loop.asked == [(PUBLIC, port)]
    # While the request still named the host (Host header), and the body came through
    assert handler.seen == [("/ok", f"rebind.test:{port}")]
    assert size == 4 and (tmp_path / "out").read_bytes() == b"fine"


def test_a_rebinding_name_is_refused_where_the_second_answer_is_checked(tmp_path: Path) -> None:
    """The contrast: had the connection resolved again, the answer would have been loopback;
    checked, that answer is refused."""
    resolver = Rebinding()
    check_url("http://rebind.test/", allow_private=False, resolver=resolver)
    with pytest.raises(ValidationError) as exc:
        check_url("http://rebind.test/", allow_private=False, resolver=resolver)
    assert exc.value.code == "asset_url_forbidden"


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A certificate for `name` signed by itself (trusted by no one), and its key."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_tls_keeps_the_host_name_for_sni_while_connecting_to_the_pinned_address(tmp_path: Path) -> None:
    """The TLS handshake names the URL's host (SNI), and the certificate is checked against it:
    pinning the address does not weaken TLS."""
    cert, key = _self_signed(tmp_path, "pinned.test")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    names: list[str | None] = []

    def sni(sock: Any, name: str | None, c: Any) -> None:
        names.append(name)

    ctx.sni_callback = sni
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"seen": []}))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        loop = Loopback()
        # The certificate is self-signed: the fetch must refuse it, after sending the right SNI
        with pytest.raises(MediaError) as exc:
            _fetch(
                f"https://pinned.test:{srv.server_address[1]}/ok",
                tmp_path / "out",
                resolver=_public,
                connect_via=loop,
            )
        assert exc.value.code == "asset_url_unreachable"
        deadline = time.monotonic() + 2
        while not names and time.monotonic() < deadline:
            time.sleep(0.01)
        assert names == ["pinned.test"]
        assert loop.asked == [(PUBLIC, srv.server_address[1])]
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_redirect_chain_of_50_stops_after_max_redirects(server: Server, tmp_path: Path) -> None:
    port, handler = server
    loop = Loopback()
    with pytest.raises(ValidationError) as exc:
        _fetch(
            f"http://chain.test:{port}/r/0",
            tmp_path / "out",
            resolver=_public,
            connect_via=loop,
        )
    assert exc.value.code == "asset_url_unreachable"
    assert [p for p, _ in handler.seen] == [f"/r/{i}" for i in range(6)]  # 1 + max_redirects requests
    assert not (tmp_path / "out").exists()


def test_a_gzip_bomb_is_stored_as_sent_never_inflated(server: Server, tmp_path: Path) -> None:
    port, _ = server
    dest = tmp_path / "out"
    size, ctype = _fetch(f"http://bomb.test:{port}/bomb", dest, resolver=_public, connect_via=Loopback())
    # 64 MiB of zeros would be over the 10 MiB cap once inflated; as sent it is about 64 KiB
    assert size == dest.stat().st_size < 200 * 1024
    assert dest.read_bytes()[:2] == b"\x1f\x8b"  # still gzip: probe will call it unsupported media
    assert ctype == "video/mp4"
    print(f"gzip bomb: 64 MiB inflated, {size} bytes stored")


def test_a_trickling_source_ends_at_the_deadline(server: Server, tmp_path: Path) -> None:
    port, _ = server
    t0 = time.monotonic()
    with pytest.raises(MediaError) as exc:
        _fetch(
            f"http://slow.test:{port}/trickle",
            tmp_path / "out",
            resolver=_public,
            connect_via=Loopback(),
            deadline_s=2.0,
        )
    took = time.monotonic() - t0
    assert exc.value.code == "asset_url_unreachable" and "within 2 s" in exc.value.message
    assert 1.9 <= took < 30, (
        took
    )  # the source would take days: the deadline ended it (generous for a loaded CI machine)
    assert not (tmp_path / "out").exists()
    print(f"trickle 1 B/s, deadline 2 s: ended after {took:.2f} s")


def test_a_trickling_source_ends_under_the_minimum_rate(server: Server, tmp_path: Path) -> None:
    port, _ = server
    t0 = time.monotonic()
    with pytest.raises(MediaError) as exc:
        _fetch(
            f"http://slow.test:{port}/trickle",
            tmp_path / "out",
            resolver=_public,
            connect_via=Loopback(),
            deadline_s=600,
            min_rate_bytes_s=1024,
            rate_grace_s=1.5,
        )
    took = time.monotonic() - t0
    assert exc.value.code == "asset_url_unreachable" and "minimum average" in exc.value.message
    assert 1.4 <= took < 30, (
        took
    )  # the source would take days: the deadline ended it (generous for a loaded CI machine)


def test_abort_in_flight_ends_a_download_at_once(server: Server, tmp_path: Path) -> None:
    port, _ = server
    box: dict[str, BaseException] = {}

    def run() -> None:
        try:
            _fetch(
                f"http://slow.test:{port}/trickle",
                tmp_path / "out",
                resolver=_public,
                connect_via=Loopback(),
            )
        except BaseException as e:
            box["e"] = e

    t = threading.Thread(target=run)
    t.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    abort_in_flight()
    t.join(5)
    assert not t.is_alive() and time.monotonic() - t0 < 3.0  # at once, not at a deadline
    assert isinstance(box["e"], FetchAborted)  # not the source's fault: no failure recorded


def test_a_connection_to_an_unchecked_host_is_refused() -> None:
    backend = PinnedBackend(FetchBudget(deadline_s=5))
    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp("never-checked.test", 80)


@pytest.mark.parametrize(
    "address",
    [
        "fec0::1",  # site-local: deprecated, still routed inside some sites; Python calls it global
        "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
        "2002:a00:1::1",  # 6to4 wrapping 10.0.0.1
        "2002:808:808::1",  # 6to4 at all: deprecated, and a relay decides where it lands
        "::ffff:169.254.169.254",  # the metadata service, IPv4-mapped
        "64:ff9b::a9fe:a9fe",  # the same through NAT64
    ],
)
def test_ipv6_forms_that_reach_private_space_are_refused(address: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_url("http://images.example/a.jpg", allow_private=False, resolver=lambda host, port: [address])
    assert refused.value.code == "asset_url_forbidden"


def test_a_public_ipv6_address_passes() -> None:
    public = "2606:4700:4700::1111"
    assert check_url("http://images.example/a.jpg", allow_private=False, resolver=lambda h, p: [public]) == [
        public
    ]
