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
    def presign_put(self, key: str, content_type: str, expires_s: int) -> SignedRequest: ...

    @abstractmethod
    def presign_get(
        self, key: str, expires_s: int, *, filename: str | None = None, content_type: str | None = None
    ) -> SignedRequest: ...

    @abstractmethod
    def create_multipart(self, key: str, content_type: str) -> str:
        """Returns the upload id."""

    @abstractmethod
    def presign_part(self, key: str, upload_id: str, part_number: int, expires_s: int) -> SignedRequest: ...

    @abstractmethod
    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> BlobInfo:
        """Parts are (part_number, etag). ValidationError(`upload_parts_invalid`) when a part is
        missing, too small (under 5 MiB but the last) or its etag differs."""

    @abstractmethod
    def abort_multipart(self, key: str, upload_id: str) -> None: ...
