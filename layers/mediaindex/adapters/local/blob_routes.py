"""`/_blobs/{key}`: the local runtime's stand-in for S3's presigned URLs.

Part of the local blob adapter: the composition root hands this router to the app when blobs live
in a folder (there is no service between a signed URL and its bytes). Refusals are raised as domain
errors and rendered by the app's one error handler (mediaindex.api.errors).

An original is wanted only while its asset awaits it: `original_wanted(key)` is asked before the
bytes are read, and `on_original_created(key, info)` after they landed; when that answers False
(the asset went, or stopped waiting, meanwhile) the object is deleted again and the PUT refused, so
a late upload leaves nothing behind. A URL signed one-shot writes once (409 after), one signed with
a size takes exactly that many bytes."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import IO

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from mediaindex.adapters.local.fs_blobs import LocalBlobStore
from mediaindex.adapters.local.fs_writes import CHUNK, already_uploaded, size_mismatch
from mediaindex.domain.blob_keys import ORIGINALS_PREFIX
from mediaindex.domain.errors import (
    ConflictError,
    PayloadTooLargeError,
    SignatureError,
)
from mediaindex.ports.blobs import BlobInfo, attachment_disposition

log = logging.getLogger(__name__)

# Positions of at most 19 digits: a longer number is no real offset, and int() refuses one of
# over 4300 digits with a ValueError (a 500).
_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")
# Told an original landed; False means its asset no longer wants it (deleted, stopped waiting).
OriginalCreated = Callable[[str, BlobInfo], bool | None]
OriginalWanted = Callable[[str], bool]


def _not_accepted() -> ConflictError:
    return ConflictError(
        "the asset this URL uploads to no longer awaits an upload (deleted, aborted or expired)",
        code="upload_not_accepted",
    )


def build_local_blob_router(
    store: LocalBlobStore,
    on_original_created: OriginalCreated,
    original_wanted: OriginalWanted | None = None,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.put("/_blobs/{key:path}")
    async def put_blob(key: str, request: Request) -> Response:
        signed = store.verify("PUT", key, dict(request.query_params))
        raw_length = request.headers.get("content-length")
        declared = int(raw_length) if raw_length and raw_length.isascii() and raw_length.isdigit() else None
        if declared is not None and declared > store.max_object_bytes:
            raise PayloadTooLargeError(f"the object is larger than {store.max_object_bytes} bytes")
        if signed.size is not None and declared is not None and declared != signed.size:
            raise size_mismatch(signed.size, declared)  # before a byte is read
        if signed.is_part:
            assert signed.upload_id is not None and signed.part_number is not None
            info = await store.write_part(
                key, signed.upload_id, signed.part_number, request.stream(), expected_size=signed.size
            )
        else:
            sent_type = request.headers.get("content-type")
            # As on S3, a signed Content-Type must be sent exactly as signed.
            if signed.content_type is not None and sent_type != signed.content_type:
                raise SignatureError(
                    "Content-Type differs from the one the URL was signed with.", code="signature_invalid"
                )
            # One-shot when signed so (S3: the signed If-None-Match), or when the client asks.
            once = signed.once or request.headers.get("if-none-match", "").strip() == "*"
            if once and await run_in_threadpool(store.exists, key):
                # A used one-shot URL tried again: worth a line for whoever watches (key, never the URL).
                log.warning("signed upload refused: the object was already written", extra={"key": key})
                raise already_uploaded(key)  # early; the write itself is the atomic check
            # Mirrors the AWS upload rule, which listens on originals/ only.
            original = key.startswith(ORIGINALS_PREFIX)
            if original and original_wanted is not None and not await run_in_threadpool(original_wanted, key):
                raise _not_accepted()
            info = await store.write_stream(
                key,
                request.stream(),
                signed.content_type or sent_type,
                expected_size=signed.size,
                exclusive=once,
            )
            if original:
                try:
                    keep = await run_in_threadpool(on_original_created, key, info)
                except Exception:
                    # The bytes are stored; as with S3 events, a failed listener does not fail the PUT.
                    log.exception("on_original_created failed for %s", key)
                    keep = None
                if keep is False:
                    # Its asset went (or stopped waiting) while the bytes came: keep nothing.
                    await run_in_threadpool(store.delete, key)
                    raise _not_accepted()
        return Response(
            status_code=200, headers={"ETag": f'"{info.etag}"', "Access-Control-Expose-Headers": "ETag"}
        )

    @router.get("/_blobs/{key:path}")
    async def get_blob(key: str, request: Request) -> Response:
        signed = store.verify("GET", key, dict(request.query_params))
        f, info = await run_in_threadpool(store.open_read, key)
        headers = {
            "ETag": f'"{info.etag}"',
            "Accept-Ranges": "bytes",
            "Access-Control-Expose-Headers": "ETag, Content-Range, Content-Length",
        }
        if signed.filename is not None:
            headers["Content-Disposition"] = attachment_disposition(signed.filename)
        media_type = signed.content_type or info.content_type or "application/octet-stream"
        start, end = 0, info.size - 1
        status = 200
        wanted = _parse_range(request.headers.get("range"), info.size)
        if isinstance(wanted, str):  # "unsatisfiable"
            f.close()
            return Response(status_code=416, headers={"Content-Range": f"bytes */{info.size}"})
        if wanted is not None:
            start, end = wanted
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
        headers["Content-Length"] = str(end - start + 1)
        return StreamingResponse(
            _read(f, start, end), status_code=status, headers=headers, media_type=media_type
        )

    return router


def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end) inclusive for one `bytes=` range; None to send it all (no header, several
    ranges or a form we do not know, as RFC 9110 allows); "unsatisfiable" for 416."""
    if not header:
        return None
    m = _RANGE.fullmatch(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # the last N bytes
        n = int(m.group(2))
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _read(f: IO[bytes], start: int, end: int) -> Iterator[bytes]:
    # A sync generator: Starlette runs it in a thread pool, so disk reads never block the loop.
    with f:
        f.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
