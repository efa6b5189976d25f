"""The wire format of what an asset yields: a signed URL to download its original, its derivatives
(each with a signed URL), and a page of its segments."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from mediaindex.services.asset_outputs import DerivativeView


class SignedUrlOut(BaseModel):
    url: str
    expires_at: datetime


class DerivativeOut(BaseModel):
    kind: str
    url: str
    content_type: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None

    @classmethod
    def of(cls, v: DerivativeView) -> DerivativeOut:
        d = v.derivative
        return cls(
            kind=d.kind,
            url=v.url,
            content_type=d.content_type,
            size_bytes=d.size_bytes,
            width=d.width,
            height=d.height,
            duration_s=d.duration_s,
        )


class DerivativeList(BaseModel):
    data: list[DerivativeOut]


class SegmentOut(BaseModel):
    id: str
    start: float
    end: float
    kind: str
    text: str | None = None
    keyframe_url: str | None = None


class SegmentList(BaseModel):
    data: list[SegmentOut]
    next_cursor: str | None
