"""The wire format of an asset's upload: how to send the file (`UploadOut`: one signed PUT, or a
multipart upload with signed part URLs), the bodies that sign more parts and complete an upload."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from mediaindex.api.schemas.base import OneOf, Strict
from mediaindex.services.uploads import UploadPlan


class PartOut(BaseModel):
    part_number: int = Field(description="The part's number, from 1.")
    url: str = Field(description="PUT the part's bytes here; keep the answer's ETag for the complete call.")


class MultipartOut(BaseModel):
    upload_id: str = Field(description="The multipart upload's id.")
    part_size: int = Field(description="Bytes in every part but the last.", examples=[8388608])
    part_count: int = Field(
        description="How many parts the file takes. `parts` holds signed URLs for the first ones (at most "
        "100); sign the others, and re-sign expired ones, with POST /v1/assets/{id}/upload/parts."
    )
    parts: list[PartOut] = Field(description="Signed URLs of the first parts (at most 100).")

    @classmethod
    def of(cls, plan: UploadPlan) -> MultipartOut:
        assert plan.upload_id is not None and plan.part_size is not None
        return cls(
            upload_id=plan.upload_id,
            part_size=plan.part_size,
            part_count=plan.part_count or len(plan.parts),
            parts=[PartOut(part_number=p.part_number, url=p.url) for p in plan.parts],
        )


class UploadOut(OneOf):
    """One signed PUT (`method`, `url`, `headers`), or a multipart upload (`multipart`)."""

    method: Literal["PUT"] | None = Field(None, description="`PUT`, for a single upload.")
    url: str | None = Field(None, description="Where to PUT the file's bytes (no API key).")
    headers: dict[str, str] | None = Field(
        None,
        description="Headers to send with the PUT, exactly: they are signed into the URL.",
        examples=[{"Content-Type": "video/mp4", "Content-Length": "1048576", "If-None-Match": "*"}],
    )
    multipart: MultipartOut | None = Field(None, description="The multipart upload, for large files.")
    expires_at: datetime = Field(description="When the upload URLs stop working (UTC).")

    @classmethod
    def of(cls, plan: UploadPlan) -> UploadOut:
        if plan.single is not None:
            return cls(
                method="PUT", url=plan.single.url, headers=plan.single.headers, expires_at=plan.expires_at
            )
        return cls(multipart=MultipartOut.of(plan), expires_at=plan.expires_at)


class PartNumbers(Strict):
    part_numbers: list[int] = Field(
        min_length=1, max_length=10_000, description="The parts to sign URLs for.", examples=[[101, 102]]
    )


class CompletedPart(Strict):
    part_number: int = Field(ge=1, le=10_000, description="The part's number.")
    etag: str = Field(min_length=1, max_length=200, description="The ETag its PUT answered with.")


class CompleteUpload(Strict):
    parts: list[CompletedPart] = Field(
        min_length=1, max_length=10_000, description="Every part sent, each with its ETag."
    )
