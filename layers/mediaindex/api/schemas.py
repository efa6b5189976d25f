"""The wire format of /v1: request bodies (unknown fields refused) and response models.
Entities are converted here so internal fields (upload keys, versions, facts) never leak."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from mediaindex.domain.errors import ValidationError as DomainValidationError
from mediaindex.domain.models import (
    Asset,
    AssetStatus,
    ErrorInfo,
    Feature,
    FeatureState,
    Index,
    MediaType,
    Task,
    TaskKind,
    TaskState,
)
from mediaindex.domain.rules import validate_content_type, validate_index_name
from mediaindex.domain.search import MAX_ID_LEN, SearchRequest, SearchResponse
from mediaindex.services.asset_outputs import DerivativeView
from mediaindex.services.assets import UploadPlan

# The search request and response are the search service's own values, served as they are.
__all__ = ["SearchRequest", "SearchResponse"]


class Strict(BaseModel):
    """A request body: unknown fields refused, and JSON types taken as they are (strict mode: no
    `"10"` for 10, no `1` for true; docs/api.md)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _domain_check(check: Callable[[str], str], value: str | None) -> str | None:
    """Runs a domain rule inside validation; its code becomes the error's (api/errors.CUSTOM_CODES)."""
    if value is None:
        return None
    try:
        return check(value)
    except DomainValidationError as e:
        raise PydanticCustomError(e.code, "{reason}", {"reason": e.message}) from None


class OneOf(BaseModel):
    """A response whose optional alternatives are left out rather than sent as null
    (an upload is either a PUT or a multipart; a created asset has an upload or a task)."""

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


# ---- errors ------------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# ---- indexes -----------------------------------------------------------------------------------
class IndexCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    default_features: list[str] | None = None
    is_sample: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str | None:
        return _domain_check(validate_index_name, value)


class IndexPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    default_features: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _domain_check(validate_index_name, value)


class IndexOut(BaseModel):
    id: str
    name: str
    description: str | None
    default_features: list[Feature]
    is_sample: bool
    asset_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, i: Index) -> IndexOut:
        return cls.model_validate(i, from_attributes=True)


class IndexList(BaseModel):
    data: list[IndexOut]
    next_cursor: str | None


# ---- assets ------------------------------------------------------------------------------------
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
        return _domain_check(validate_content_type, value)


class AssetPatch(Strict):
    name: str | None = None
    user_metadata: dict[str, Any] | None = None


class FeatureStateOut(BaseModel):
    state: str
    reason: str | None = None
    error: str | None = None
    updated_at: datetime

    @classmethod
    def of(cls, fs: FeatureState) -> FeatureStateOut:
        return cls(state=fs.state.value, reason=fs.reason, error=fs.error, updated_at=fs.updated_at)


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


class PartNumbers(Strict):
    part_numbers: list[int] = Field(min_length=1, max_length=10_000)


class CompletedPart(Strict):
    part_number: int = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=200)


class CompleteUpload(Strict):
    parts: list[CompletedPart] = Field(min_length=1, max_length=10_000)


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


# ---- tasks -------------------------------------------------------------------------------------
class TaskCreate(Strict):
    asset_id: str = Field(max_length=MAX_ID_LEN)
    feature_types: list[str] = Field(min_length=1)


class TaskOut(BaseModel):
    id: str
    asset_id: str
    index_id: str
    kind: TaskKind
    features: dict[str, FeatureStateOut]
    state: TaskState
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, t: Task) -> TaskOut:
        return cls(
            id=t.id,
            asset_id=t.asset_id,
            index_id=t.index_id,
            kind=t.kind,
            features={f.value: FeatureStateOut.of(fs) for f, fs in t.features.items()},
            state=t.state,
            created_at=t.created_at,
            updated_at=t.updated_at,
        )


class TaskList(BaseModel):
    data: list[TaskOut]
    next_cursor: str | None


AssetCreated.model_rebuild()


# ---- other -------------------------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok"]
    version: str
    runtime: str


class Usage(BaseModel):
    asset_count: int
    assets_by_media_type: dict[str, int]
    bytes_by_media_type: dict[str, int]
    original_bytes: int
    derivative_bytes: int
    feature_runs: dict[str, int]
