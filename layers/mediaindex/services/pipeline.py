"""Runs one pipeline step for a task and records what it produced. Shared by both executors:
the local worker pool calls it in-process; the Batch container entrypoint calls it on AWS.

A step function only writes blobs and returns a StepResult; this runner is the one place that
turns results into rows (derivatives, segments, search docs, feature states), so re-running a
step replaces its outputs rather than adding to them."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mediaindex.domain.models import (
    ACTIVE_STATES,
    Asset,
    ErrorInfo,
    Feature,
    FeatureStatus,
    Task,
    TaskKind,
    TaskState,
)
from mediaindex.errors import MediaError
from mediaindex.pipeline.context import StepContext, StepResult
from mediaindex.pipeline.spec import STEP_BY_NAME, StepSpec
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.metadata import MetadataStore, TaskAssetFn
from mediaindex.ports.search import SearchIndex
from mediaindex.services import progress
from mediaindex.settings import Settings

if TYPE_CHECKING:
    from mediaindex.ml.registry import ModelRegistry

log = logging.getLogger(__name__)
StepFn = Callable[[StepContext], StepResult]
_ASSET_FIELDS = set(Asset.model_fields)


class PipelineRunner:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        search: SearchIndex,
        models: ModelRegistry,
        settings: Settings,
        step_loader: Callable[[str], StepFn],
    ) -> None:
        self._metadata = metadata
        self._blobs = blobs
        self._search = search
        self.models = models
        self._settings = settings
        self._load = step_loader

    def run_step(self, task_id: str, step_name: str) -> bool:
        """Runs the step unless there is nothing left for it to do. Returns whether it ran.
        Raises MediaError for bad media (never worth retrying) and anything else for a retry."""
        spec = STEP_BY_NAME[step_name]
        task = self._metadata.get_task(task_id)
        asset = self._metadata.get_asset(task.asset_id) if task else None
        if task is None or asset is None or task.state == TaskState.CANCELLED:
            return False
        served = self._active_features(task, spec)
        if spec.features and not served:
            return False
        if step_name == "fetch" and asset.source_url is None:
            return False
        for f in served:
            self._metadata.mutate_task_and_asset(task_id, _setter(f, FeatureStatus.PROCESSING))
        workdir = Path(tempfile.mkdtemp(prefix=f"mi-{step_name}-"))
        try:
            ctx = StepContext(
                asset=self._source_view(asset),
                blobs=self._blobs,
                workdir=workdir,
                settings=self._settings,
                models=self.models,
            )
            result = self._load(step_name)(ctx)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        self._record(task_id, spec, result)
        return True

    def fail_step(self, task_id: str, step_name: str, error: ErrorInfo) -> None:
        """The step failed for good: its features fail; a shared step (fetch, probe) fails them all."""
        spec = STEP_BY_NAME[step_name]
        if self._metadata.get_task(task_id) is None:
            return
        if not spec.features:
            media_error = step_name == "probe" or error.code.startswith(("asset_", "media_", "unsupported"))
            self._metadata.mutate_task_and_asset(
                task_id, lambda t, a: progress.fail_all(t, a, error, asset_error=media_error)
            )
            return
        for f in spec.features:
            self._metadata.mutate_task_and_asset(task_id, _setter(f, FeatureStatus.FAILED, error=error.code))

    def finish_task(self, task_id: str) -> None:
        """Every step has ended. Drops the original of an ingest that was asked not to keep it
        (re-runs read the proxy instead), and settles any feature left active by a crash."""
        task = self._metadata.get_task(task_id)
        asset = self._metadata.get_asset(task.asset_id) if task else None
        if task is None or asset is None:
            return
        if any(fs.state in ACTIVE_STATES for fs in task.features.values()):
            err = ErrorInfo(code="step_failed", message="the pipeline ended before this feature finished")
            self._metadata.mutate_task_and_asset(
                task_id, lambda t, a: progress.fail_all(t, a, err, asset_error=False)
            )
        if (
            task.kind == TaskKind.INGEST
            and not asset.save_original
            and asset.upload
            and self._proxy_key(asset.id)
        ):
            self._blobs.delete(asset.upload.key)

    # ---- internals -----------------------------------------------------------------------------
    @staticmethod
    def _active_features(task: Task, spec: StepSpec) -> list[Feature]:
        return [f for f in spec.features if f in task.features and task.features[f].state in ACTIVE_STATES]

    def _proxy_key(self, asset_id: str) -> str | None:
        return next((d.key for d in self._metadata.list_derivatives(asset_id) if d.kind == "proxy"), None)

    def _source_view(self, asset: Asset) -> Asset:
        """The asset as steps see it: when the original is gone (save_original=false), the proxy
        stands in for it."""
        if asset.upload is None or asset.save_original or self._blobs.head(asset.upload.key) is not None:
            return asset
        proxy = self._proxy_key(asset.id)
        if proxy is None:
            return asset
        view = asset.model_copy(deep=True)
        assert view.upload is not None
        view.upload.key = proxy
        return view

    def _record(self, task_id: str, spec: StepSpec, result: StepResult) -> None:
        task = self._metadata.get_task(task_id)
        if task is None or task.state == TaskState.CANCELLED:
            return  # cancelled or deleted while running: keep nothing of it
        asset_id = task.asset_id
        if result.derivatives or result.replaced_kinds:
            kinds = sorted(set(result.replaced_kinds) | {d.kind for d in result.derivatives})
            self._metadata.replace_derivatives(asset_id, kinds, result.derivatives)
        if result.segments is not None:
            self._metadata.replace_segments(asset_id, result.segments)
        if result.search_docs is not None:
            self._search.delete_asset(task.tenant_id, asset_id)
            if result.search_docs:
                self._search.upsert(result.search_docs)
        updates = {k: v for k, v in result.asset_updates.items() if k in _ASSET_FIELDS}

        def settle(t: Task, a: Asset) -> tuple[Task, Asset]:
            for k, v in updates.items():
                setattr(a, k, v)
            for f, fs in result.feature_states.items():
                if f in t.features:
                    t, a = progress.set_feature(t, a, f, fs.state, reason=fs.reason, error=fs.error)
            for f in spec.features:
                t, a = progress.set_feature(t, a, f, FeatureStatus.COMPLETED)
            return t, a

        self._metadata.mutate_task_and_asset(task_id, settle)


def _setter(feature: Feature, state: FeatureStatus, *, error: str | None = None) -> TaskAssetFn:
    def apply(t: Task, a: Asset) -> tuple[Task, Asset]:
        return progress.set_feature(t, a, feature, state, error=error)

    return apply


_PATHS = re.compile(r"(/[\w.+-]+)+/?")
_POINTERS = re.compile(r"\s*@\s*0x[0-9a-f]+", re.IGNORECASE)


def public_message(message: str) -> str:
    """Error text for clients: no server paths or memory addresses from tool output."""
    return _PATHS.sub("<file>", _POINTERS.sub("", message))[:500]


def error_info(exc: BaseException) -> ErrorInfo:
    if isinstance(exc, MediaError):
        return ErrorInfo(code=exc.code, message=public_message(exc.message))
    return ErrorInfo(
        code="step_failed", message=f"the step failed ({type(exc).__name__}); it is logged on the server"
    )
