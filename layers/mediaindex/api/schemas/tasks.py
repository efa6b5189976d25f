"""The wire format of /v1/tasks: the create body, the task as served (one or a page), and the
state of one feature (`FeatureStateOut`), which an asset serves too."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mediaindex.api.schemas.base import NEXT_CURSOR, Strict
from mediaindex.domain.models import FeatureState, Task, TaskKind, TaskState
from mediaindex.domain.search import MAX_ID_LEN


class TaskCreate(Strict):
    asset_id: str = Field(max_length=MAX_ID_LEN, description="The asset to run the features on.")
    feature_types: list[str] = Field(
        min_length=1,
        description="The features to run again: `transcription` and `embedding` (`proxy` and `preview` "
        "run at ingest only).",
        examples=[["embedding", "transcription"]],
    )


class FeaturePartOut(BaseModel):
    state: str = Field(description="`completed` or `na` for this part.", examples=["na"])
    reason: str | None = Field(
        None, description="Why this part is `na`.", examples=["no CLIP model configured"]
    )


class FeatureStateOut(BaseModel):
    state: str = Field(
        description="`queued`, `processing`, `completed`, `failed`, `cancelled` or `na` (not applicable).",
        examples=["completed"],
    )
    reason: str | None = Field(
        None,
        description="Why the feature is `na`, or which of its parts is (an embedding without visual).",
        examples=["visual: no CLIP model configured"],
    )
    error: str | None = Field(None, description="Why the feature `failed`.")
    updated_at: datetime = Field(description="When the state last changed (UTC).")
    parts: dict[str, FeaturePartOut] | None = Field(
        None,
        description=(
            "For a feature with several modalities (`embedding`): each part's own state, so a video indexed "
            "without a CLIP model says `visual: na` instead of claiming a visual index."
        ),
        examples=[
            {
                "visual": {"state": "na", "reason": "no CLIP model configured"},
                "transcription": {"state": "completed"},
            }
        ],
    )

    @classmethod
    def of(cls, fs: FeatureState) -> FeatureStateOut:
        parts = (
            {m: FeaturePartOut(state=p.state.value, reason=p.reason) for m, p in fs.parts.items()}
            if fs.parts
            else None
        )
        return cls(
            state=fs.state.value, reason=fs.reason, error=fs.error, updated_at=fs.updated_at, parts=parts
        )


class TaskOut(BaseModel):
    id: str = Field(description="The task's id.", examples=["tsk_01j9zq4m3v8c2k7r5t6w0y1x2a"])
    asset_id: str = Field(description="The asset it runs on.")
    index_id: str = Field(description="The asset's index.")
    kind: TaskKind = Field(
        description="`ingest` (after an upload), `rerun` (POST /v1/tasks) or `reindex` (one asset's "
        "part of POST /v1/indexes/{id}/reindex)."
    )
    features: dict[str, FeatureStateOut] = Field(description="The state of each feature the task runs.")
    state: TaskState = Field(description="The task's state, from its features'.")
    created_at: datetime = Field(description="When the task was created (UTC).")
    updated_at: datetime = Field(description="When the task last changed (UTC).")

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
    data: list[TaskOut] = Field(description="A page of tasks.")
    next_cursor: str | None = Field(description=NEXT_CURSOR)
