"""Search queries and results (POST /v1/search): the values the search service takes and returns,
served as they are by the API (which documents them in the OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mediaindex.domain.models import MediaType

Modality = Literal["visual", "transcription"]
VISUAL = "visual"
TRANSCRIPTION = "transcription"


def _both() -> list[Modality]:
    return ["visual", "transcription"]


class SearchRequestFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    media_type: MediaType | None = None
    user_metadata: dict[str, Any] = Field(default_factory=dict)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index_id: str
    query_text: str | None = None
    query_asset_id: str | None = None
    query_start: float | None = Field(None, ge=0)
    query_image_url: str | None = None
    search_options: list[Modality] = Field(default_factory=lambda: _both(), min_length=1)
    operator: Literal["or", "and"] = "or"
    threshold: float | None = Field(None, ge=0, le=1)
    group_by: Literal["segment", "asset"] = "segment"
    filter: SearchRequestFilter | None = None
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = None


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
