"""The wire format of an asset's upload: how to send the file (`UploadOut`: one signed PUT, or a
multipart upload with signed part URLs), the bodies that sign more parts and complete an upload."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from mediaindex.api.schemas.base import OneOf, Strict
from mediaindex.services.uploads import UploadPlan


class PartOut(BaseModel):
    part_number: int
    url: str


class MultipartOut(BaseModel):
    upload_id: str
    part_size: int
    part_count: int = Field(
        description="How many parts the file takes. `parts` holds signed URLs for the first ones (at most "
        "100); sign the others, and re-sign expired ones, with POST /v1/assets/{id}/upload/parts."
    )
    parts: list[PartOut]

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
    method: Literal["PUT"] | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    multipart: MultipartOut | None = None
    expires_at: datetime

    @classmethod
    def of(cls, plan: UploadPlan) -> UploadOut:
        if plan.single is not None:
            return cls(
                method="PUT", url=plan.single.url, headers=plan.single.headers, expires_at=plan.expires_at
            )
        return cls(multipart=MultipartOut.of(plan), expires_at=plan.expires_at)


class PartNumbers(Strict):
    part_numbers: list[int] = Field(min_length=1, max_length=10_000)


class CompletedPart(Strict):
    part_number: int = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=200)


class CompleteUpload(Strict):
    parts: list[CompletedPart] = Field(min_length=1, max_length=10_000)
