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


def search_key(index_id: str, generation: int) -> str:
    """The key one generation of an index is written and queried under in the search backend: the
    index id itself for the first (what releases before generations wrote), `<id>-g<n>` after, so
    a re-index builds beside the live generation and dropping the old one is dropping its key."""
    return index_id if generation <= 1 else f"{index_id}-g{generation}"


def _both() -> list[Modality]:
    return ["visual", "transcription"]


# The default `threshold`: a hit scoring below it is a near miss, not an answer (see search_fusion).
DEFAULT_THRESHOLD = 0.5


class SearchRequestFilter(BaseModel):
    """Narrows the search inside the query itself (never after it)."""

    # Strict: JSON types are taken as they are (no "10" for 10, no 1 for true); enums by value.
    model_config = ConfigDict(extra="forbid", strict=True)

    media_type: MediaType | None = Field(
        None, strict=False, description="Only assets of this media type.", examples=["video"]
    )
    user_metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Only assets whose user_metadata has each of these key/value pairs "
            f"(at most {MAX_FILTER_KEYS} keys; values are strings, numbers, booleans or null, "
            "compared with their JSON type)."
        ),
        examples=[{"team": "news", "season": 3}],
    )

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
    """One search in one index: exactly one of query_text, query_asset_id or query_image_url."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"index_id": "idx_01j9z3k7r8m2q4w6e8t0y2u4i6", "query_text": "ferry leaves the harbour"}
            ]
        },
    )

    index_id: str = Field(max_length=MAX_ID_LEN, description="The index to search.")
    query_text: str | None = Field(
        None,
        description=(
            "Words to find: said in the transcript (by meaning and by word) and, with a CLIP model, shown."
        ),
        examples=["the ferry leaves at seven"],
    )
    query_asset_id: str | None = Field(
        None,
        max_length=MAX_ID_LEN,
        description=(
            "More like this: find segments like this asset's segment at query_start (else its first)."
        ),
    )
    query_start: float | None = Field(
        None, ge=0, description="Seconds into query_asset_id whose segment is the example."
    )
    query_image_url: str | None = Field(
        None,
        max_length=4096,
        description=(
            "An image (http or https) to find by looks; needs a CLIP model. Fetched through the SSRF guard."
        ),
    )
    search_options: list[Modality] = Field(
        default_factory=lambda: _both(),
        min_length=1,
        description="Modalities to search: visual (CLIP, shots) and/or transcription (speech, by sentence).",
    )
    operator: Literal["or", "and"] = Field(
        "or", description="`and` keeps only segments found by every searched modality."
    )
    threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            f"Drop hits scoring below this confidence (0..1). Omitted: {DEFAULT_THRESHOLD}, the line "
            "between an answer and a near miss, so a search about nothing returns no hits. "
            "0 returns every candidate."
        ),
        examples=[0.5],
    )
    group_by: Literal["segment", "asset"] = Field(
        "segment", description="`asset`: one hit per asset, its best segments inside (at most 10)."
    )
    filter: SearchRequestFilter | None = Field(None, description="Narrow the search to some assets.")
    limit: int = Field(20, ge=1, le=100, description="Hits per page.")
    cursor: str | None = Field(
        None, max_length=MAX_CURSOR_LEN, description="next_cursor of the previous page of this same search."
    )


class ModalityScores(BaseModel):
    """Each searched modality's own confidence for the hit (null: that modality did not find it)."""

    visual: float | None = Field(None, description="Confidence from the keyframe's CLIP vector, 0..1.")
    transcription: float | None = Field(
        None, description="Confidence from the spoken sentence (meaning and words), 0..1."
    )


class SearchResultSegment(BaseModel):
    segment_id: str = Field(description="The segment (a shot, a spoken sentence or an image) that matched.")
    start: float = Field(description="Seconds from the start of the asset where the match begins.")
    end: float = Field(description="Seconds where it ends (a spoken sentence's last word).")
    score: float = Field(
        description=(
            "Confidence in 0..1 that this answers the query: 1 - product of (1 - scores[m]) over the "
            "modalities that found it. 0.5 is the line between an answer and a near miss."
        )
    )
    scores: ModalityScores = Field(description="Each searched modality's own confidence for the hit.")
    text: str | None = Field(None, description="The words spoken in the segment, when it is speech.")
    thumbnail_url: str | None = Field(
        None, description="A signed URL of a picture of the moment (the keyframe of its shot)."
    )


class SearchResult(SearchResultSegment):
    asset_id: str = Field(description="The asset the segment belongs to.")
    generation: int = Field(
        1, description="The index generation that answered (one more after each re-index): see `models`."
    )
    segments: list[SearchResultSegment] | None = Field(
        None, description="group_by=asset only: the asset's best segments, best first (the first is the hit)."
    )


class SearchResponse(BaseModel):
    data: list[SearchResult] = Field(
        description="Hits, best first; overlapping hits of one asset are merged."
    )
    next_cursor: str | None = Field(
        None, description="Pass as cursor for the next page; null on the last page."
    )
    generation: int = Field(1, description="The index generation that answered.")
    models: dict[str, str] = Field(
        default_factory=dict,
        description="The models behind the hits: `transcription` (the Whisper model of the transcripts), "
        "`text` (the sentence encoder) and `visual` (CLIP), those that served this query.",
        examples=[{"transcription": "base", "text": "sentence-transformers/all-MiniLM-L6-v2"}],
    )
