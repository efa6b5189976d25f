"""The runtime-neutral archive `mediaindex export` writes and `mediaindex import` reads: one .tar of

- `blobs/<key>`: each object as the source stored it (originals, proxies, previews, transcripts,
  keyframes), streamed file by file;
- `indexes.jsonl`, `assets.jsonl`, `derivatives.jsonl`: the entity documents as the repositories
  store them (`model_dump(mode="json")`), one per line;
- `manifest.json`, written last: the format, the tenant, the counts, and the sha256 and size of
  every member above, so a reader refuses a damaged or truncated archive before trusting a byte.

A tar, not a zip: it is written front to back with nothing held in memory, and read back with
random access (the manifest is at the end because the hashes are known only once the bytes went by).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticError

from mediaindex.domain.errors import ValidationError
from mediaindex.domain.models import utcnow
from mediaindex.ports.blobs import validate_key

FORMAT = "mediaindex-export/1"
MANIFEST = "manifest.json"
BLOBS = "blobs/"
INDEXES, ASSETS, DERIVATIVES = "indexes.jsonl", "assets.jsonl", "derivatives.jsonl"
ENTITY_FILES = (INDEXES, ASSETS, DERIVATIVES)
_CHUNK = 1024 * 1024


class ArchiveError(ValidationError):
    """The archive cannot be trusted: not an export, truncated, or a member whose bytes differ."""

    code = "archive_invalid"


class BlobEntry(BaseModel):
    key: str  # as the source stored it (the member is blobs/<key>)
    asset_id: str
    role: str  # "original" | "derived"
    sha256: str
    size: int
    content_type: str


class TenantRef(BaseModel):
    # The id may become the target's tenant id and names the import's journal: an id, nothing else.
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    name: str = Field(min_length=1)


class Manifest(BaseModel):
    format: str
    mediaindex_version: str
    export_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")  # names the import's journal file
    created_at: datetime
    tenant: TenantRef
    counts: dict[str, int]
    files: dict[str, str]  # entity file -> sha256
    blobs: list[BlobEntry]


class _Hashing:
    """A reader that hashes what passes through it (tarfile copies members with read(n))."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.sha.update(data)
        return data


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(utcnow().timestamp())
    info.mode = 0o600
    return info


