"""The wire format of /v1/indexes: the create and patch bodies (the name checked by the domain
rule) and the index as served, one or a page of them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from mediaindex.api.schemas.base import NEXT_CURSOR, Strict, domain_check
from mediaindex.domain.models import Feature, Index, ReindexState
from mediaindex.domain.rules import validate_index_name

NAME = "The index's name, unique in the tenant (compared caselessly)."
DESCRIPTION = "What the index holds, for people."
DEFAULT_FEATURES = (
    "The features every asset added to the index gets (`proxy`, `preview`, `transcription`, "
    "`embedding`; `visual` is an alias of `embedding`)."
)
FEATURES_EXAMPLE = ["proxy", "preview", "transcription", "embedding"]


class IndexCreate(Strict):
    name: str = Field(min_length=1, max_length=200, description=NAME, examples=["My Project"])
    description: str | None = Field(None, max_length=2000, description=DESCRIPTION, examples=["Demo index"])
    default_features: list[str] | None = Field(
        None, description=DEFAULT_FEATURES + " Default: all four.", examples=[FEATURES_EXAMPLE]
    )
    is_sample: bool = Field(False, description="Marks an index of sample media.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str | None:
        return domain_check(validate_index_name, value)


class IndexPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=200, description=NAME + " Absent: unchanged.")
    description: str | None = Field(
        None, max_length=2000, description=DESCRIPTION + " Absent: unchanged; null clears it."
    )
    default_features: list[str] | None = Field(
        None, description=DEFAULT_FEATURES + " Absent: unchanged.", examples=[["transcription", "embedding"]]
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return domain_check(validate_index_name, value)


class ModelsIn(Strict):
    transcription: str | None = Field(
        None,
        description="The Whisper model to transcribe with (GET /v1/capabilities lists them). "
        "Absent: the deployment's default.",
        examples=["base"],
    )


class ReindexCreate(Strict):
    models: ModelsIn = Field(
        default_factory=ModelsIn,
        description="The models of the new generation. Empty: rebuild with the deployment's current "
        "models (after it changed its text or CLIP model).",
    )


class ModelsOut(BaseModel):
    transcription: str = Field(description="The Whisper model the transcripts come from.", examples=["base"])


class ReindexError(BaseModel):
    code: str = Field(description="Why, as a code.", examples=["reindex_failed"])
    message: str = Field(description="Why, for a person.")


class ReindexOut(BaseModel):
    id: str = Field(description="The re-index's id (the subject of its `index.reindexed` event).")
    state: ReindexState = Field(
        description="`running` until the swap and the last stragglers are done; `completed`; "
        "`cancelled` or `failed` (the index answers from its old generation, unchanged)."
    )
    generation: int = Field(description="The generation being built (the index's next).")
    models: ModelsOut = Field(description="The models the new generation is built with.")
    assets_total: int = Field(description="Assets to rebuild, as counted so far.")
    assets_done: int = Field(description="Assets rebuilt.")
    assets_failed: int = Field(description="Assets whose rebuild failed (any fails the re-index).")
    swapped: bool = Field(description="Whether search already answers from the new generation.")
    error: ReindexError | None = Field(description="Why it was cancelled or failed.")
    started_at: datetime = Field(description="When it was asked for (UTC).")
    finished_at: datetime | None = Field(description="When it ended (UTC); null while running.")


class IndexOut(BaseModel):
    id: str = Field(description="The index's id.", examples=["idx_01j9zq4m3v8c2k7r5t6w0y1x2a"])
    name: str = Field(description=NAME, examples=["My Project"])
    description: str | None = Field(description=DESCRIPTION)
    default_features: list[Feature] = Field(description=DEFAULT_FEATURES, examples=[FEATURES_EXAMPLE])
    is_sample: bool = Field(description="Whether this is an index of sample media.")
    asset_count: int = Field(description="How many assets the index holds.")
    generation: int = Field(
        description="The generation search answers from: 1 at creation, the next after each re-index."
    )
    models: ModelsOut = Field(description="The models of the searchable generation.")
    reindex: ReindexOut | None = Field(
        description="The latest re-index (POST /v1/indexes/{id}/reindex), running or ended; null if none."
    )
    created_at: datetime = Field(description="When the index was created (UTC).")
    updated_at: datetime = Field(description="When the index last changed (UTC).")

    @classmethod
    def of(cls, i: Index, *, default_transcription: str) -> IndexOut:
        """`default_transcription`: the deployment's Whisper model, for an index that names none."""
        r = i.reindex
        return cls(
            id=i.id,
            name=i.name,
            description=i.description,
            default_features=i.default_features,
            is_sample=i.is_sample,
            asset_count=i.asset_count,
            generation=i.generation,
            models=ModelsOut(transcription=i.models.transcription or default_transcription),
            reindex=None
            if r is None
            else ReindexOut(
                id=r.id,
                state=r.state,
                generation=r.generation,
                models=ModelsOut(transcription=r.models.transcription or default_transcription),
                assets_total=max(r.total, r.done + r.failed + len(r.in_flight)),
                assets_done=r.done,
                assets_failed=r.failed,
                swapped=r.swapped,
                error=ReindexError(code=r.error.code, message=r.error.message) if r.error else None,
                started_at=r.started_at,
                finished_at=r.finished_at,
            ),
            created_at=i.created_at,
            updated_at=i.updated_at,
        )


class IndexList(BaseModel):
    data: list[IndexOut] = Field(description="A page of indexes.")
    next_cursor: str | None = Field(description=NEXT_CURSOR)
