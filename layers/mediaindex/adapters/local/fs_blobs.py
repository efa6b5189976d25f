"""BlobStore on a local folder, with HMAC-signed URLs served by the local app (`/_blobs/...`).

Layout under `root`:
  objects/<key>                     the bytes
  meta/<key>.json                   content type, etag, sha256, and the inode/mtime they describe
  uploads/<upload_id>/upload.json   a multipart upload's key, content type, start time
  uploads/<upload_id>/<nnnnn>.<md5> one uploaded part; its name carries its etag
  uploads/<upload_id>.completing/   an upload one completion has claimed (renamed: one wins)
  tmp/                              where every write starts, then os.replace (never half-written)

As on S3, keys are flat strings; as on a file system, a key cannot also be a "folder" of another
key (`a` and `a/b`): that is refused with ConflictError(`blob_key_conflict`), a local-only limit.
Uploads through signed URLs can be one-shot (a write only if the key is free: a used URL cannot
replace the original) and bound to a length (counted as it streams).
This module holds the store: keys to paths, reads, deletes, listing and signed URLs; it writes
through fs_writes, keeps records with fs_meta, stages multipart uploads with fs_multipart and signs
with signing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import urlencode

from mediaindex.adapters.local.fs_meta import MetaRecords
from mediaindex.adapters.local.fs_multipart import MultipartUploads, check_part_number, multipart_etag
from mediaindex.adapters.local.fs_writes import CHUNK, Chunks, Sink, already_uploaded, drain, file_chunks
from mediaindex.adapters.local.signing import SignedParams, UrlSigner
from mediaindex.domain.blob_keys import ORIGINALS_PREFIX
from mediaindex.domain.errors import NotFoundError, SignatureError, ValidationError
from mediaindex.ports.blobs import BlobInfo, BlobStore, SignedRequest, upload_headers, validate_key

DEFAULT_MAX_OBJECT_BYTES = 50 * 1024**3


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
        self._tmp = self.root / "tmp"
        self._records = MetaRecords(self.root / "meta", self._tmp)
        self._multipart = MultipartUploads(self.root / "uploads", self._tmp)
        for d in (self._objects, self._records.root, self._multipart.root, self._tmp):
            d.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlobStore(root={str(self.root)!r}, base_url={self.base_url!r})"

    def _obj(self, key: str) -> Path:
        return self._objects / validate_key(key)

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
        return self._records.info(key, self._obj(key))

    def delete(self, key: str) -> None:
        path = self._obj(key)
        if path.is_file():
            path.unlink(missing_ok=True)
        self._records.path(key).unlink(missing_ok=True)
        self._prune(path.parent, self._objects)
        self._prune(self._records.path(key).parent, self._records.root)

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

    def presign_put(
        self,
        key: str,
        content_type: str,
        expires_s: int,
        *,
        expected_size: int | None = None,
        one_shot: bool = False,
    ) -> SignedRequest:
        url, expires_at = self._sign_url(
            "PUT", key, expires_s, content_type=content_type, size=expected_size, once=one_shot
        )
        return SignedRequest("PUT", url, expires_at, upload_headers(content_type, expected_size, one_shot))

    def presign_get(
        self, key: str, expires_s: int, *, filename: str | None = None, content_type: str | None = None
    ) -> SignedRequest:
        url, expires_at = self._sign_url("GET", key, expires_s, filename=filename, content_type=content_type)
        return SignedRequest("GET", url, expires_at)

    def create_multipart(self, key: str, content_type: str) -> str:
        return self._multipart.create(key, content_type)

    def presign_part(
        self, key: str, upload_id: str, part_number: int, expires_s: int, *, expected_size: int | None = None
    ) -> SignedRequest:
        check_part_number(part_number)
        url, expires_at = self._sign_url(
            "PUT", key, expires_s, upload_id=upload_id, part_number=part_number, size=expected_size
        )
        return SignedRequest("PUT", url, expires_at)

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        *,
        expected_size: int | None = None,
        one_shot: bool = False,
    ) -> BlobInfo:
        staging, content_type = self._multipart.staging(key, upload_id)
        if one_shot and self.exists(key):
            raise already_uploaded(key)
        # One rename takes the upload: a concurrent completion is told it is under way, and
        # cannot find its parts gone from under it half-way.
        claimed = self._multipart.claim(staging)
        try:
            files = self._multipart.part_files(claimed, parts, self.max_object_bytes, expected_size)
            # Concatenate by streaming into one object, under S3's multipart etag.
            info = self._write(
                key, file_chunks(files), content_type, etag=multipart_etag(files), exclusive=one_shot
            )
        except BaseException:
            self._multipart.unclaim(claimed)
            raise
        self._multipart.discard(claimed)
        return info

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self._multipart.abort(key, upload_id)

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
        return self._write(key, chunks, content_type)

    def exists(self, key: str) -> bool:
        return self._obj(key).is_file()

    async def write_stream(
        self,
        key: str,
        chunks: Chunks,
        content_type: str | None,
        *,
        expected_size: int | None = None,
        exclusive: bool = False,
    ) -> BlobInfo:
        """Stores an object from a request body as it arrives; disk and hashing run off the loop.
        `expected_size`: exactly that many bytes or ValidationError(`upload_size_mismatch`);
        `exclusive`: only if the key is free, else ConflictError(`upload_already_completed`)."""
        dest = self._obj(key)
        sink = await asyncio.to_thread(
            Sink, self._tmp, self.max_object_bytes, durable=_durable(key), exact=expected_size
        )
        try:
            await drain(chunks, sink)
            written = await asyncio.to_thread(sink.commit, dest, exclusive=exclusive, key=key)
        except BaseException:
            sink.discard()
            raise
        await asyncio.to_thread(self._records.write, key, dest, written, content_type, written.md5)
        return BlobInfo(key, written.size, written.md5, content_type, written.sha256)

    async def write_part(
        self, key: str, upload_id: str, part_number: int, chunks: Chunks, *, expected_size: int | None = None
    ) -> BlobInfo:
        """Stores one part of a multipart upload; its BlobInfo.etag is what complete_multipart expects."""
        return await self._multipart.write_part(
            key, upload_id, part_number, chunks, self.max_object_bytes, expected_size
        )

    def open_read(self, key: str) -> tuple[IO[bytes], BlobInfo]:
        """An open file and its info; the open file keeps this version even if the key is replaced."""
        path = self._obj(key)
        try:
            f = open(path, "rb")  # noqa: SIM115 - the caller closes it after streaming
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
            raise NotFoundError(f"no object {key!r}", code="blob_not_found") from e
        info = self._records.info(key, path)
        if info is None:
            f.close()
            raise NotFoundError(f"no object {key!r}", code="blob_not_found")
        return f, info

    def stale_uploads(self, older_than_s: float) -> list[tuple[str, str]]:
        """(key, upload id) of the multipart uploads idle (no start, no part) for `older_than_s`."""
        cutoff = time.time() - older_than_s
        return [(key, upload_id) for key, upload_id, _ in self._multipart.idle_since(cutoff)]

    def cleanup_stale_uploads(self, older_than_s: float) -> int:
        """Removes multipart uploads idle (no start, no part) for more than `older_than_s` (S3's
        AbortIncompleteMultipartUpload) and orphaned temp files; returns how many uploads went."""
        cutoff = time.time() - older_than_s
        removed = self._multipart.remove_started_before(cutoff)
        for tmp in self._tmp.iterdir():
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink(missing_ok=True)
            except FileNotFoundError:
                continue  # a write landed (or gave up) while we looked
        return removed

    # ---- internals -----------------------------------------------------------------------------
    def _write(
        self,
        key: str,
        chunks: Iterable[bytes],
        content_type: str | None,
        *,
        etag: str | None = None,
        exclusive: bool = False,
    ) -> BlobInfo:
        dest = self._obj(key)
        sink = Sink(self._tmp, self.max_object_bytes, durable=_durable(key))
        try:
            for chunk in chunks:
                sink.write(chunk)
            written = sink.commit(dest, exclusive=exclusive, key=key)
        except BaseException:
            sink.discard()
            raise
        etag = etag or written.md5
        self._records.write(key, dest, written, content_type, etag)
        return BlobInfo(key, written.size, etag, content_type, written.sha256)

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
        size: int | None = None,
        once: bool = False,
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
            size=size,
            once=once,
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