class ArchiveWriter:
    """Writes `dest` through a hidden `.part` file renamed at `close`, so an export that fails or
    is interrupted never leaves a file that looks complete. Mode 0600: the archive is the tenant's
    data."""

    def __init__(self, dest: Path) -> None:
        if dest.exists():
            raise ArchiveError(f"{dest} already exists: export never overwrites", code="archive_exists")
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.dest = dest
        self._part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._out = os.fdopen(fd, "wb")
        # Held open across calls (closed by close or abort), so no context manager here.
        self._tar = tarfile.open(fileobj=self._out, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self._tmp = Path(tempfile.mkdtemp(prefix="mi-export-"))
        self._entities = {name: (self._tmp / name).open("w", encoding="utf-8") for name in ENTITY_FILES}
        self.blobs: list[BlobEntry] = []
        self.counts = dict.fromkeys(ENTITY_FILES, 0)

    def add_entity(self, file: str, doc: dict[str, Any]) -> None:
        self._entities[file].write(json.dumps(doc, separators=(",", ":")) + "\n")
        self.counts[file] += 1

    def add_blob(self, key: str, asset_id: str, role: str, path: Path, content_type: str) -> BlobEntry:
        with path.open("rb") as f:
            reader = _Hashing(f)
            size = os.fstat(f.fileno()).st_size
            self._tar.addfile(_info(BLOBS + validate_key(key), size), reader)
        entry = BlobEntry(
            key=key,
            asset_id=asset_id,
            role=role,
            sha256=reader.sha.hexdigest(),
            size=size,
            content_type=content_type,
        )
        self.blobs.append(entry)
        return entry

    def close(self, *, export_id: str, version: str, tenant: TenantRef) -> Manifest:
        files: dict[str, str] = {}
        for name, f in self._entities.items():
            f.close()
            path = self._tmp / name
            with path.open("rb") as src:
                reader = _Hashing(src)
                self._tar.addfile(_info(name, path.stat().st_size), reader)
            files[name] = reader.sha.hexdigest()
        counts = {name.removesuffix(".jsonl"): n for name, n in self.counts.items()}
        counts["blobs"] = len(self.blobs)
        counts["blob_bytes"] = sum(b.size for b in self.blobs)
        manifest = Manifest(
            format=FORMAT,
            mediaindex_version=version,
            export_id=export_id,
            created_at=utcnow(),
            tenant=tenant,
            counts=counts,
            files=files,
            blobs=self.blobs,
        )
        data = manifest.model_dump_json(indent=1).encode()
        self._tar.addfile(_info(MANIFEST, len(data)), io.BytesIO(data))
        self._tar.close()
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        os.replace(self._part, self.dest)
        shutil.rmtree(self._tmp, ignore_errors=True)
        return manifest

    def abort(self) -> None:
        for f in self._entities.values():
            f.close()
        with contextlib.suppress(OSError, tarfile.TarError):  # the part file is removed next anyway
            self._tar.close()
        self._out.close()
        self._part.unlink(missing_ok=True)
        shutil.rmtree(self._tmp, ignore_errors=True)


class ArchiveReader:
    """Opens an archive and checks it whole before anything is imported: the manifest is there and
    readable, every member it names is there with its size, and the entity files hash as it says.
    Blob bytes are checked as each one is extracted (`extract_blob`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._tar = tarfile.open(path, mode="r:")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise ArchiveError(f"{path} does not exist", code="archive_not_found") from None
        except (tarfile.TarError, OSError) as e:
            raise ArchiveError(f"{path} is not a mediaindex export: {e}") from e
        try:
            try:
                self._members = {m.name: m for m in self._tar.getmembers()}
            except (tarfile.TarError, OSError) as e:
                raise ArchiveError(f"{path} is truncated or damaged: {e}") from e
            self.manifest = self._read_manifest()
            self._check_members()
        except BaseException:
            self._tar.close()
            raise

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self, name: str) -> IO[bytes]:
        member = self._members.get(name)
        f = self._tar.extractfile(member) if member is not None and member.isfile() else None
        if f is None:
            raise ArchiveError(f"{self.path} lacks {name}: the archive is truncated or damaged")
        return f

    def _read_manifest(self) -> Manifest:
        if MANIFEST not in self._members:
            raise ArchiveError(
                f"{self.path} has no {MANIFEST}: not a complete mediaindex export (truncated?)"
            )
        try:
            with self._open(MANIFEST) as f:
                data = f.read()
            doc = json.loads(data)
        except (tarfile.TarError, OSError, ValueError) as e:
            raise ArchiveError(f"{self.path}: {MANIFEST} is unreadable (truncated?): {e}") from e
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else None
            raise ArchiveError(f"{self.path}: unknown export format {found!r} (this release reads {FORMAT})")
        try:
            return Manifest.model_validate(doc)
        except PydanticError as e:
            raise ArchiveError(f"{self.path}: {MANIFEST} is malformed: {e.errors()[0]['msg']}") from e

    def _check_members(self) -> None:
        wanted = [(name, None) for name in ENTITY_FILES] + [
            (BLOBS + b.key, b.size) for b in self.manifest.blobs
        ]
        for name, size in wanted:
            member = self._members.get(name)
            if member is None or not member.isfile():
                raise ArchiveError(f"{self.path} lacks {name}: the archive is truncated or damaged")
            if size is not None and member.size != size:
                raise ArchiveError(f"{self.path}: {name} is {member.size} bytes, the manifest says {size}")
        for name, digest in self.manifest.files.items():
            if name not in ENTITY_FILES:
                raise ArchiveError(f"{self.path}: the manifest names an unknown file {name!r}")
            if _digest(self._open(name), self.path, name) != digest:
                raise ArchiveError(f"{self.path}: {name} differs from the manifest (sha256)")

    def entities(self, file: str) -> Iterator[dict[str, Any]]:
        """The documents of one entity file, streamed line by line (checked at open)."""
        with self._open(file) as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)

    def extract_blob(self, entry: BlobEntry, dest: Path) -> None:
        """Streams one blob to `dest`; ArchiveError (`archive_blob_mismatch`) when its bytes are not
        the ones the manifest hashed."""
        sha = hashlib.sha256()
        try:
            with self._open(BLOBS + entry.key) as src, dest.open("wb") as out:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    sha.update(chunk)
                    out.write(chunk)
        except (tarfile.TarError, OSError) as e:
            raise ArchiveError(f"{self.path}: blob {entry.key} is unreadable (truncated?): {e}") from e
        if sha.hexdigest() != entry.sha256:
            raise ArchiveError(
                f"{self.path}: blob {entry.key} differs from the manifest (sha256): the archive was altered",
                code="archive_blob_mismatch",
            )


def _digest(f: IO[bytes], path: Path, name: str) -> str:
    sha = hashlib.sha256()
    try:
        with f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                sha.update(chunk)
    except (tarfile.TarError, OSError) as e:
        raise ArchiveError(f"{path}: {name} is unreadable (truncated?): {e}") from e
    return sha.hexdigest()
