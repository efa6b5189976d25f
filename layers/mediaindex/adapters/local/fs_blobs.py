"""BlobStore on a local folder, with HMAC-signed URLs served by the local app (`/_blobs/...`).

Layout under `root`:
  objects/<key>                     the bytes
  meta/<key>.json                   content type, etag, sha256, and the inode/mtime they describe
  uploads/<upload_id>/upload.json   a multipart upload's key, content type, start time
  uploads/<upload_id>/<nnnnn>.<md5> one uploaded part; its name carries its etag
  tmp/                              where every write starts, then os.replace (never half-written)

As on S3, keys are flat strings; as on a file system, a key cannot also be a "folder" of another
key (`a` and `a/b`): that is refused with ConflictError(`blob_key_conflict`), a local-only limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

from mediaindex.adapters.local.signing import SignedParams, UrlSigner
from mediaindex.domain.blob_keys import ORIGINALS_PREFIX
from mediaindex.errors import (
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    SignatureError,
    ValidationError,
)
from mediaindex.ids import new_id
from mediaindex.ports.blobs import (
    MAX_PART_NUMBER,
    MIN_PART_BYTES,
    BlobInfo,
    BlobStore,
    SignedRequest,
    validate_key,
)

CHUNK = 1024 * 1024
MAX_PART_BYTES = 5 * 1024**3  # S3's part limit
DEFAULT_MAX_OBJECT_BYTES = 50 * 1024**3
_UPLOAD_ID = re.compile(r"upl_[0-9a-z]{26}")
_PART_FILE = re.compile(r"(\d{5})\.([0-9a-f]{32})")


@dataclass(frozen=True)
class _Written:
    size: int
    md5: str
    sha256: str


class _Sink:
    """A temp file that hashes what goes in and refuses more than `limit` bytes."""

    def __init__(self, tmp_dir: Path, limit: int, *, durable: bool = False) -> None:
        self._limit = limit
        self._durable = durable
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha = hashlib.sha256()
        self.size = 0
        self._file: IO[bytes] = tempfile.NamedTemporaryFile(dir=tmp_dir, delete=False)  # noqa: SIM115
        self.path = Path(self._file.name)

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self._limit:
            raise PayloadTooLargeError(f"the object is larger than {self._limit} bytes")
        self._md5.update(data)
        self._sha.update(data)
        self._file.write(data)

    def commit(self, dest: Path) -> _Written:
        self._file.flush()
        if self._durable:
            os.fsync(self._file.fileno())
        self._file.close()
        _replace(self.path, dest)
        return _Written(self.size, self._md5.hexdigest(), self._sha.hexdigest())

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def _replace(src: Path, dest: Path) -> None:
    # A concurrent delete may prune the (then empty) parent between mkdir and replace: try again.
    for attempt in range(3):
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
            return
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as e:
            raise ConflictError(
                f"{dest.name!r} collides with another key on the local file system", code="blob_key_conflict"
            ) from e
        except FileNotFoundError:
            if attempt == 2:
                raise


def _durable(key: str) -> bool:
    # Originals cannot be made again, so they reach the disk before the write is acknowledged;
    # derivatives can (re-run the step), and fsync costs milliseconds per small file.
    return key.startswith(ORIGINALS_PREFIX)


def _iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class LocalBlobStore(BlobStore):
    def __init__(
        self,
        root: Path,
        base_url: str,
        secret: bytes,
        *,
        max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
        signer: UrlSigner | None = None,
    ) -> None:
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")
        self.max_object_bytes = max_object_bytes
        self._signer = signer or UrlSigner(secret)
        self._objects = self.root / "objects"
        self._meta = self.root / "meta"
        self._uploads = self.root / "uploads"
        self._tmp = self.root / "tmp"
        for d in (self._objects, self._meta, self._uploads, self._tmp):
            d.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlobStore(root={str(self.root)!r}, base_url={self.base_url!r})"

    # ---- paths and metadata -----------------------------------------------------------------
    def _obj(self, key: str) -> Path:
        return self._objects / validate_key(key)

    def _meta_path(self, key: str) -> Path:
        return self._meta / f"{key}.json"

    def _write_meta(
        self, key: str, path: Path, written: _Written, content_type: str | None, etag: str
    ) -> None:
        st = path.stat()
        doc = {
            "content_type": content_type,
            "etag": etag,
            "sha256": written.sha256,
            "size": st.st_size,
            # The inode and mtime tie this record to one version of the file: after a crash between
            # the object's replace and this write, a stale record is detected, not believed.
            "ino": st.st_ino,
            "mtime_ns": st.st_mtime_ns,
        }
        tmp = self._tmp / f"meta-{os.urandom(8).hex()}.json"
        tmp.write_text(json.dumps(doc))
        _replace(tmp, self._meta_path(key))

    def _info(self, key: str, path: Path) -> BlobInfo | None:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        try:
            doc = json.loads(self._meta_path(key).read_text())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            doc = {}
        if (doc.get("ino"), doc.get("mtime_ns"), doc.get("size")) != (st.st_ino, st.st_mtime_ns, st.st_size):
            # No record, or one of an older version: hash the file again (rare; after a crash).
            written = _hash_file(path)
            self._write_meta(key, path, written, None, written.md5)
            return BlobInfo(key, written.size, written.md5, None, written.sha256)
        return BlobInfo(key, st.st_size, doc["etag"], doc.get("content_type"), doc.get("sha256"))

    # ---- BlobStore ---------------------------------------------------------------------------
    def put_file(self, key: str, path: Path, content_type: str) -> BlobInfo:
        with open(path, "rb") as f:
            return self.write_iter(key, iter(lambda: f.read(CHUNK), b""), content_type)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> BlobInfo:
        return self.write_iter(key, [data], content_type)

    def get_bytes(self, key: str) -> bytes:
        f, _ = self.open_read(key)
        with f:
            return f.read()

    def download_file(self, key: str, dest: Path) -> None:
        f, _ = self.open_read(key)
        with f:
            tmp = dest.with_name(f".{dest.name}.{os.urandom(4).hex()}.part")
            try:
                with open(tmp, "wb") as out:
                    shutil.copyfileobj(f, out, CHUNK)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)

    def head(self, key: str) -> BlobInfo | None:
        return self._info(key, self._obj(key))

    def delete(self, key: str) -> None:
        path = self._obj(key)
        if path.is_file():
            path.unlink(missing_ok=True)
        self._meta_path(key).unlink(missing_ok=True)
        self._prune(path.parent, self._objects)
        self._prune(self._meta_path(key).parent, self._meta)

    def delete_prefix(self, prefix: str) -> int:
        if not validate_key(prefix, prefix=True):
            raise ValidationError("refusing to delete every object (empty prefix)", code="blob_key_invalid")
        keys = self.list_keys(prefix)
        for key in keys:
            self.delete(key)
        return len(keys)

    def list_keys(self, prefix: str) -> list[str]:
        validate_key(prefix, prefix=True)
        # Walk only the deepest folder the prefix names; S3 prefixes are strings, not folders.
        start = self._objects / prefix.rpartition("/")[0]
        if not start.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(start):
            rel = Path(dirpath).relative_to(self._objects).as_posix()
            for name in files:
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def presign_put(self, key: str, content_type: str, expires_s: int) -> SignedRequest:
        url, expires_at = self._sign_url("PUT", key, expires_s, content_type=content_type)
        return SignedRequest("PUT", url, expires_at, {"Content-Type": content_type})

    def presign_get(
        self, key: str, expires_s: int, *, filename: str | None = None, content_type: str | None = None
    ) -> SignedRequest:
        url, expires_at = self._sign_url("GET", key, expires_s, filename=filename, content_type=content_type)
        return SignedRequest("GET", url, expires_at)

    def create_multipart(self, key: str, content_type: str) -> str:
        validate_key(key)
        upload_id = new_id("upl")
        staging = self._uploads / upload_id
        staging.mkdir(parents=True)
        doc = {"key": key, "content_type": content_type, "created_at": time.time()}
        (staging / "upload.json").write_text(json.dumps(doc))
        return upload_id

    def presign_part(self, key: str, upload_id: str, part_number: int, expires_s: int) -> SignedRequest:
        _check_part_number(part_number)
        url, expires_at = self._sign_url("PUT", key, expires_s, upload_id=upload_id, part_number=part_number)
        return SignedRequest("PUT", url, expires_at)

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> BlobInfo:
        staging, content_type = self._staging(key, upload_id)
        ordered = sorted((n, etag.strip('"')) for n, etag in parts)
        numbers = [n for n, _ in ordered]
        if not ordered or len(set(numbers)) != len(numbers):
            raise ValidationError(
                "parts must be listed once each", code="upload_parts_invalid", field="parts"
            )
        files: list[Path] = []
        for i, (n, etag) in enumerate(ordered):
            f = staging / f"{n:05d}.{etag}"
            if not f.is_file():
                raise ValidationError(
                    f"part {n} is missing or its etag differs", code="upload_parts_invalid", field="parts"
                )
            if i < len(ordered) - 1 and f.stat().st_size < MIN_PART_BYTES:
                raise ValidationError(
                    f"part {n} is smaller than {MIN_PART_BYTES} bytes and is not the last part",
                    code="upload_parts_invalid",
                    field="parts",
                )
            files.append(f)
        if sum(f.stat().st_size for f in files) > self.max_object_bytes:
            raise PayloadTooLargeError(f"the object is larger than {self.max_object_bytes} bytes")
        # Concatenate by streaming; S3's multipart etag is the md5 of the parts' md5s, `-N`.
        sink = _Sink(self._tmp, self.max_object_bytes, durable=_durable(key))
        try:
            for f in files:
                with open(f, "rb") as src:
                    while chunk := src.read(CHUNK):
                        sink.write(chunk)
            dest = self._obj(key)
            written = sink.commit(dest)
        except BaseException:
            sink.discard()
            raise
        digests = b"".join(bytes.fromhex(etag) for _, etag in ordered)
        etag = f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(ordered)}"
        self._write_meta(key, dest, written, content_type, etag)
        shutil.rmtree(staging, ignore_errors=True)
        return BlobInfo(key, written.size, etag, content_type, written.sha256)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        # Idempotent: aborting an unknown or finished upload is a no-op, as cleanup may run twice.
        try:
            staging, _ = self._staging(key, upload_id)
        except NotFoundError:
            return
        shutil.rmtree(staging, ignore_errors=True)

    # ---- used by the local HTTP routes ---------------------------------------------------------
    def verify(self, method: str, key: str, query_params: dict[str, str]) -> SignedParams:
        """The signed request a URL carries, or SignatureError (`signature_invalid`/`_expired`)."""
        try:
            validate_key(key)
        except ValidationError as e:
            # We never sign an invalid key, so such a URL cannot carry a valid signature.
            raise SignatureError("The URL signature does not match.", code="signature_invalid") from e
        return self._signer.verify(method, key, query_params)

    def write_iter(self, key: str, chunks: Iterable[bytes], content_type: str | None) -> BlobInfo:
        """Stores an object from chunks, synchronously (in-process writers)."""
        dest = self._obj(key)
        sink = _Sink(self._tmp, self.max_object_bytes, durable=_durable(key))
        try:
            for chunk in chunks:
                sink.write(chunk)
            written = sink.commit(dest)
        except BaseException:
            sink.discard()
            raise
        self._write_meta(key, dest, written, content_type, written.md5)
        return BlobInfo(key, written.size, written.md5, content_type, written.sha256)

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes] | Iterable[bytes], content_type: str | None
    ) -> BlobInfo:
        """Stores an object from a request body as it arrives; disk and hashing run off the loop."""
        dest = self._obj(key)
        sink = await asyncio.to_thread(_Sink, self._tmp, self.max_object_bytes, durable=_durable(key))
        try:
            await _drain(chunks, sink)
            written = await asyncio.to_thread(sink.commit, dest)
        except BaseException:
            sink.discard()
            raise
        await asyncio.to_thread(self._write_meta, key, dest, written, content_type, written.md5)
        return BlobInfo(key, written.size, written.md5, content_type, written.sha256)

    async def write_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        chunks: AsyncIterable[bytes] | Iterable[bytes],
    ) -> BlobInfo:
        """Stores one part of a multipart upload; its BlobInfo.etag is what complete_multipart expects."""
        _check_part_number(part_number)
        staging, _ = self._staging(key, upload_id)
        sink = await asyncio.to_thread(_Sink, self._tmp, min(MAX_PART_BYTES, self.max_object_bytes))
        try:
            await _drain(chunks, sink)
            # The md5 is known only at the end, and it is part of the file's name.
            landed = self._tmp / f"part-{os.urandom(8).hex()}"
            written = await asyncio.to_thread(sink.commit, landed)
        except BaseException:
            sink.discard()
            raise
        final = staging / f"{part_number:05d}.{written.md5}"
        try:
            os.replace(landed, final)
        except FileNotFoundError as e:  # aborted while the part was on its way
            landed.unlink(missing_ok=True)
            raise NotFoundError("the multipart upload does not exist", code="upload_not_found") from e
        # A part sent again replaces the earlier one, as on S3.
        for old in staging.glob(f"{part_number:05d}.*"):
            if old != final:
                old.unlink(missing_ok=True)
        return BlobInfo(key, written.size, written.md5, None, written.sha256)

    def open_read(self, key: str) -> tuple[IO[bytes], BlobInfo]:
        """An open file and its info; the open file keeps this version even if the key is replaced."""
        path = self._obj(key)
        try:
            f = open(path, "rb")  # noqa: SIM115 - the caller closes it after streaming
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
            raise NotFoundError(f"no object {key!r}", code="blob_not_found") from e
        info = self._info(key, path)
        if info is None:
            f.close()
            raise NotFoundError(f"no object {key!r}", code="blob_not_found")
        return f, info

    def cleanup_stale_uploads(self, older_than_s: float) -> int:
        """Removes multipart uploads started more than `older_than_s` ago (S3's
        AbortIncompleteMultipartUpload) and orphaned temp files; returns how many uploads went."""
        cutoff = time.time() - older_than_s
        removed = 0
        for staging in self._uploads.iterdir():
            try:
                started = float(json.loads((staging / "upload.json").read_text())["created_at"])
            except (OSError, ValueError, KeyError):
                started = staging.stat().st_mtime
            if started < cutoff:
                shutil.rmtree(staging, ignore_errors=True)
                removed += 1
        for tmp in self._tmp.iterdir():
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink(missing_ok=True)
        return removed

    # ---- internals -----------------------------------------------------------------------------
    def _staging(self, key: str, upload_id: str) -> tuple[Path, str | None]:
        validate_key(key)
        missing = NotFoundError("the multipart upload does not exist", code="upload_not_found")
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise missing
        staging = self._uploads / upload_id
        try:
            doc: dict[str, Any] = json.loads((staging / "upload.json").read_text())
        except (FileNotFoundError, ValueError) as e:
            raise missing from e
        if doc.get("key") != key:
            raise missing
        return staging, doc.get("content_type")

    def _sign_url(
        self,
        method: str,
        key: str,
        expires_s: int,
        *,
        upload_id: str | None = None,
        part_number: int | None = None,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> tuple[str, datetime]:
        validate_key(key)
        exp = int(self._signer.now()) + int(expires_s)
        query = self._signer.sign(
            method,
            key,
            exp,
            upload_id=upload_id,
            part_number=part_number,
            content_type=content_type,
            filename=filename,
        )
        return f"{self.base_url}/_blobs/{key}?{urlencode(query)}", _iso(exp)

    def _prune(self, folder: Path, stop: Path) -> None:
        # Empty folders left by deletes would block a later key of the same name.
        while folder != stop and stop in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent


def _check_part_number(part_number: int) -> None:
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise ValidationError(
            f"part_number must be 1..{MAX_PART_NUMBER}", code="upload_parts_invalid", field="part_number"
        )


def _hash_file(path: Path) -> _Written:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            md5.update(chunk)
            sha.update(chunk)
    return _Written(size, md5.hexdigest(), sha.hexdigest())


async def _drain(chunks: AsyncIterable[bytes] | Iterable[bytes], sink: _Sink) -> None:
    # Request bodies arrive in small chunks: gather about 1 MiB before each trip to a thread.
    buf: list[bytes] = []
    buffered = 0
    async for chunk in _aiter(chunks):
        if not chunk:
            continue
        buf.append(chunk)
        buffered += len(chunk)
        if buffered >= CHUNK:
            await asyncio.to_thread(sink.write, b"".join(buf))
            buf, buffered = [], 0
    if buf:
        await asyncio.to_thread(sink.write, b"".join(buf))


async def _aiter(chunks: AsyncIterable[bytes] | Iterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(chunks, AsyncIterable):
        async for c in chunks:
            yield c
    else:
        it: Iterator[bytes] = iter(chunks)
        for c in it:
            yield c
