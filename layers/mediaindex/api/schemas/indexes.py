"""The wire format of /v1/indexes: the create and patch bodies (the name checked by the domain
rule) and the index as served, one or a page of them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from mediaindex.api.schemas.base import Strict, domain_check
from mediaindex.domain.models import Feature, Index
from mediaindex.domain.rules import validate_index_name


class IndexCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    default_features: list[str] | None = None
    is_sample: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str | None:
        return domain_check(validate_index_name, value)


class IndexPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    default_features: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return domain_check(validate_index_name, value)


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
