"""Search queries and results (POST /v1/search): the values the search service takes and returns,
served as they are by the API (which documents them in the OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from mediaindex.domain.models import MediaType

Modality = Literal["visual", "transcription"]
VISUAL = "visual"
TRANSCRIPTION = "transcription"


# A filter is one condition per user_metadata pair: the embedded index builds one SQL expression
# of them (SQLite stops at an expression depth of 1000), OpenSearch one term clause each.
MAX_FILTER_KEYS = 32
MAX_FILTER_KEY_LEN = 256
MAX_CURSOR_LEN = 2048
MAX_ID_LEN = 64  # ids are a type prefix and 26 characters


def _both() -> list[Modality]:
    return ["visual", "transcription"]


class SearchRequestFilter(BaseModel):
    # Strict: JSON types are taken as they are (no "10" for 10, no 1 for true); enums by value.
    model_config = ConfigDict(extra="forbid", strict=True)

    media_type: MediaType | None = Field(None, strict=False)
    user_metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("user_metadata")
    @classmethod
    def _bounded_scalars(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_FILTER_KEYS:
            raise PydanticCustomError(
                "search_filter_too_large",
                "filter.user_metadata has {count} keys; at most {limit} are allowed",
                {"count": len(value), "limit": MAX_FILTER_KEYS},
            )
        for key, item in value.items():
            if len(key) > MAX_FILTER_KEY_LEN:
                raise PydanticCustomError(
                    "search_filter_too_large",
                    "a filter.user_metadata key is longer than {limit} characters",
                    {"limit": MAX_FILTER_KEY_LEN},
                )
            if item is not None and not isinstance(item, str | int | float | bool):
                raise PydanticCustomError(
                    "parameter_invalid", "filter.user_metadata values are strings, numbers, booleans or null"
                )
        return value


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    index_id: str = Field(max_length=MAX_ID_LEN)
    query_text: str | None = None
    query_asset_id: str | None = Field(None, max_length=MAX_ID_LEN)
    query_start: float | None = Field(None, ge=0)
    query_image_url: str | None = Field(None, max_length=4096)
    search_options: list[Modality] = Field(default_factory=lambda: _both(), min_length=1)
    operator: Literal["or", "and"] = "or"
    threshold: float | None = Field(None, ge=0, le=1)
    group_by: Literal["segment", "asset"] = "segment"
    filter: SearchRequestFilter | None = None
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=MAX_CURSOR_LEN)


class ModalityScores(BaseModel):
    visual: float | None = None
    transcription: float | None = None


class SearchResultSegment(BaseModel):
    segment_id: str
    start: float
    end: float
    score: float
    scores: ModalityScores
    text: str | None = None
    thumbnail_url: str | None = None


class SearchResult(SearchResultSegment):
    asset_id: str
    # group_by=asset only: the asset's best segments, best first (the first is the hit itself).
    segments: list[SearchResultSegment] | None = None


class SearchResponse(BaseModel):
    data: list[SearchResult]
    next_cursor: str | None = None
