"""S3-style multipart uploads for the local blob store: the parts' staging folders and their rules.

Each upload is a folder `uploads/<upload_id>/` with `upload.json` (its key, content type and start
time) and one file per part, `<nnnnn>.<md5>`, whose name carries the etag the client must quote back;
a part sent again replaces the earlier one, as on S3. Completing checks the quoted parts the way S3
does (each once, all present with that etag, every part but the last at least MIN_PART_BYTES, the
whole within the object limit) and names the parts' files for the store to concatenate; the
object's etag is S3's md5-of-md5s with `-N`. Completing first claims the folder with one rename
(`<upload_id>` -> `<upload_id>.completing`), so of concurrent completions exactly one proceeds and
the others are told the upload is being completed; a completion that fails puts the folder back.
Uploads idle for longer than a threshold (no part since) go as with S3's
AbortIncompleteMultipartUpload. The store owns the objects; this owns only the staging."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from mediaindex.adapters.local.fs_writes import Chunks, Sink, drain, size_mismatch
from mediaindex.domain.errors import ConflictError, NotFoundError, PayloadTooLargeError, ValidationError
from mediaindex.domain.ids import new_id
from mediaindex.ports.blobs import (
    MAX_PART_NUMBER,
    MIN_PART_BYTES,
    UPLOAD_ALREADY_COMPLETED,
    BlobInfo,
    validate_key,
)

MAX_PART_BYTES = 5 * 1024**3  # S3's part limit
_UPLOAD_ID = re.compile(r"upl_[0-9a-z]{26}")
_ETAG = re.compile(r"[0-9a-f]{32}")  # a part's etag is its md5; anything else names no part
CLAIMED = ".completing"  # the suffix of a staging folder whose completion is under way


def check_part_number(part_number: int) -> None:
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise ValidationError(
            f"part_number must be 1..{MAX_PART_NUMBER}", code="upload_parts_invalid", field="part_number"
        )


def multipart_etag(part_files: list[Path]) -> str:
    """S3's etag of a multipart object: the md5 of the parts' md5s (here, in their file names), `-N`."""
    digests = b"".join(bytes.fromhex(f.name.partition(".")[2]) for f in part_files)
    return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(part_files)}"


class MultipartUploads:
    def __init__(self, uploads_dir: Path, tmp_dir: Path) -> None:
        self.root = uploads_dir
        self._tmp = tmp_dir

    def create(self, key: str, content_type: str) -> str:
        validate_key(key)
        upload_id = new_id("upl")
        staging = self.root / upload_id
        staging.mkdir(parents=True)
        doc = {"key": key, "content_type": content_type, "created_at": time.time()}
        (staging / "upload.json").write_text(json.dumps(doc))
        return upload_id

    def staging(self, key: str, upload_id: str) -> tuple[Path, str | None]:
        """The upload's folder and content type, or NotFoundError(`upload_not_found`), or
        ConflictError(`upload_already_completed`) while another call completes it."""
        validate_key(key)
        missing = NotFoundError("the multipart upload does not exist", code="upload_not_found")
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise missing
        staging = self.root / upload_id
        try:
            doc: dict[str, Any] = json.loads((staging / "upload.json").read_text())
        except (FileNotFoundError, NotADirectoryError, ValueError) as e:
            if (self.root / f"{upload_id}{CLAIMED}").is_dir():
                raise _being_completed() from e
            raise missing from e
        if doc.get("key") != key:
            raise missing
        return staging, doc.get("content_type")

    def claim(self, staging: Path) -> Path:
        """Takes the upload for one completion: one rename, which only one caller can win."""
        claimed = staging.with_name(staging.name + CLAIMED)
        try:
            os.rename(staging, claimed)  # fails when the source is gone (another claim won)
        except FileNotFoundError as e:
            if claimed.is_dir():
                raise _being_completed() from e
            raise NotFoundError("the multipart upload does not exist", code="upload_not_found") from e
        return claimed

    def unclaim(self, claimed: Path) -> None:
        """A completion that failed gives the upload back, so the client can fix its parts and retry."""
        with contextlib.suppress(OSError):  # aborted or swept meanwhile: nothing to give back
            os.rename(claimed, claimed.with_name(claimed.name.removesuffix(CLAIMED)))

    def part_files(
        self,
        staging: Path,
        parts: list[tuple[int, str]],
        max_object_bytes: int,
        expected_size: int | None = None,
    ) -> list[Path]:
        """The files of the quoted (part number, etag) pairs in part order, once they pass S3's
        checks (and add up to `expected_size` when given)."""
        ordered = sorted((n, etag.strip('"')) for n, etag in parts)
        numbers = [n for n, _ in ordered]
        if not ordered or len(set(numbers)) != len(numbers):
            raise ValidationError(
                "parts must be listed once each", code="upload_parts_invalid", field="parts"
            )
        files: list[Path] = []
        for i, (n, etag) in enumerate(ordered):
            if not 1 <= n <= MAX_PART_NUMBER or not _ETAG.fullmatch(etag):
                # An etag is a part's file name here: never let one be a path.
                raise ValidationError(
                    f"part {n} is missing or its etag differs", code="upload_parts_invalid", field="parts"
                )
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
        total = sum(f.stat().st_size for f in files)
        if total > max_object_bytes:
            raise PayloadTooLargeError(f"the object is larger than {max_object_bytes} bytes")
        if expected_size is not None and total != expected_size:
            raise size_mismatch(expected_size, total)
        return files

    async def write_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        chunks: Chunks,
        limit: int,
        expected_size: int | None = None,
    ) -> BlobInfo:
        """Stages one part, within `limit` and S3's part limit (exactly `expected_size` bytes when
        given); BlobInfo.etag names its file."""
        check_part_number(part_number)
        staging, _ = self.staging(key, upload_id)
        sink = await asyncio.to_thread(Sink, self._tmp, min(MAX_PART_BYTES, limit), exact=expected_size)
        try:
            await drain(chunks, sink)
            # The md5 is known only at the end, and it is part of the file's name.
            landed = self._tmp / f"part-{os.urandom(8).hex()}"
            written = await asyncio.to_thread(sink.commit, landed)
        except BaseException:
            sink.discard()
            raise
        final = staging / f"{part_number:05d}.{written.md5}"
        try:
            os.replace(landed, final)
        except FileNotFoundError as e:  # aborted or completed while the part was on its way
            landed.unlink(missing_ok=True)
            raise NotFoundError("the multipart upload does not exist", code="upload_not_found") from e
        # A part sent again replaces the earlier one, as on S3.
        for old in staging.glob(f"{part_number:05d}.*"):
            if old != final:
                old.unlink(missing_ok=True)
        return BlobInfo(key, written.size, written.md5, None, written.sha256)

    def abort(self, key: str, upload_id: str) -> None:
        # Idempotent: aborting an unknown or finished upload is a no-op, as cleanup may run twice;
        # one being completed is left to its completion.
        try:
            staging, _ = self.staging(key, upload_id)
        except (NotFoundError, ConflictError):
            return
        self.discard(staging)

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def idle_since(self, cutoff: float) -> list[tuple[str, str, Path]]:
        """(key, upload id, folder) of the uploads with no activity (start, or a part landing)
        since `cutoff` (unix s), claimed ones included (a completion that died part-way)."""
        found = []
        for staging in self.root.iterdir():
            upload_id = staging.name.removesuffix(CLAIMED)
            if not _UPLOAD_ID.fullmatch(upload_id) or not staging.is_dir():
                continue
            try:
                doc = json.loads((staging / "upload.json").read_text())
                key, last = str(doc["key"]), float(doc["created_at"])
                for part in staging.iterdir():
                    if part.name != "upload.json":  # a part landing is activity; the record is not
                        last = max(last, part.stat().st_mtime)
                if staging.name.endswith(CLAIMED):
                    last = max(last, staging.stat().st_ctime)  # the rename that claimed it
            except FileNotFoundError:
                continue  # completed or aborted while we looked
            except (OSError, ValueError, KeyError, TypeError):
                try:  # unreadable: judged by the folder alone
                    key, last = "", staging.stat().st_mtime
                except OSError:
                    continue
            if last < cutoff:
                found.append((key, upload_id, staging))
        return found

    def remove_started_before(self, cutoff: float) -> int:
        """Removes the uploads idle since before `cutoff` (unix s); returns how many went."""
        stale = self.idle_since(cutoff)
        for _key, _upload_id, staging in stale:
            self.discard(staging)
        return len(stale)


def _being_completed() -> ConflictError:
    return ConflictError(
        "this multipart upload is being completed by another request", code=UPLOAD_ALREADY_COMPLETED
    )
