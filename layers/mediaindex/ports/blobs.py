"""Blob store port: originals and derivatives, with signed URLs so bytes never pass through the API."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    etag: str
    content_type: str | None = None


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
