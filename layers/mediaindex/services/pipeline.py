"""Runs one pipeline step for a task and records what it produced. Shared by both executors:
the local worker pool calls it in-process; the Batch container entrypoint calls it on AWS.

A step function only writes blobs and returns a StepResult; this runner is the one place that
turns results into rows (derivatives, segments, search docs, feature states), so re-running a
step replaces its outputs rather than adding to them.

A step can outlive its asset: deleted while the step ran, the asset's purge has already removed
its files and rows when the step writes its own. So the runner keeps nothing of a step whose task
was cancelled or whose asset is gone, and when the asset is gone it removes what the step left
(everything under the asset's prefixes, search documents, rows) itself. It looks again after
recording, so a purge that lands while the rows are written is caught too."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mediaindex.domain.blob_keys import asset_prefixes
from mediaindex.domain.errors import NotFoundError
from mediaindex.domain.failures import is_media_error_code
from mediaindex.domain.models import (
    ACTIVE_STATES,
    Asset,
    ErrorInfo,
    Feature,
    FeatureStatus,
    IndexModels,
    ReindexState,
    Task,
    TaskKind,
    TaskState,
)
from mediaindex.domain.search import search_key
from mediaindex.pipeline.context import StepContext, StepResult
from mediaindex.pipeline.spec import STEP_BY_NAME, StepSpec
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.indexes import IndexRepository
from mediaindex.ports.outputs import OutputRepository
from mediaindex.ports.search import SearchIndex
from mediaindex.ports.step_runner import StepRunner
from mediaindex.ports.tasks import TaskAssetFn, TaskRepository
from mediaindex.ports.webhooks import EventSink, NoEvents
from mediaindex.services import progress
from mediaindex.settings import Settings

if TYPE_CHECKING:
    from mediaindex.ml.registry import ModelRegistry

log = logging.getLogger(__name__)
StepFn = Callable[[StepContext], StepResult]
_ASSET_FIELDS = set(Asset.model_fields)
_GENERATION_TRIES = 3


class PipelineRunner(StepRunner):
    def __init__(
        self,
        *,
        assets: AssetRepository,
        tasks: TaskRepository,
        outputs: OutputRepository,
        blobs: BlobStore,
        search: SearchIndex,
        models: ModelRegistry,
        settings: Settings,
        step_loader: Callable[[str], StepFn],
        events: EventSink | None = None,
        indexes: IndexRepository | None = None,
    ) -> None:
        self._events = events or NoEvents()
        self._indexes = indexes
        self._assets = assets
        self._tasks = tasks
        self._outputs = outputs
        self._blobs = blobs
        self._search = search
        self.models = models
        self._settings = settings
        self._load = step_loader

    @property
    def events(self) -> EventSink:
        """Where settled tasks are reported."""
        return self._events

    @property
    def settings(self) -> Settings:
        return self._settings

    def run_step(self, tenant_id: str, task_id: str, step_name: str) -> bool:
        """Runs the step unless there is nothing left for it to do. Returns whether it ran.
        Raises MediaError for bad media (never worth retrying) and anything else for a retry."""
        spec = STEP_BY_NAME[step_name]
        loaded = self._load_task(tenant_id, task_id)
        if loaded is None or loaded[0].state == TaskState.CANCELLED:
            return False
        task, asset = loaded
        if task.kind == TaskKind.REINDEX and not spec.features:
            # fetch and probe settled the original at ingest: a rebuild never reads it whole again.
            return False
        served = self._active_features(task, spec)
        if spec.features and not served:
            return False
        if spec.url_sources_only and asset.source_url is None:
            return False
        try:
            for f in served:
                self._tasks.mutate_with_asset(tenant_id, task_id, _setter(f, FeatureStatus.PROCESSING))
        except NotFoundError:
            if self._asset_gone(asset):
                return False  # deleted just now: nothing written, nothing to do
            raise
        for _ in range(_GENERATION_TRIES):
            # Only the ml image's steps use models and write search documents: the others need
            # no read of the index row.
            target = self._target(task) if spec.image == "ml" else None
            workdir = Path(tempfile.mkdtemp(prefix=f"mi-{step_name}-"))
            try:
                ctx = StepContext(
                    asset=self._source_view(asset),
                    blobs=self._blobs,
                    workdir=workdir,
                    settings=self._settings,
                    models=self.models,
                    search_index_id=search_key(task.index_id, target.generation) if target else None,
                    transcription_model=target.models.transcription if target else None,
                    features=frozenset(served),
                    task_features=frozenset(task.features),
                )
                result = self._load(step_name)(ctx)
            except Exception:
                if self._asset_gone(asset):
                    # Failed because its asset was deleted under it (its original went): nothing to retry.
                    self._forget(asset)
                    return True
                raise
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            if target is None or result.search_docs is None:
                self._record(tenant_id, task_id, asset, spec, result, None)
                return True
            if not self._still_wanted(task, target.generation):
                if task.kind == TaskKind.REINDEX:
                    return True  # its re-index was cancelled or failed: nothing of it is kept
                continue  # a re-index swapped generations while the step ran: build for the new one
            self._record(tenant_id, task_id, asset, spec, result, target.generation)
            if self._still_wanted(task, target.generation):
                return True
            # Swapped while the documents were written: they went under the old key. Take them
            # back (a key that was dropped must stay dropped) and build for the new generation.
            self._search.delete_asset(
                tenant_id, asset.id, index_id=search_key(task.index_id, target.generation)
            )
            reloaded = self._load_task(tenant_id, task_id)
            if reloaded is None:
                return True
            task, asset = reloaded
        raise RuntimeError("the index's generation kept changing while the step ran")

    def fail_step(self, tenant_id: str, task_id: str, step_name: str, error: ErrorInfo) -> None:
        """The step failed for good: its features fail; a shared step (fetch, probe) fails them all."""
        spec = STEP_BY_NAME[step_name]
        if self._tasks.get(tenant_id, task_id) is None:
            return
        try:
            if not spec.features:
                media_error = spec.judges_media or is_media_error_code(error.code)
                self._tasks.mutate_with_asset(
                    tenant_id, task_id, lambda t, a: progress.fail_all(t, a, error, asset_error=media_error)
                )
                return
            for f in spec.features:
                self._tasks.mutate_with_asset(
                    tenant_id, task_id, _setter(f, FeatureStatus.FAILED, error=error.code)
                )
        except NotFoundError:
            if self._tasks.get(tenant_id, task_id) is not None:
                raise
            # The task went with its asset while the step failed: nothing left to mark.

    def finish_task(self, tenant_id: str, task_id: str) -> None:
        """Every step has ended. Drops the original of an ingest that was asked not to keep it
        (re-runs read the proxy instead), settles any feature left active by a crash, and reports
        the settled task to the event sink (webhooks)."""
        loaded = self._load_task(tenant_id, task_id)
        if loaded is None:
            return
        task, asset = loaded
        if any(fs.state in ACTIVE_STATES for fs in task.features.values()):
            err = ErrorInfo(code="step_failed", message="the pipeline ended before this feature finished")
            task, asset = self._tasks.mutate_with_asset(
                tenant_id, task_id, lambda t, a: progress.fail_all(t, a, err, asset_error=False)
            )
        if (
            task.kind == TaskKind.INGEST
            and not asset.save_original
            and asset.upload
            and self._proxy_key(asset)
        ):
            self._blobs.delete(asset.upload.key)
        # Both executors end every task here (again after a retry: the sink is idempotent).
        self._events.task_settled(task, asset)

    # ---- internals -----------------------------------------------------------------------------
    def _target(self, task: Task) -> _Target:
        """The generation a step writes search documents under, and the models it uses: a
        re-index task's own; any other task's, those of the index's searchable generation now."""
        if task.kind == TaskKind.REINDEX and task.generation is not None:
            return _Target(task.generation, task.models or IndexModels())
        index = self._indexes.get(task.tenant_id, task.index_id) if self._indexes else None
        if index is None:
            return _Target(1, IndexModels())
        return _Target(index.generation, index.models)

    def _still_wanted(self, task: Task, generation: int) -> bool:
        """Whether documents of `generation` are still wanted: it is the index's searchable one,
        or (for a re-index task) the one a running re-index builds."""
        if self._indexes is None:
            return True
        index = self._indexes.get(task.tenant_id, task.index_id)
        if index is None:
            return True  # the asset goes with it; _record handles that
        if index.generation == generation:
            return True
        r = index.reindex
        return (
            task.kind == TaskKind.REINDEX
            and r is not None
            and r.state == ReindexState.RUNNING
            and r.generation == generation
        )

    def _load_task(self, tenant_id: str, task_id: str) -> tuple[Task, Asset] | None:
        """The task and its asset, or None when either is gone (deleted while queued)."""
        task = self._tasks.get(tenant_id, task_id)
        asset = self._assets.get(tenant_id, task.asset_id) if task else None
        return (task, asset) if task and asset else None

    @staticmethod
    def _active_features(task: Task, spec: StepSpec) -> list[Feature]:
        return [f for f in spec.features if f in task.features and task.features[f].state in ACTIVE_STATES]

    def _proxy_key(self, asset: Asset) -> str | None:
        derivatives = self._outputs.list_derivatives(asset.tenant_id, asset.id)
        return next((d.key for d in derivatives if d.kind == "proxy"), None)

    def _source_view(self, asset: Asset) -> Asset:
        """The asset as steps see it: when the original is gone (save_original=false), the proxy
        stands in for it."""
        if asset.upload is None or asset.save_original or self._blobs.head(asset.upload.key) is not None:
            return asset
        proxy = self._proxy_key(asset)
        if proxy is None:
            return asset
        view = asset.model_copy(deep=True)
        assert view.upload is not None
        view.upload.key = proxy
        return view

    def _asset_gone(self, asset: Asset) -> bool:
        return self._assets.get(asset.tenant_id, asset.id) is None

    def _forget(self, asset: Asset) -> None:
        """Removes what a step wrote for an asset that has been deleted meanwhile: its files (the
        purge removed the ones that were there then), search documents, and any row that a
        store without foreign keys kept (deleting a missing asset sweeps its partition)."""
        log.info("asset deleted while a step ran: its outputs are removed", extra={"asset_id": asset.id})
        for prefix in asset_prefixes(asset):
            self._blobs.delete_prefix(prefix)
        self._search.delete_asset(asset.tenant_id, asset.id)
        self._assets.delete(asset.tenant_id, asset.id)

    def _record(
        self,
        tenant_id: str,
        task_id: str,
        asset: Asset,
        spec: StepSpec,
        result: StepResult,
        generation: int | None,
    ) -> None:
        if self._asset_gone(asset):
            # Deleted while running: keep nothing, files included.
            self._forget(asset)
            return
        task = self._tasks.get(tenant_id, task_id)
        if task is None or task.state == TaskState.CANCELLED:
            # Cancelled while running: keep no rows. Its files stay: they share their keys with
            # the outputs of earlier runs, which are still the asset's.
            return
        try:
            self._write_outputs(task, spec, result, generation)
        except NotFoundError:
            if not self._asset_gone(asset):
                raise
            self._forget(asset)
            return
        if self._asset_gone(asset):  # a purge that ran while we wrote
            self._forget(asset)

    def _write_outputs(self, task: Task, spec: StepSpec, result: StepResult, generation: int | None) -> None:
        tenant_id, task_id, asset_id = task.tenant_id, task.id, task.asset_id
        if result.derivatives or result.replaced_kinds:
            kinds = sorted(set(result.replaced_kinds) | {d.kind for d in result.derivatives})
            self._outputs.replace_derivatives(tenant_id, asset_id, kinds, result.derivatives)
        if result.segments is not None:
            self._outputs.replace_segments(tenant_id, asset_id, result.segments)
        updates = {k: v for k, v in result.asset_updates.items() if k in _ASSET_FIELDS}
        if result.search_docs is not None and generation is not None:
            # Only this generation's documents are replaced: a re-index builds beside the live ones.
            key = search_key(task.index_id, generation)
            self._search.delete_asset(task.tenant_id, asset_id, index_id=key)
            if result.search_docs:
                self._search.upsert(result.search_docs)
            updates["search_generation"] = generation

        def settle(t: Task, a: Asset) -> tuple[Task, Asset]:
            for k, v in updates.items():
                setattr(a, k, v)
            for f, fs in result.feature_states.items():
                if f in t.features:
                    t, a = progress.set_feature(
                        t, a, f, fs.state, reason=fs.reason, error=fs.error, parts=fs.parts
                    )
            for f in spec.features:  # what the step did not report otherwise is done
                t, a = progress.set_feature(t, a, f, FeatureStatus.COMPLETED)
            return t, a

        self._tasks.mutate_with_asset(tenant_id, task_id, settle)


@dataclass(frozen=True)
class _Target:
    generation: int
    models: IndexModels


def _setter(feature: Feature, state: FeatureStatus, *, error: str | None = None) -> TaskAssetFn:
    def apply(t: Task, a: Asset) -> tuple[Task, Asset]:
        return progress.set_feature(t, a, feature, state, error=error)

    return apply
