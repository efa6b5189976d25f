"""The wire format of /v1/assets: the create and patch bodies, the asset as served (entities are
converted here so internal fields, upload keys, versions and facts, never leak), what a create
answers (the asset with its upload or its task), and the batch get and delete bodies and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

from mediaindex.api.schemas.base import NEXT_CURSOR, OneOf, Strict, domain_check
from mediaindex.api.schemas.tasks import FeatureStateOut, TaskOut
from mediaindex.api.schemas.uploads import UploadOut
from mediaindex.domain.models import Asset, AssetStatus, ErrorInfo, MediaType
from mediaindex.domain.rules import validate_content_type
from mediaindex.domain.search import MAX_ID_LEN

NAME = "A file name with an extension (which decides the media type), at most 255 characters."
USER_METADATA = "Your own JSON object (at most 8 KiB), returned as given and usable as a search filter."
METADATA_EXAMPLE = {"project": "launch", "take": 3}


class AssetCreate(Strict):
    index_id: str = Field(max_length=MAX_ID_LEN, description="The index to add the asset to.")
    name: str = Field(description=NAME, examples=["clip.mp4"])
    features: list[str] | None = Field(
        None,
        description="Features to run besides the index's default features.",
        examples=[["embedding", "transcription"]],
    )
    save_original: bool = Field(True, description="Keep the original file, for GET /v1/assets/{id}/download.")
    user_metadata: dict[str, Any] | None = Field(None, description=USER_METADATA, examples=[METADATA_EXAMPLE])
    size_bytes: int | None = Field(
        None,
        description="The file's size: signed into the upload URL, and over 64 MiB the upload is multipart.",
        examples=[1048576],
    )
    content_type: str | None = Field(
        None,
        max_length=255,
        description="The file's media type; default: the extension's.",
        examples=["video/mp4"],
    )
    asset_url: str | None = Field(
        None,
        max_length=4096,
        description="A public http(s) URL for the server to fetch the file from, instead of an upload.",
        examples=["https://example.com/remote.mp4"],
    )

    @field_validator("content_type")
    @classmethod
    def _content_type(cls, value: str | None) -> str | None:
        return domain_check(validate_content_type, value)


class AssetPatch(Strict):
    name: str | None = Field(None, description=NAME + " Absent: unchanged; null is refused.")
    user_metadata: dict[str, Any] | None = Field(
        None, description=USER_METADATA + " Replaces the old one; absent: unchanged."
    )


class ErrorOut(BaseModel):
    code: str = Field(description="Why the asset failed, as a code.", examples=["media_corrupt"])
    message: str = Field(description="Why the asset failed, for a person.")

    @classmethod
    def of(cls, e: ErrorInfo | None) -> ErrorOut | None:
        return cls(code=e.code, message=e.message) if e else None


class AssetOut(BaseModel):
    id: str = Field(description="The asset's id.", examples=["ast_01j9zq4m3v8c2k7r5t6w0y1x2a"])
    index_id: str = Field(description="The index it belongs to.")
    name: str = Field(description=NAME, examples=["clip.mp4"])
    media_type: MediaType | None = Field(
        description="`video`, `audio` or `image`, from the name's extension."
    )
    content_type: str | None = Field(description="The file's media type.", examples=["video/mp4"])
    size_bytes: int | None = Field(description="The file's size, once known.")
    sha256: str | None = Field(description="The file's SHA-256 (hex), once it has been read.")
    duration_s: float | None = Field(description="Seconds of video or audio, once probed.")
    width: int | None = Field(description="Pixels, for video and images, once probed.")
    height: int | None = Field(description="Pixels, for video and images, once probed.")
    status: AssetStatus = Field(
        description="`awaiting_upload`, `processing`, `ready` (nothing queued or processing, one feature "
        "completed) or `failed`."
    )
    error: ErrorOut | None = Field(description="Why the asset failed; null unless `failed`.")
    features: dict[str, FeatureStateOut] = Field(description="The state of each feature, by name.")
    save_original: bool = Field(description="Whether the original file is kept.")
    user_metadata: dict[str, Any] = Field(description=USER_METADATA, examples=[METADATA_EXAMPLE])
    created_at: datetime = Field(description="When the asset was created (UTC).")
    updated_at: datetime = Field(description="When the asset last changed (UTC).")

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
    data: list[AssetOut] = Field(description="A page of assets.")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class AssetCreated(OneOf):
    asset: AssetOut = Field(description="The new asset.")
    upload: UploadOut | None = Field(
        None, description="Where to send the file (JSON create without `asset_url`); absent otherwise."
    )
    task: TaskOut | None = Field(
        None, description="The ingest task (a form upload or `asset_url`); absent otherwise."
    )


class IdList(Strict):
    ids: list[Annotated[str, Field(max_length=MAX_ID_LEN)]] = Field(
        min_length=1,
        max_length=100,
        description="1 to 100 asset ids.",
        examples=[["ast_01j9zq4m3v8c2k7r5t6w0y1x2a"]],
    )


class BatchGetOut(BaseModel):
    data: list[AssetOut] = Field(description="The assets found, in the order asked.")
    not_found_ids: list[str] = Field(description="The ids that name no asset of this tenant.")


class BatchDeleteOut(BaseModel):
    requested_count: int = Field(description="How many ids were sent.")
    deleted_count: int = Field(description="How many assets were deleted.")
    not_found_ids: list[str] = Field(description="The ids that name no asset of this tenant.")
