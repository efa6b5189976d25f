"""BlobStore contract: one suite, both adapters, bytes over real HTTP.

The local adapter is served by its router in uvicorn; S3 is a ThreadedMotoServer (moto checks no
presigned signature or expiry, so those rules are tested against the local adapter only, below)."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from mediaindex.adapters.aws.s3_blobs import S3BlobStore
from mediaindex.adapters.local.fs_blobs import LocalBlobStore
from mediaindex.domain.errors import ConflictError, MediaindexError, NotFoundError, ValidationError
from mediaindex.ports.blobs import MIN_PART_BYTES, BlobInfo, BlobStore
from tests.contract.conftest_blobs import local_blob_server, moto_s3_client
from tests.moto_server import moto_server

MiB = 1024 * 1024
BUCKET = "contract-blobs"


@dataclass
class Harness:
    name: str
    store: BlobStore
    http: httpx.Client
    seed: Callable[[list[str]], None]  # stores empty objects fast (test setup only)
    created: list[tuple[str, BlobInfo]] = field(default_factory=list)
    s3_client: Any = None


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def local_harness(tmp_path_factory: pytest.TempPathFactory, http: httpx.Client) -> Iterator[Harness]:
    created: list[tuple[str, BlobInfo]] = []
    root = tmp_path_factory.mktemp("blobs")
    with local_blob_server(root, lambda key, info: created.append((key, info))) as store:

        def seed(keys: list[str]) -> None:
            for k in keys:
                store.put_bytes(k, b"", "application/octet-stream")

        yield Harness("local", store, http, seed, created)


@pytest.fixture(scope="module")
def s3_harness(http: httpx.Client) -> Iterator[Harness]:
    with moto_server() as endpoint:
        client = moto_s3_client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]

        def seed(keys: list[str]) -> None:
            # One HTTP round trip to moto costs ~10 ms; its in-process backend takes the same objects at once.
            for k in keys:
                backend.put_object(BUCKET, k, b"")

        yield Harness("s3", S3BlobStore(BUCKET, client), http, seed, s3_client=client)


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest) -> Harness:
    harness: Harness = request.getfixturevalue(f"{request.param}_harness")
    return harness


@pytest.fixture
def prefix() -> str:
    # Each test works under its own prefix, so module-scoped stores need no reset between tests.
    return f"t/{uuid.uuid4().hex[:12]}/"


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# ---- objects ---------------------------------------------------------------------------------------
def test_put_bytes_then_head_get_and_download(blobs: Harness, prefix: str, tmp_path: Path) -> None:
    # Given an object stored from bytes
    key = f"{prefix}a.json"
    info = blobs.store.put_bytes(key, b'{"x": 1}', "application/json")

    # Then head, get and download all see the same object
    assert info == BlobInfo(key, 8, md5(b'{"x": 1}'), "application/json", info.sha256)
    head = blobs.store.head(key)
    assert head is not None
    assert (head.size, head.etag, head.content_type) == (8, md5(b'{"x": 1}'), "application/json")
    assert blobs.store.get_bytes(key) == b'{"x": 1}'
    dest = tmp_path / "out.json"
    blobs.store.download_file(key, dest)
    assert dest.read_bytes() == b'{"x": 1}'


def test_put_file_replaces_an_existing_object(blobs: Harness, prefix: str, tmp_path: Path) -> None:
    # Given a key written once from bytes, then again from a file
    key = f"{prefix}proxy.mp4"
    blobs.store.put_bytes(key, b"old", "video/mp4")
    src = tmp_path / "proxy.mp4"
    src.write_bytes(os.urandom(3 * MiB + 7))

    info = blobs.store.put_file(key, src, "video/mp4")

    # Then the second version wins, whole
    assert (info.size, info.etag, info.content_type) == (3 * MiB + 7, md5(src.read_bytes()), "video/mp4")
    assert blobs.store.get_bytes(key) == src.read_bytes()


def test_missing_objects(blobs: Harness, prefix: str, tmp_path: Path) -> None:
    key = f"{prefix}nothing.bin"
    assert blobs.store.head(key) is None
    with pytest.raises(NotFoundError):
        blobs.store.get_bytes(key)
    with pytest.raises(NotFoundError):
        blobs.store.download_file(key, tmp_path / "x")
    blobs.store.delete(key)  # deleting what is not there is not an error


def test_delete(blobs: Harness, prefix: str) -> None:
    key = f"{prefix}gone.txt"
    blobs.store.put_bytes(key, b"bye", "text/plain")
    blobs.store.delete(key)
    assert blobs.store.head(key) is None
    assert blobs.store.list_keys(prefix) == []


def test_list_and_delete_prefix_use_string_prefixes(blobs: Harness, prefix: str) -> None:
    # Given objects under an asset's prefix, a sibling asset sharing its first letters, and another
    keys = [f"{prefix}ast1/original.mp4", f"{prefix}ast1/sub/thumb.jpg", f"{prefix}ast12/x", f"{prefix}b/y"]
    for k in keys:
        blobs.store.put_bytes(k, b"1", "application/octet-stream")

    # Then listing is sorted, and a prefix is a string, not a folder
    assert blobs.store.list_keys(prefix) == sorted(keys)
    assert blobs.store.list_keys(f"{prefix}ast1") == keys[:3]
    assert blobs.store.list_keys(f"{prefix}ast1/") == keys[:2]
    assert blobs.store.list_keys(f"{prefix}zzz/") == []

    # When one asset's prefix is deleted
    assert blobs.store.delete_prefix(f"{prefix}ast1/") == 2

    # Then only its objects went
    assert blobs.store.list_keys(prefix) == keys[2:]
    assert blobs.store.delete_prefix(f"{prefix}ast1/") == 0


def test_delete_prefix_removes_many(blobs: Harness, prefix: str) -> None:
    # Given more objects than one S3 list page and one DeleteObjects batch hold (1000); the local
    # store has no pages, so fewer make the same point there at a fraction of the file creations
    count = 1005 if blobs.name == "s3" else 150
    blobs.seed([f"{prefix}f/{i:05d}" for i in range(count)])

    assert len(blobs.store.list_keys(prefix)) == count
    assert blobs.store.delete_prefix(prefix) == count
    assert blobs.store.list_keys(prefix) == []


def test_delete_prefix_refuses_the_empty_prefix(blobs: Harness) -> None:
    with pytest.raises(ValidationError) as e:
        blobs.store.delete_prefix("")
    assert e.value.code == "blob_key_invalid"


@pytest.mark.parametrize("bad", ["../x", "/abs", "a//b", "a/./b", "a/../b", "sp ace", "a/", "", "é"])
def test_invalid_keys_are_refused(blobs: Harness, bad: str) -> None:
    with pytest.raises(ValidationError) as e:
        blobs.store.put_bytes(bad, b"x", "text/plain")
    assert e.value.code == "blob_key_invalid"


# ---- presigned URLs --------------------------------------------------------------------------------
def test_presigned_put_over_http(blobs: Harness, prefix: str) -> None:
    # Given a presigned PUT for an original
    key = f"originals/{prefix}ast/original.mp4"
    data = os.urandom(256 * 1024)
    signed = blobs.store.presign_put(key, "video/mp4", 300)
    assert signed.method == "PUT"
    assert signed.headers == {"Content-Type": "video/mp4"}
    assert 290 <= signed.expires_at.timestamp() - time.time() <= 310

    # When a client sends the bytes with the signed headers
    resp = blobs.http.put(signed.url, content=data, headers=signed.headers)

    # Then the object is there, with the content type and an S3-style quoted ETag
    assert resp.status_code == 200, resp.text
    assert resp.headers["etag"] == f'"{md5(data)}"'
    head = blobs.store.head(key)
    assert head is not None
    assert (head.size, head.etag, head.content_type) == (len(data), md5(data), "video/mp4")
    assert blobs.store.get_bytes(key) == data


def test_presigned_get_over_http(blobs: Harness, prefix: str) -> None:
    # Given an object
    key = f"{prefix}proxy.mp4"
    data = os.urandom(100_000)
    blobs.store.put_bytes(key, data, "video/mp4")

    # When it is fetched with a plain presigned GET
    resp = blobs.http.get(blobs.store.presign_get(key, 300).url)

    # Then the bytes and content type come back
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers["content-type"] == "video/mp4"


def test_presigned_get_names_the_download_and_serves_ranges(blobs: Harness, prefix: str) -> None:
    key = f"{prefix}original.mov"
    data = bytes(range(256)) * 40
    blobs.store.put_bytes(key, data, "video/quicktime")
    signed = blobs.store.presign_get(
        key, 300, filename="Ma vidéo.mov", content_type="application/octet-stream"
    )

    # When the download is fetched whole, then by range
    whole = blobs.http.get(signed.url)
    part = blobs.http.get(signed.url, headers={"Range": "bytes=100-199"})

    # Then it is named (ASCII fallback and UTF-8 form) and typed as signed, and ranges are partial
    assert whole.status_code == 200
    assert whole.headers["content-disposition"] == (
        "attachment; filename=\"Ma vid_o.mov\"; filename*=UTF-8''Ma%20vid%C3%A9o.mov"
    )
    assert whole.headers["content-type"] == "application/octet-stream"
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"


# ---- multipart ---------------------------------------------------------------------------------------
def upload_parts(h: Harness, key: str, upload_id: str, parts: list[bytes]) -> list[tuple[int, str]]:
    done = []
    for n, body in enumerate(parts, start=1):
        resp = h.http.put(h.store.presign_part(key, upload_id, n, 300).url, content=body)
        assert resp.status_code == 200, resp.text
        done.append((n, resp.headers["etag"]))  # quoted, as a browser client would pass it back
    return done


def test_multipart_over_http_completes_to_the_same_bytes(blobs: Harness, prefix: str) -> None:
    # Given a multipart upload: one 5 MiB part and a small last one
    key = f"originals/{prefix}ast/original.mp4"
    parts = [os.urandom(MIN_PART_BYTES), os.urandom(1234)]
    upload_id = blobs.store.create_multipart(key, "video/mp4")
    done = upload_parts(blobs, key, upload_id, parts)
    assert blobs.store.head(key) is None  # nothing visible before completion

    # When completed (parts listed out of order, as clients sometimes do)
    info = blobs.store.complete_multipart(key, upload_id, list(reversed(done)))

    # Then the object is the parts' bytes in order, with S3's multipart etag
    whole = b"".join(parts)
    expected_etag = md5(b"".join(bytes.fromhex(md5(p)) for p in parts)) + "-2"
    assert (info.size, info.etag, info.content_type) == (len(whole), expected_etag, "video/mp4")
    assert hashlib.sha256(blobs.store.get_bytes(key)).hexdigest() == hashlib.sha256(whole).hexdigest()
    head = blobs.store.head(key)
    assert head is not None and head.etag == expected_etag and head.content_type == "video/mp4"


def test_multipart_part_sent_again_replaces_the_first(blobs: Harness, prefix: str) -> None:
    key = f"{prefix}big.bin"
    upload_id = blobs.store.create_multipart(key, "application/octet-stream")
    upload_parts(blobs, key, upload_id, [b"first try"])
    done = upload_parts(blobs, key, upload_id, [b"second try"])

    blobs.store.complete_multipart(key, upload_id, done)

    assert blobs.store.get_bytes(key) == b"second try"


def test_multipart_small_part_before_the_last_is_refused(blobs: Harness, prefix: str) -> None:
    # Given two parts, the first under 5 MiB
    key = f"{prefix}small.bin"
    upload_id = blobs.store.create_multipart(key, "application/octet-stream")
    done = upload_parts(blobs, key, upload_id, [b"a" * 1024, b"b" * 1024])

    # Then completing is refused and nothing is stored
    with pytest.raises(ValidationError) as e:
        blobs.store.complete_multipart(key, upload_id, done)
    assert e.value.code == "upload_parts_invalid"
    assert blobs.store.head(key) is None
    blobs.store.abort_multipart(key, upload_id)


def test_multipart_wrong_or_missing_part_is_refused(blobs: Harness, prefix: str) -> None:
    key = f"{prefix}wrong.bin"
    upload_id = blobs.store.create_multipart(key, "application/octet-stream")
    upload_parts(blobs, key, upload_id, [b"only part"])

    for parts in ([(1, md5(b"other bytes"))], [(1, md5(b"only part")), (2, md5(b"never sent"))]):
        with pytest.raises(ValidationError) as e:
            blobs.store.complete_multipart(key, upload_id, parts)
        assert e.value.code == "upload_parts_invalid"
    blobs.store.abort_multipart(key, upload_id)


def test_abort_discards_the_upload(blobs: Harness, prefix: str) -> None:
    # Given an upload with one part
    key = f"{prefix}aborted.bin"
    upload_id = blobs.store.create_multipart(key, "application/octet-stream")
    done = upload_parts(blobs, key, upload_id, [b"data"])

    # When aborted (twice: abort is idempotent)
    blobs.store.abort_multipart(key, upload_id)
    blobs.store.abort_multipart(key, upload_id)

    # Then it can no longer be completed and no object exists
    with pytest.raises(MediaindexError) as e:
        blobs.store.complete_multipart(key, upload_id, done)
    if blobs.name == "local":
        # S3 answers NoSuchUpload (-> the same code); moto 5.2.5 crashes with a KeyError (a 500) instead.
        assert isinstance(e.value, NotFoundError) and e.value.code == "upload_not_found"
    assert blobs.store.head(key) is None


# ---- the S3 adapter's own rules ----------------------------------------------------------------------
def test_s3_encrypts_what_it_writes(s3_harness: Harness, prefix: str, tmp_path: Path) -> None:
    h = s3_harness
    src = tmp_path / "f.bin"
    src.write_bytes(b"file")
    h.store.put_bytes(f"{prefix}a", b"bytes", "application/octet-stream")
    h.store.put_file(f"{prefix}b", src, "application/octet-stream")
    upload_id = h.store.create_multipart(f"{prefix}c", "application/octet-stream")
    h.store.complete_multipart(f"{prefix}c", upload_id, upload_parts(h, f"{prefix}c", upload_id, [b"part"]))

    for key in ("a", "b", "c"):
        assert (
            h.s3_client.head_object(Bucket=BUCKET, Key=f"{prefix}{key}")["ServerSideEncryption"] == "AES256"
        )


# ---- the local adapter's own rules: signatures, events, limits ---------------------------------------
def test_local_put_fires_on_original_created_for_originals_only(local_harness: Harness, prefix: str) -> None:
    h = local_harness
    original = f"originals/{prefix}ast/original.mp3"
    other = f"derived/{prefix}ast/proxy.m4a"
    for key in (original, other):
        signed = h.store.presign_put(key, "audio/mpeg", 60)
        assert h.http.put(signed.url, content=b"ID3", headers=signed.headers).status_code == 200
    upload_id = h.store.create_multipart(f"originals/{prefix}ast2/original.mp3", "audio/mpeg")
    upload_parts(h, f"originals/{prefix}ast2/original.mp3", upload_id, [b"part"])

    events = [(k, i) for k, i in h.created if prefix in k]
    assert [k for k, _ in events] == [original]
    assert events[0][1].size == 3
    assert events[0][1].sha256 == hashlib.sha256(b"ID3").hexdigest()


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda url: url.replace("sig=", "sig=A"), "signature_invalid"),
        (lambda url: url.replace("/_blobs/t/", "/_blobs/u/"), "signature_invalid"),
        (lambda url: url.split("&sig=")[0], "signature_invalid"),
    ],
)
def test_local_refusals_are_json_403(
    local_harness: Harness, prefix: str, mutate: Callable[[str], str], code: str
) -> None:
    h = local_harness
    key = f"{prefix}x.txt"
    h.store.put_bytes(key, b"secret", "text/plain")
    url = mutate(h.store.presign_get(key, 60).url)

    resp = h.http.get(url)

    assert resp.status_code == 403
    body = resp.json()["error"]
    assert body["code"] == code
    assert body["request_id"]


def test_local_expired_and_wrong_method_and_wrong_content_type(local_harness: Harness, prefix: str) -> None:
    h = local_harness
    key = f"{prefix}x.txt"
    h.store.put_bytes(key, b"secret", "text/plain")

    expired = h.http.get(h.store.presign_get(key, -1).url)
    put_url_used_to_get = h.http.get(h.store.presign_put(key, "text/plain", 60).url)
    signed = h.store.presign_put(key, "text/plain", 60)
    other_type = h.http.put(signed.url, content=b"x", headers={"Content-Type": "text/html"})

    assert (expired.status_code, expired.json()["error"]["code"]) == (403, "signature_expired")
    assert put_url_used_to_get.json()["error"]["code"] == "signature_invalid"
    assert (other_type.status_code, other_type.json()["error"]["code"]) == (403, "signature_invalid")
    assert h.store.get_bytes(key) == b"secret"


def test_local_range_edge_cases(local_harness: Harness, prefix: str) -> None:
    h = local_harness
    key = f"{prefix}r.bin"
    h.store.put_bytes(key, b"0123456789", "application/octet-stream")
    url = h.store.presign_get(key, 60).url

    def get(rng: str) -> httpx.Response:
        return h.http.get(url, headers={"Range": rng})

    assert get("bytes=-3").content == b"789"
    assert get("bytes=7-").content == b"789"
    assert get("bytes=8-100").content == b"89"
    assert get("bytes=20-").status_code == 416
    assert get("bytes=0-1,4-5").status_code == 200  # several ranges: the whole object, as RFC 9110 allows


def test_local_payload_too_large(tmp_path: Path) -> None:
    with (
        local_blob_server(tmp_path, lambda k, i: None, max_object_bytes=1000) as store,
        httpx.Client() as http,
    ):
        signed = store.presign_put("originals/t/a/original.bin", "application/octet-stream", 60)
        declared = http.put(signed.url, content=b"x" * 1001, headers=signed.headers)
        streamed = http.put(signed.url, content=iter([b"x" * 600, b"x" * 600]), headers=signed.headers)

    assert (declared.status_code, declared.json()["error"]["code"]) == (413, "payload_too_large")
    assert streamed.status_code == 413
    assert store.head("originals/t/a/original.bin") is None
    assert list((tmp_path / "tmp").iterdir()) == []  # no temp file left behind


def test_local_cleanup_of_stale_uploads(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, "http://x", b"s" * 32)
    old = store.create_multipart("a/b.bin", "application/octet-stream")
    meta = tmp_path / "uploads" / old / "upload.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "created_at": time.time() - 7200}))
    fresh = store.create_multipart("a/c.bin", "application/octet-stream")

    assert store.cleanup_stale_uploads(3600) == 1
    assert not (tmp_path / "uploads" / old).exists()
    assert (tmp_path / "uploads" / fresh).exists()


def test_local_head_survives_a_stale_metadata_record(tmp_path: Path) -> None:
    # Given an object replaced behind the store's back (as after a crash before its record was written)
    store = LocalBlobStore(tmp_path, "http://x", b"s" * 32)
    store.put_bytes("a/b.txt", b"first", "text/plain")
    (tmp_path / "objects" / "a" / "b.txt").write_bytes(b"second!")

    info = store.head("a/b.txt")

    assert info is not None
    assert (info.size, info.etag) == (7, md5(b"second!"))


def test_local_key_that_is_also_a_folder_is_a_conflict(tmp_path: Path) -> None:
    # A local-only limit: on a file system `a` cannot be both an object and a folder of objects.
    store = LocalBlobStore(tmp_path, "http://x", b"s" * 32)
    store.put_bytes("a/b", b"1", "text/plain")
    store.put_bytes("c", b"1", "text/plain")

    for key in ("a", "c/d"):
        with pytest.raises(ConflictError) as e:
            store.put_bytes(key, b"2", "text/plain")
        assert e.value.code == "blob_key_conflict"
    assert list((tmp_path / "tmp").iterdir()) == []
    # Once `a/b` is deleted its folder goes too, and `a` can be stored.
    store.delete("a/b")
    assert store.put_bytes("a", b"3", "text/plain").size == 1


# ---- one-shot uploads and signed lengths (both adapters) ---------------------------------------------
def _signed_headers(url: str) -> set[str]:
    """The headers an S3 presigned URL signs (X-Amz-SignedHeaders)."""
    from urllib.parse import parse_qs, urlsplit

    return set(parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0].split(";"))


def test_presign_put_returns_the_headers_that_bind_the_upload(blobs: Harness, prefix: str) -> None:
    # Given a one-shot PUT signed for 1,000 bytes
    signed = blobs.store.presign_put(
        f"originals/{prefix}a/original.mp4", "video/mp4", 60, expected_size=1000, one_shot=True
    )

    # Then both adapters hand the client the same headers to send
    assert signed.headers == {"Content-Type": "video/mp4", "Content-Length": "1000", "If-None-Match": "*"}
    if blobs.name == "s3":
        # S3 enforces them because they are signed (moto checks no signature: asserted on the URL)
        assert {"content-length", "content-type", "if-none-match"} <= _signed_headers(signed.url)
        part = blobs.store.presign_part(f"{prefix}big", "upl", 3, 60, expected_size=5 * MiB)
        assert "content-length" in _signed_headers(part.url)


def test_a_used_one_shot_url_cannot_replace_the_object(blobs: Harness, prefix: str) -> None:
    # Given an original uploaded through a one-shot URL
    key = f"originals/{prefix}ast/original.bin"
    signed = blobs.store.presign_put(key, "application/octet-stream", 60, expected_size=4, one_shot=True)
    assert blobs.http.put(signed.url, content=b"good", headers=signed.headers).status_code == 200

    # When the same URL is used again with other bytes of the same length
    again = blobs.http.put(signed.url, content=b"evil", headers=signed.headers)

    # Then it is refused (S3: 412 PreconditionFailed; local: 409 with the one error body) and the
    # first bytes stay
    if blobs.name == "s3":
        assert again.status_code == 412, again.text
    else:
        assert (again.status_code, again.json()["error"]["code"]) == (409, "upload_already_completed")
    assert blobs.store.get_bytes(key) == b"good"


def test_sixteen_racing_one_shot_puts_land_exactly_one(blobs: Harness, prefix: str) -> None:
    # Given 16 clients racing to PUT different bytes to one one-shot URL, 10 times over
    import concurrent.futures as cf

    for round_ in range(10):
        key = f"originals/{prefix}r{round_}/original.bin"
        signed = blobs.store.presign_put(
            key, "application/octet-stream", 60, expected_size=4096, one_shot=True
        )

        def put(i: int, url: str = signed.url, headers: dict[str, str] = signed.headers) -> tuple[int, bytes]:
            body = bytes([i]) * 4096
            return blobs.http.put(url, content=body, headers=headers).status_code, body

        with cf.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(put, range(16)))

        # Then exactly one lands, and it is the one stored; the others are refused
        winners = [body for status, body in results if status == 200]
        assert len(winners) == 1, [s for s, _ in results]
        assert {s for s, _ in results if s != 200} == {412 if blobs.name == "s3" else 409}
        assert blobs.store.get_bytes(key) == winners[0]


def test_one_shot_complete_refuses_a_key_that_holds_an_object(blobs: Harness, prefix: str) -> None:
    # Given an object at the key, and a multipart upload to the same key
    key = f"originals/{prefix}ast/original.bin"
    blobs.store.put_bytes(key, b"first", "application/octet-stream")
    upload_id = blobs.store.create_multipart(key, "application/octet-stream")
    done = upload_parts(blobs, key, upload_id, [b"second"])

    # When it is completed one-shot (S3: If-None-Match on CompleteMultipartUpload)
    with pytest.raises(ConflictError) as e:
        blobs.store.complete_multipart(key, upload_id, done, one_shot=True)

    # Then it is refused and the first object stays
    assert e.value.code == "upload_already_completed"
    assert blobs.store.get_bytes(key) == b"first"
    blobs.store.abort_multipart(key, upload_id)


def test_complete_refuses_parts_that_do_not_add_up_to_the_declared_size(blobs: Harness, prefix: str) -> None:
    key = f"originals/{prefix}ast/original.bin"
    upload_id = blobs.store.create_multipart(key, "application/octet-stream")
    done = upload_parts(blobs, key, upload_id, [b"12345"])

    with pytest.raises(ValidationError) as e:
        blobs.store.complete_multipart(key, upload_id, done, expected_size=6, one_shot=True)

    # Nothing stays (S3 refuses by x-amz-mp-object-size; moto ignores it, so the adapter deletes)
    assert e.value.code == "upload_size_mismatch"
    assert blobs.store.head(key) is None
    if blobs.name == "local":
        # The local store refuses before it joins the parts: the upload can still be completed right.
        assert blobs.store.complete_multipart(key, upload_id, done, expected_size=5).size == 5


@pytest.mark.parametrize("etag", ["../" * 6 + "etc/passwd", "0" * 31 + "/", "x" * 32])
def test_an_etag_that_is_no_md5_names_no_part(blobs: Harness, prefix: str, etag: str) -> None:
    key = f"{prefix}e.bin"
    upload_id = blobs.store.create_multipart(key, "application/octet-stream")
    upload_parts(blobs, key, upload_id, [b"part"])
    with pytest.raises(ValidationError) as e:
        blobs.store.complete_multipart(key, upload_id, [(1, etag)])
    assert e.value.code == "upload_parts_invalid"
    blobs.store.abort_multipart(key, upload_id)


@pytest.mark.parametrize("part_number", [0, -1, 10_001])
def test_part_numbers_outside_s3s_range_are_refused(blobs: Harness, prefix: str, part_number: int) -> None:
    key = f"{prefix}p.bin"
    upload_id = blobs.store.create_multipart(key, "application/octet-stream")
    with pytest.raises(ValidationError) as e:
        blobs.store.presign_part(key, upload_id, part_number, 60)
    assert e.value.code == "upload_parts_invalid"
    done = upload_parts(blobs, key, upload_id, [b"part"])
    with pytest.raises(ValidationError) as e:
        blobs.store.complete_multipart(key, upload_id, [*done, (part_number, done[0][1])])
    assert e.value.code == "upload_parts_invalid"
    blobs.store.abort_multipart(key, upload_id)


# ---- the local adapter's upload rules (moto checks no signature, so no signed length either) --------
def test_local_refuses_a_body_longer_or_shorter_than_signed(local_harness: Harness, prefix: str) -> None:
    h = local_harness
    key = f"originals/{prefix}ast/original.bin"
    signed = h.store.presign_put(key, "application/octet-stream", 60, expected_size=1000, one_shot=True)
    ct = {"Content-Type": "application/octet-stream"}

    declared_longer = h.http.put(signed.url, content=b"x" * 1001, headers=ct)
    declared_shorter = h.http.put(signed.url, content=b"x" * 999, headers=ct)
    # Chunked bodies declare nothing: counted while they stream
    streamed_longer = h.http.put(signed.url, content=iter([b"x" * 600, b"x" * 600]), headers=ct)
    streamed_shorter = h.http.put(signed.url, content=iter([b"x" * 600, b"x" * 300]), headers=ct)

    for resp in (declared_longer, declared_shorter, streamed_longer, streamed_shorter):
        assert (resp.status_code, resp.json()["error"]["code"]) == (400, "upload_size_mismatch"), resp.text
    assert h.store.head(key) is None and [k for k, _ in h.created if k == key] == []
    # And the URL still works for the right length, once
    assert h.http.put(signed.url, content=b"y" * 1000, headers=signed.headers).status_code == 200
    assert h.store.get_bytes(key) == b"y" * 1000


def test_local_part_urls_take_exactly_their_signed_length(local_harness: Harness, prefix: str) -> None:
    h = local_harness
    key = f"{prefix}parts.bin"
    upload_id = h.store.create_multipart(key, "application/octet-stream")
    url = h.store.presign_part(key, upload_id, 1, 60, expected_size=10).url

    assert h.http.put(url, content=b"0123456789A").json()["error"]["code"] == "upload_size_mismatch"
    short = h.http.put(url, content=iter([b"01234", b"5678"]))
    assert short.json()["error"]["code"] == "upload_size_mismatch"
    assert h.http.put(url, content=b"0123456789").status_code == 200
    h.store.abort_multipart(key, upload_id)


def test_local_signed_lengths_and_flags_cannot_be_edited(local_harness: Harness, prefix: str) -> None:
    h = local_harness
    key = f"originals/{prefix}ast/original.bin"
    url = h.store.presign_put(key, "application/octet-stream", 60, expected_size=4, one_shot=True).url
    ct = {"Content-Type": "application/octet-stream"}
    edits = (
        url.replace("size=4", "size=5"),
        url.replace("&once=1", ""),
        url.replace("size=4", "size=²"),  # a digit to str.isdigit, not to int(): was a 500
        url.replace("exp=", "exp=²"),
    )
    for edited in edits:
        resp = h.http.put(edited, content=b"12345", headers=ct)
        assert (resp.status_code, resp.json()["error"]["code"]) == (403, "signature_invalid")
    assert h.store.head(key) is None


def test_local_concurrent_completes_of_one_upload_finish_once(local_harness: Harness, prefix: str) -> None:
    # Given an upload of two parts, completed by 8 racing callers, 10 times over
    import concurrent.futures as cf

    outcomes: list[str] = []
    for round_ in range(10):
        key = f"originals/{prefix}c{round_}/original.bin"
        upload_id = local_harness.store.create_multipart(key, "application/octet-stream")
        parts = [os.urandom(MIN_PART_BYTES), b"tail"]
        done = upload_parts(local_harness, key, upload_id, parts)

        def complete(
            _: int, key: str = key, upload_id: str = upload_id, done: list[tuple[int, str]] = done
        ) -> str:
            try:
                local_harness.store.complete_multipart(key, upload_id, done, one_shot=True)
                return "ok"
            except MediaindexError as e:  # a domain error, never a FileNotFoundError
                return e.code

        with cf.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(complete, range(8)))
        outcomes += results

        # Then exactly one joins the parts; the others hear it is done (or being done)
        assert results.count("ok") == 1, results
        assert set(results) <= {"ok", "upload_already_completed", "upload_not_found"}, results
        assert local_harness.store.get_bytes(key) == b"".join(parts)
    assert outcomes.count("ok") == 10


def test_local_range_abuse_is_answered_cheaply(local_harness: Harness, prefix: str) -> None:
    h = local_harness
    key = f"{prefix}r.bin"
    data = os.urandom(4096)
    h.store.put_bytes(key, data, "application/octet-stream")
    url = h.store.presign_get(key, 60).url

    many = ",".join(f"{i}-{i}" for i in range(2000))  # ~15 KB of ranges: no multipart amplification
    huge = "0-" + "9" * 5000  # int() of more than 4300 digits raises: must not be a 500
    for rng in (f"bytes={many}", f"bytes={huge}", "bytes=-" + "9" * 5000, "bytes=٣-٤"):
        resp = h.http.get(url, headers={"Range": rng.encode()})
        assert resp.status_code in (200, 400, 416, 431), (rng[:40], resp.status_code)
        assert len(resp.content) <= len(data) or resp.status_code >= 400


@pytest.mark.parametrize(
    "path", ["..%2F..%2Fsigning.key", "%2e%2e/%2e%2e/signing.key", "t/%2e%2e%2F%2e%2e%2Fmeta", "a%00b"]
)
def test_local_encoded_traversal_is_refused(local_harness: Harness, path: str) -> None:
    h = local_harness
    base = h.store.presign_get("t/ok.bin", 60).url.split("/_blobs/")[0]
    for method in ("GET", "PUT"):
        resp = h.http.request(method, f"{base}/_blobs/{path}?exp=9999999999&sig=x", content=b"x")
        assert resp.status_code in (403, 404), (method, path, resp.status_code)


def test_local_url_signed_for_one_key_does_not_write_another(local_harness: Harness, prefix: str) -> None:
    h = local_harness
    signed = h.store.presign_put(f"originals/{prefix}a/original.bin", "application/octet-stream", 60)
    other = signed.url.replace(f"originals/{prefix}a/", f"originals/{prefix}b/")
    resp = h.http.put(other, content=b"x", headers=signed.headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (403, "signature_invalid")
    assert h.store.head(f"originals/{prefix}b/original.bin") is None


def test_local_download_during_a_replace_attempt_serves_the_original(
    local_harness: Harness, prefix: str
) -> None:
    # Given an uploaded original being downloaded slowly
    h = local_harness
    key = f"originals/{prefix}ast/original.bin"
    data = os.urandom(3 * MiB)
    signed = h.store.presign_put(key, "application/octet-stream", 60, expected_size=len(data), one_shot=True)
    assert h.http.put(signed.url, content=data, headers=signed.headers).status_code == 200
    with h.http.stream("GET", h.store.presign_get(key, 60).url) as download:
        chunks = download.iter_bytes(64 * 1024)
        first = next(chunks)
        # When the upload URL is used again meanwhile
        again = h.http.put(signed.url, content=os.urandom(len(data)), headers=signed.headers)
        rest = b"".join(chunks)

    # Then the replace is refused and the download is the original, whole
    assert again.status_code == 409
    assert first + rest == data


def test_local_stale_uploads_are_judged_by_their_last_part(tmp_path: Path) -> None:
    # Given two uploads started two hours ago: one got a part a minute ago, one nothing since
    store = LocalBlobStore(tmp_path, "http://x", b"s" * 32)
    busy = store.create_multipart("originals/t/a/original.bin", "application/octet-stream")
    idle = store.create_multipart("originals/t/b/original.bin", "application/octet-stream")
    for upload_id in (busy, idle):
        meta = tmp_path / "uploads" / upload_id / "upload.json"
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "created_at": time.time() - 7200}))
    (tmp_path / "uploads" / busy / f"00001.{md5(b'p')}").write_bytes(b"p")

    # Then only the idle one is stale, and only it is removed
    assert store.stale_uploads(3600) == [("originals/t/b/original.bin", idle)]
    assert store.cleanup_stale_uploads(3600) == 1
    assert (tmp_path / "uploads" / busy).exists() and not (tmp_path / "uploads" / idle).exists()
