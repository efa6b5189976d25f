"""HMAC-SHA256 signed URLs for the local blob store: the laptop's answer to S3 presigned URLs.

A signature binds the method, the blob key, the expiry and every other signed query parameter
(upload id and part number for parts; content type; download file name; the body's exact length
and the one-shot flag of an upload), so a URL cannot be replayed for another object, another
method, another part, another length or later. The secret never leaves this
object: it is not logged, not in repr, and not in any error message."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mediaindex.domain.errors import SignatureError

# Query parameter names; short like S3's, and the only ones the signature covers.
EXP = "exp"
SIG = "sig"
UPLOAD_ID = "upload_id"
PART_NUMBER = "part_number"
CONTENT_TYPE = "ct"
FILENAME = "filename"
SIZE = "size"  # the exact body length an upload must have
ONCE = "once"  # "1": the upload may not replace an existing object
_VERSION = "v1"
# v2 adds the size and one-shot fields; URLs without them keep v1's message, so they stay valid.
_VERSION_2 = "v2"


@dataclass(frozen=True)
class SignedParams:
    """What a verified URL allows: the parsed, trusted request."""

    method: str
    key: str
    expires_at: int
    upload_id: str | None = None
    part_number: int | None = None
    content_type: str | None = None
    filename: str | None = None
    size: int | None = None
    once: bool = False

    @property
    def is_part(self) -> bool:
        return self.upload_id is not None and self.part_number is not None


class UrlSigner:
    def __init__(self, secret: bytes, *, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 16:
            raise ValueError("signing secret must be at least 16 bytes")
        self._secret = secret
        self._clock = clock

    def __repr__(self) -> str:
        return "UrlSigner(secret=***)"

    def now(self) -> float:
        return self._clock()

    def sign(
        self,
        method: str,
        key: str,
        expires_at: int,
        *,
        upload_id: str | None = None,
        part_number: int | None = None,
        content_type: str | None = None,
        filename: str | None = None,
        size: int | None = None,
        once: bool = False,
    ) -> dict[str, str]:
        """Query parameters (unencoded) that make `method key` valid until `expires_at` (unix s)."""
        params = SignedParams(
            method.upper(), key, int(expires_at), upload_id, part_number, content_type, filename, size, once
        )
        query: dict[str, str] = {}
        if upload_id is not None:
            query[UPLOAD_ID] = upload_id
        if part_number is not None:
            query[PART_NUMBER] = str(part_number)
        if content_type is not None:
            query[CONTENT_TYPE] = content_type
        if filename is not None:
            query[FILENAME] = filename
        if size is not None:
            query[SIZE] = str(int(size))
        if once:
            query[ONCE] = "1"
        query[EXP] = str(params.expires_at)
        query[SIG] = self._mac(params)
        return query

    def verify(self, method: str, key: str, query: Mapping[str, str]) -> SignedParams:
        """The signed request, or SignatureError: `signature_invalid` (tampered, missing, other
        method/key/part) or `signature_expired` (a valid signature past its expiry)."""
        sig = query.get(SIG)
        exp_raw = query.get(EXP)
        if not sig or not exp_raw or not _small_int(exp_raw):
            raise SignatureError("The URL is not signed.", code="signature_invalid")
        part_raw = query.get(PART_NUMBER)
        size_raw = query.get(SIZE)
        once_raw = query.get(ONCE)
        if (
            (part_raw is not None and not _small_int(part_raw))
            or (size_raw is not None and not _small_int(size_raw))
            or once_raw not in (None, "1")
        ):
            raise SignatureError("The URL signature does not match.", code="signature_invalid")
        params = SignedParams(
            method=method.upper(),
            key=key,
            expires_at=int(exp_raw),
            upload_id=query.get(UPLOAD_ID),
            part_number=int(part_raw) if part_raw is not None else None,
            content_type=query.get(CONTENT_TYPE),
            filename=query.get(FILENAME),
            size=int(size_raw) if size_raw is not None else None,
            once=once_raw == "1",
        )
        # Constant time, so the signature cannot be guessed byte by byte from response times.
        if not hmac.compare_digest(self._mac(params).encode(), sig.encode()):
            raise SignatureError("The URL signature does not match.", code="signature_invalid")
        # Expiry is checked only after the MAC: an attacker cannot learn anything by editing `exp`.
        if self._clock() > params.expires_at:
            raise SignatureError("The URL has expired.", code="signature_expired")
        return params

    def _mac(self, p: SignedParams) -> str:
        # A JSON array is an unambiguous encoding: no field can bleed into the next.
        fields: list[object] = [
            _VERSION,
            p.method,
            p.key,
            p.expires_at,
            p.upload_id,
            p.part_number,
            p.content_type,
            p.filename,
        ]
        if p.size is not None or p.once:
            fields = [_VERSION_2, *fields[1:], p.size, p.once]
        message = json.dumps(fields, separators=(",", ":")).encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _small_int(raw: str) -> bool:
    # ASCII digits only (str.isdigit takes "²" too), and few enough that int() is cheap and bounded.
    return 0 < len(raw) <= 19 and raw.isascii() and raw.isdigit()
