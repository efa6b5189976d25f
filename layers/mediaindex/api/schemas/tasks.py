"""The wire format of /v1/tasks: the create body, the task as served (one or a page), and the
state of one feature (`FeatureStateOut`), which an asset serves too."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mediaindex.api.schemas.base import Strict
from mediaindex.domain.models import FeatureState, Task, TaskKind, TaskState
from mediaindex.domain.search import MAX_ID_LEN


class TaskCreate(Strict):
    asset_id: str = Field(max_length=MAX_ID_LEN)
    feature_types: list[str] = Field(min_length=1)


class FeatureStateOut(BaseModel):
    state: str
    reason: str | None = None
    error: str | None = None
    updated_at: datetime

    @classmethod
    def of(cls, fs: FeatureState) -> FeatureStateOut:
        return cls(state=fs.state.value, reason=fs.reason, error=fs.error, updated_at=fs.updated_at)


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
