"""Pure state transitions shared by every executor: feature states move on the task and the asset
together, and both derived states (task state, asset status) are recomputed in the same write."""

from __future__ import annotations

from mediaindex.domain.models import (
    ACTIVE_STATES,
    Asset,
    AssetStatus,
    ErrorInfo,
    Feature,
    FeaturePart,
    FeatureState,
    FeatureStatus,
    Task,
    TaskKind,
    TaskState,
    utcnow,
)
from mediaindex.domain.rules import derive_asset_status, derive_task_state


def _recompute(task: Task, asset: Asset) -> tuple[Task, Asset]:
    now = utcnow()
    task.state = derive_task_state(task)
    task.updated_at = now
    if asset.status != AssetStatus.AWAITING_UPLOAD:
        asset.status = derive_asset_status(asset)
    asset.updated_at = now
    return task, asset


def set_feature(
    task: Task,
    asset: Asset,
    feature: Feature,
    state: FeatureStatus,
    *,
    reason: str | None = None,
    error: str | None = None,
    parts: dict[str, FeaturePart] | None = None,
) -> tuple[Task, Asset]:
    """Moves one feature of the task. A feature that the task has already settled (or cancelled)
    stays settled: late or duplicate reports cannot move it back."""
    current = task.features.get(feature)
    if current is None or current.state not in ACTIVE_STATES:
        return task, asset
    fs = FeatureState(state=state, reason=reason, error=error, parts=parts, updated_at=utcnow())
    task.features = {**task.features, feature: fs}
    # The asset shows the latest task's view of each feature; a re-index task builds an index
    # generation that is not searchable yet, so the asset's features stay what they were.
    if task.kind != TaskKind.REINDEX:
        asset.features = {**asset.features, feature: fs}
    return _recompute(task, asset)


def fail_all(task: Task, asset: Asset, error: ErrorInfo, *, asset_error: bool) -> tuple[Task, Asset]:
    """A shared step (fetch, probe) failed: every still-active feature fails with its code."""
    for feature, fs in list(task.features.items()):
        if fs.state in ACTIVE_STATES:
            task, asset = set_feature(task, asset, feature, FeatureStatus.FAILED, error=error.code)
    if asset_error and task.kind != TaskKind.REINDEX:  # a rebuild's failure is the re-index's
        asset.error = error
    task.error = error
    return _recompute(task, asset)


def cancel(task: Task, asset: Asset) -> tuple[Task, Asset]:
    for feature, fs in list(task.features.items()):
        if fs.state in ACTIVE_STATES:
            task, asset = set_feature(
                task, asset, feature, FeatureStatus.CANCELLED, reason="cancelled by request"
            )
    task.state = TaskState.CANCELLED
    return _recompute(task, asset)


def queue_features(task: Task, asset: Asset) -> tuple[Task, Asset]:
    """Copies a new task's queued features onto the asset and leaves `awaiting_upload`."""
    asset.features = {**asset.features, **task.features}
    asset.error = None
    asset.status = AssetStatus.PROCESSING
    return _recompute(task, asset)
