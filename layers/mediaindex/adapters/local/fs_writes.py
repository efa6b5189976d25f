"""How the local blob store puts bytes on disk: hashed temp files, atomic replace, streamed bodies.

Every write to the folder store starts as a temp file under `tmp/` that hashes what goes in (md5
for the S3-style etag, sha256 for the record) and refuses more than its limit, then lands with one
`os.replace`, so no reader ever sees a half-written object (or, for a one-shot upload, one `os.link`,
which fails when the key exists: of racing writers exactly one lands). An upload signed with its
length is counted as it streams and refused the moment it runs over, or at the end when short.
Request bodies arrive as small async
chunks; `drain` gathers about 1 MiB before each trip to a worker thread, so neither disk nor hashing
runs on the event loop. Kept apart from the store so the object, part and metadata writers share one
path to the disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mediaindex.domain.errors import ConflictError, PayloadTooLargeError, ValidationError
from mediaindex.ports.blobs import UPLOAD_ALREADY_COMPLETED, UPLOAD_SIZE_MISMATCH

CHUNK = 1024 * 1024
# A body to store: the chunks of a request as they arrive, or an in-process iterable.
Chunks = AsyncIterable[bytes] | Iterable[bytes]


@dataclass(frozen=True)
class Written:
    size: int
    md5: str
    sha256: str


def size_mismatch(expected: int, got: str | int) -> ValidationError:
    return ValidationError(
        f"the upload must be exactly {expected} bytes (the size it was signed for); got {got}",
        code=UPLOAD_SIZE_MISMATCH,
        field="Content-Length",
    )


def already_uploaded(key: str) -> ConflictError:
    return ConflictError(
        f"{key!r} has been uploaded already; an upload URL writes once", code=UPLOAD_ALREADY_COMPLETED
    )


class Sink:
    """A temp file that hashes what goes in and refuses more than `limit` bytes, or any other
    length than `exact` when given."""

    def __init__(self, tmp_dir: Path, limit: int, *, durable: bool = False, exact: int | None = None) -> None:
        self._limit = limit
        self._exact = exact
        self._durable = durable
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha = hashlib.sha256()
        self.size = 0
        self._file: IO[bytes] = tempfile.NamedTemporaryFile(dir=tmp_dir, delete=False)  # noqa: SIM115
        self.path = Path(self._file.name)

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._exact is not None and self.size > self._exact:
            raise size_mismatch(self._exact, f"more than {self._exact}")
        if self.size > self._limit:
            raise PayloadTooLargeError(f"the object is larger than {self._limit} bytes")
        self._md5.update(data)
        self._sha.update(data)
        self._file.write(data)

    def commit(self, dest: Path, *, exclusive: bool = False, key: str = "") -> Written:
        """Lands the file at `dest`; `exclusive`: only if nothing is there (ConflictError
        `upload_already_completed` otherwise, the temp file discarded by the caller)."""
        if self._exact is not None and self.size != self._exact:
            raise size_mismatch(self._exact, self.size)
        self._file.flush()
        if self._durable:
            os.fsync(self._file.fileno())
        self._file.close()
        if exclusive:
            atomic_create(self.path, dest, key)
        else:
            atomic_replace(self.path, dest)
        return Written(self.size, self._md5.hexdigest(), self._sha.hexdigest())

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def atomic_replace(src: Path, dest: Path) -> None:
    """Moves `src` to `dest` atomically, making its folders; a key that collides with another
    key's folder (`a` and `a/b`) is ConflictError(`blob_key_conflict`)."""
    # A concurrent delete may prune the (then empty) parent between mkdir and replace: try again.
    for attempt in range(3):
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
            return
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as e:
            raise _key_conflict(dest) from e
        except FileNotFoundError:
            if attempt == 2:
                raise


def _key_conflict(dest: Path) -> ConflictError:
    return ConflictError(
        f"{dest.name!r} collides with another key on the local file system", code="blob_key_conflict"
    )


def atomic_create(src: Path, dest: Path, key: str) -> None:
    """Moves `src` to `dest` only if `dest` does not exist, atomically: a hard link fails with
    EEXIST when the name is taken, so of writers racing for one key exactly one lands."""
    for attempt in range(3):
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dest)
        except FileExistsError as e:
            raise (_key_conflict(dest) if dest.is_dir() else already_uploaded(key)) from e
        except (NotADirectoryError, IsADirectoryError) as e:
            raise _key_conflict(dest) from e
        except FileNotFoundError:
            if attempt == 2:
                raise
            continue
        src.unlink(missing_ok=True)
        return


def file_chunks(paths: Iterable[Path]) -> Iterator[bytes]:
    """The bytes of `paths`, one after another, CHUNK at a time."""
    for path in paths:
        with open(path, "rb") as src:
            while chunk := src.read(CHUNK):
                yield chunk


def hash_file(path: Path) -> Written:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    size = 0
    for chunk in file_chunks([path]):
        size += len(chunk)
        md5.update(chunk)
        sha.update(chunk)
    return Written(size, md5.hexdigest(), sha.hexdigest())


async def drain(chunks: Chunks, sink: Sink) -> None:
    """Writes a request body into `sink` as it arrives, off the event loop."""
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


async def _aiter(chunks: Chunks) -> AsyncIterator[bytes]:
    if isinstance(chunks, AsyncIterable):
        async for c in chunks:
            yield c
    else:
        it: Iterator[bytes] = iter(chunks)
        for c in it:
            yield c
