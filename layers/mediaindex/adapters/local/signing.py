"""HMAC-SHA256 signed URLs for the local blob store: the laptop's answer to S3 presigned URLs.

A signature binds the method, the blob key, the expiry and every other signed query parameter
(upload id and part number for parts; content type; download file name), so a URL cannot be
replayed for another object, another method, another part or later. The secret never leaves this
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
_VERSION = "v1"


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
    ) -> dict[str, str]:
        """Query parameters (unencoded) that make `method key` valid until `expires_at` (unix s)."""
        params = SignedParams(
            method.upper(), key, int(expires_at), upload_id, part_number, content_type, filename
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
        query[EXP] = str(params.expires_at)
        query[SIG] = self._mac(params)
        return query

    def verify(self, method: str, key: str, query: Mapping[str, str]) -> SignedParams:
        """The signed request, or SignatureError: `signature_invalid` (tampered, missing, other
        method/key/part) or `signature_expired` (a valid signature past its expiry)."""
        sig = query.get(SIG)
        exp_raw = query.get(EXP)
        if not sig or not exp_raw or not exp_raw.isdigit():
            raise SignatureError("The URL is not signed.", code="signature_invalid")
        part_raw = query.get(PART_NUMBER)
        if part_raw is not None and not part_raw.isdigit():
            raise SignatureError("The URL signature does not match.", code="signature_invalid")
        params = SignedParams(
            method=method.upper(),
            key=key,
            expires_at=int(exp_raw),
            upload_id=query.get(UPLOAD_ID),
            part_number=int(part_raw) if part_raw is not None else None,
            content_type=query.get(CONTENT_TYPE),
            filename=query.get(FILENAME),
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
        message = json.dumps(
            [_VERSION, p.method, p.key, p.expires_at, p.upload_id, p.part_number, p.content_type, p.filename],
            separators=(",", ":"),
        ).encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
