"""The wire format of /v1/assets: the create and patch bodies, the asset as served (entities are
converted here so internal fields, upload keys, versions and facts, never leak), what a create
answers (the asset with its upload or its task), and the batch get and delete bodies and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

from mediaindex.api.schemas.base import OneOf, Strict, domain_check
from mediaindex.api.schemas.tasks import FeatureStateOut, TaskOut
from mediaindex.api.schemas.uploads import UploadOut
from mediaindex.domain.models import Asset, AssetStatus, ErrorInfo, MediaType
from mediaindex.domain.rules import validate_content_type
from mediaindex.domain.search import MAX_ID_LEN


class AssetCreate(Strict):
    index_id: str = Field(max_length=MAX_ID_LEN)
    name: str
    features: list[str] | None = None
    save_original: bool = True
    user_metadata: dict[str, Any] | None = None
    size_bytes: int | None = None
    content_type: str | None = Field(None, max_length=255)
    asset_url: str | None = Field(None, max_length=4096)

    @field_validator("content_type")
    @classmethod
    def _content_type(cls, value: str | None) -> str | None:
        return domain_check(validate_content_type, value)


class AssetPatch(Strict):
    name: str | None = None
    user_metadata: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    code: str
    message: str

    @classmethod
    def of(cls, e: ErrorInfo | None) -> ErrorOut | None:
        return cls(code=e.code, message=e.message) if e else None


class AssetOut(BaseModel):
    id: str
    index_id: str
    name: str
    media_type: MediaType | None
    content_type: str | None
    size_bytes: int | None
    sha256: str | None
    duration_s: float | None
    width: int | None
    height: int | None
    status: AssetStatus
    error: ErrorOut | None
    features: dict[str, FeatureStateOut]
    save_original: bool
    user_metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, a: Asset) -> AssetOut:
        return cls(
            id=a.id,
            index_id=a.index_id,
            name=a.name,
            media_type=a.media_type,
            content_type=a.content_type,
            size_bytes=a.size_bytes,
            sha256=a.sha256,
            duration_s=a.duration_s,
            width=a.width,
            height=a.height,
            status=a.status,
            error=ErrorOut.of(a.error),
            features={f.value: FeatureStateOut.of(fs) for f, fs in a.features.items()},
            save_original=a.save_original,
            user_metadata=a.user_metadata,
            created_at=a.created_at,
            updated_at=a.updated_at,
        )


class AssetList(BaseModel):
    data: list[AssetOut]
    next_cursor: str | None


class AssetCreated(OneOf):
    asset: AssetOut
    upload: UploadOut | None = None
    task: TaskOut | None = None


class IdList(Strict):
    ids: list[Annotated[str, Field(max_length=MAX_ID_LEN)]] = Field(min_length=1, max_length=100)


class BatchGetOut(BaseModel):
    data: list[AssetOut]
    not_found_ids: list[str]


class BatchDeleteOut(BaseModel):
    requested_count: int
    deleted_count: int
    not_found_ids: list[str]
