"""HMAC-signed URLs of the local blob store: what a signature binds, and the codes of refusal."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from mediaindex.adapters.local.fs_blobs import LocalBlobStore
from mediaindex.adapters.local.signing import UrlSigner
from mediaindex.domain.errors import SignatureError

SECRET = b"unit-test-secret-0123456789abcdef"
NOW = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signer(clock: Clock) -> UrlSigner:
    return UrlSigner(SECRET, clock=clock)


def refusal(signer: UrlSigner, method: str, key: str, query: dict[str, str]) -> str:
    with pytest.raises(SignatureError) as e:
        signer.verify(method, key, query)
    return e.value.code


def test_a_signed_url_verifies_to_what_was_signed(signer: UrlSigner) -> None:
    query = signer.sign("put", "originals/t/a/original.mp4", int(NOW) + 60, content_type="video/mp4")

    params = signer.verify("PUT", "originals/t/a/original.mp4", query)

    assert (params.method, params.key, params.content_type, params.is_part) == (
        "PUT",
        "originals/t/a/original.mp4",
        "video/mp4",
        False,
    )


def test_tampered_signature_is_invalid(signer: UrlSigner) -> None:
    query = signer.sign("GET", "k/a", int(NOW) + 60)
    sig = query["sig"]
    query["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    assert refusal(signer, "GET", "k/a", query) == "signature_invalid"


def test_missing_signature_is_invalid(signer: UrlSigner) -> None:
    assert refusal(signer, "GET", "k/a", {"exp": str(int(NOW) + 60)}) == "signature_invalid"
    assert refusal(signer, "GET", "k/a", {}) == "signature_invalid"


def test_wrong_method_is_invalid(signer: UrlSigner) -> None:
    query = signer.sign("GET", "k/a", int(NOW) + 60)
    assert refusal(signer, "PUT", "k/a", query) == "signature_invalid"


def test_other_key_is_invalid(signer: UrlSigner) -> None:
    query = signer.sign("GET", "k/a", int(NOW) + 60)
    assert refusal(signer, "GET", "k/b", query) == "signature_invalid"


def test_other_part_number_or_upload_is_invalid(signer: UrlSigner) -> None:
    query = signer.sign("PUT", "k/a", int(NOW) + 60, upload_id="upl_1", part_number=3)
    assert signer.verify("PUT", "k/a", query).part_number == 3
    assert refusal(signer, "PUT", "k/a", {**query, "part_number": "4"}) == "signature_invalid"
    assert refusal(signer, "PUT", "k/a", {**query, "upload_id": "upl_2"}) == "signature_invalid"
    # A part URL cannot be turned into a single PUT of the whole object either.
    single = {k: v for k, v in query.items() if k not in ("upload_id", "part_number")}
    assert refusal(signer, "PUT", "k/a", single) == "signature_invalid"


def test_edited_filename_or_content_type_is_invalid(signer: UrlSigner) -> None:
    query = signer.sign("GET", "k/a", int(NOW) + 60, filename="a.mp4", content_type="video/mp4")
    assert refusal(signer, "GET", "k/a", {**query, "filename": "evil.html"}) == "signature_invalid"
    assert refusal(signer, "GET", "k/a", {**query, "ct": "text/html"}) == "signature_invalid"


def test_another_secret_does_not_verify(signer: UrlSigner) -> None:
    query = UrlSigner(b"another-secret-0123456789abcdef!").sign("GET", "k/a", int(NOW) + 60)
    assert refusal(signer, "GET", "k/a", query) == "signature_invalid"


def test_expired_is_told_apart_from_invalid(signer: UrlSigner, clock: Clock) -> None:
    # Given a URL valid for 60 s
    query = signer.sign("GET", "k/a", int(NOW) + 60)

    # Then it works until its expiry and is expired after
    clock.now = NOW + 60
    assert signer.verify("GET", "k/a", query).key == "k/a"
    clock.now = NOW + 61
    assert refusal(signer, "GET", "k/a", query) == "signature_expired"
    # and pushing `exp` forward breaks the signature instead
    assert refusal(signer, "GET", "k/a", {**query, "exp": str(int(NOW) + 3600)}) == "signature_invalid"


def test_store_urls_carry_the_signature_the_store_verifies(tmp_path: Path) -> None:
    # Given the store's own part URL
    store = LocalBlobStore(tmp_path, "http://127.0.0.1:9/", SECRET)
    upload_id = store.create_multipart("originals/t/a/original.mp4", "video/mp4")
    url = urlsplit(store.presign_part("originals/t/a/original.mp4", upload_id, 2, 60).url)

    # Then it points at the local app and verifies as that part, and only with its own key
    assert (url.scheme, url.netloc, url.path) == ("http", "127.0.0.1:9", "/_blobs/originals/t/a/original.mp4")
    query = dict(parse_qsl(url.query))
    params = store.verify("PUT", "originals/t/a/original.mp4", query)
    assert (params.upload_id, params.part_number) == (upload_id, 2)
    with pytest.raises(SignatureError) as e:
        store.verify("PUT", "originals/t/a/../a/original.mp4", query)
    assert e.value.code == "signature_invalid"


def test_the_secret_is_never_shown(signer: UrlSigner, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SignatureError) as e:
        signer.verify("GET", "k/a", {"exp": "1", "sig": "x"})
    shown = f"{signer!r} {e.value} {caplog.text}"
    assert SECRET.decode() not in shown
    assert "secret=***" in repr(signer)
