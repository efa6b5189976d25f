"""The wire format of what an asset yields: a signed URL to download its original, its derivatives
(each with a signed URL), and a page of its segments."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mediaindex.api.schemas.base import NEXT_CURSOR
from mediaindex.services.asset_outputs import DerivativeView

SIGNED_URL = "A signed URL: a GET needs no key until it expires."


class SignedUrlOut(BaseModel):
    url: str = Field(description=SIGNED_URL)
    expires_at: datetime = Field(description="When the URL stops working (UTC).")


class DerivativeOut(BaseModel):
    kind: str = Field(
        description="`proxy`, `poster`, `thumbnail`, `storyboard` (a sprite sheet) or `storyboard_vtt`.",
        examples=["proxy"],
    )
    url: str = Field(description=SIGNED_URL)
    content_type: str = Field(description="The file's media type.", examples=["video/mp4"])
    size_bytes: int = Field(description="The file's size.")
    width: int | None = Field(None, description="Pixels, for video and images.")
    height: int | None = Field(None, description="Pixels, for video and images.")
    duration_s: float | None = Field(None, description="Seconds, for video and audio.")

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
    data: list[DerivativeOut] = Field(description="Every derivative made so far.")


class SegmentOut(BaseModel):
    id: str = Field(description="The segment's id.", examples=["seg_01j9zq4m3v8c2k7r5t6w0y1x2a"])
    start: float = Field(description="Seconds from the start of the media.", examples=[12.5])
    end: float = Field(description="Seconds from the start of the media.", examples=[17.0])
    kind: str = Field(description="What the segment is cut by (a scene, a phrase said, the whole image).")
    text: str | None = Field(None, description="What was said in it, where anything was.")
    keyframe_url: str | None = Field(None, description="A signed URL of its keyframe, where it has one.")


class SegmentList(BaseModel):
    data: list[SegmentOut] = Field(description="A page of segments, in time order.")
    next_cursor: str | None = Field(description=NEXT_CURSOR)
