"""The wire format of /v1/indexes: the create and patch bodies (the name checked by the domain
rule) and the index as served, one or a page of them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from mediaindex.api.schemas.base import NEXT_CURSOR, Strict, domain_check
from mediaindex.domain.models import Feature, Index
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


class IndexOut(BaseModel):
    id: str = Field(description="The index's id.", examples=["idx_01j9zq4m3v8c2k7r5t6w0y1x2a"])
    name: str = Field(description=NAME, examples=["My Project"])
    description: str | None = Field(description=DESCRIPTION)
    default_features: list[Feature] = Field(description=DEFAULT_FEATURES, examples=[FEATURES_EXAMPLE])
    is_sample: bool = Field(description="Whether this is an index of sample media.")
    asset_count: int = Field(description="How many assets the index holds.")
    created_at: datetime = Field(description="When the index was created (UTC).")
    updated_at: datetime = Field(description="When the index last changed (UTC).")

    @classmethod
    def of(cls, i: Index) -> IndexOut:
        return cls.model_validate(i, from_attributes=True)


class IndexList(BaseModel):
    data: list[IndexOut] = Field(description="A page of indexes.")
    next_cursor: str | None = Field(description=NEXT_CURSOR)
