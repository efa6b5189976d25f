"""Blob store port: originals and derivatives, with signed URLs so bytes never pass through the API."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from mediaindex.domain.errors import ValidationError

# S3's rules, kept by both adapters: every part but the last is at least 5 MiB; at most 10,000 parts.
MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000
# The one refusal of a second write to a one-shot key (a used upload URL), and of a body whose length
# is not the one signed: the same codes from both adapters.
UPLOAD_ALREADY_COMPLETED = "upload_already_completed"
UPLOAD_SIZE_MISMATCH = "upload_size_mismatch"
_KEY_CHARS = re.compile(r"[A-Za-z0-9._/-]+")


def validate_key(key: str, *, prefix: bool = False) -> str:
    """The key itself, or ValidationError(`blob_key_invalid`). Keys are relative paths over
    [A-Za-z0-9._/-] with no empty, `.` or `..` segment, so they are safe as file paths and URLs.
    A prefix (for list/delete) may be empty or end with `/`."""
    if prefix and key == "":
        return key
    parts = key.split("/")
    if prefix and key.endswith("/"):
        parts = parts[:-1]
    if len(key) > 1024 or not _KEY_CHARS.fullmatch(key) or any(p in ("", ".", "..") for p in parts):
        raise ValidationError(f"invalid blob key {key!r}", code="blob_key_invalid", field="key")
    return key


def attachment_disposition(filename: str) -> str:
    """Content-Disposition for a download: an ASCII fallback plus the RFC 6266 UTF-8 form."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def upload_headers(content_type: str, expected_size: int | None, one_shot: bool) -> dict[str, str]:
    """The headers a signed upload must be sent with, the same from both adapters. A browser sets
    Content-Length itself (from the file, so it matches) and may not set it by hand."""
    headers = {"Content-Type": content_type}
    if expected_size is not None:
        headers["Content-Length"] = str(expected_size)
    if one_shot:
        headers["If-None-Match"] = "*"
    return headers


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    etag: str  # hex, without S3's quotes; multipart ones end in `-<part count>` as on S3
    content_type: str | None = None
    sha256: str | None = None  # hex, when the adapter saw the bytes go by (local); None on S3


@dataclass(frozen=True)
class SignedRequest:
    method: str
    url: str
    expires_at: datetime
    headers: dict[str, str] = field(default_factory=dict)


class BlobStore(ABC):
    @abstractmethod
    def put_file(self, key: str, path: Path, content_type: str) -> BlobInfo: ...

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str) -> BlobInfo: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """NotFoundError when missing."""

    @abstractmethod
    def download_file(self, key: str, dest: Path) -> None:
        """Streams the object to `dest`. NotFoundError when missing."""

    @abstractmethod
    def head(self, key: str) -> BlobInfo | None: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Deletes every object under `prefix`; returns how many."""

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]: ...

    @abstractmethod
    def presign_put(
        self,
        key: str,
        content_type: str,
        expires_s: int,
        *,
        expected_size: int | None = None,
        one_shot: bool = False,
    ) -> SignedRequest:
        """A PUT the client sends with `headers` exactly as returned. `expected_size` binds the
        body's length: any other length is refused (S3: Content-Length is signed; local: counted
        while streaming, `upload_size_mismatch`). `one_shot` refuses a write to a key that already
        holds an object (S3: `If-None-Match: *`, 412; local: 409 `upload_already_completed`), so a
        used URL cannot replace what it uploaded."""

    @abstractmethod
    def presign_get(
        self, key: str, expires_s: int, *, filename: str | None = None, content_type: str | None = None
    ) -> SignedRequest: ...

    @abstractmethod
    def create_multipart(self, key: str, content_type: str) -> str:
        """Returns the upload id."""

    @abstractmethod
    def presign_part(
        self, key: str, upload_id: str, part_number: int, expires_s: int, *, expected_size: int | None = None
    ) -> SignedRequest:
        """A part's PUT; `expected_size` binds the part's length as in presign_put."""

    @abstractmethod
    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        *,
        expected_size: int | None = None,
        one_shot: bool = False,
    ) -> BlobInfo:
        """Parts are (part_number, etag). ValidationError(`upload_parts_invalid`) when a part is
        missing, too small (under 5 MiB but the last) or its etag differs;
        ValidationError(`upload_size_mismatch`) when the parts do not add up to `expected_size`
        (nothing is stored); with `one_shot`, ConflictError(`upload_already_completed`) when the
        key already holds an object or another completion of the upload is under way."""

    @abstractmethod
    def abort_multipart(self, key: str, upload_id: str) -> None: ...
