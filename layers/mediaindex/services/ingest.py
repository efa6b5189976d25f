"""Starting work on an asset: the ingest task when its original lands, re-runs on request."""

from __future__ import annotations

import logging

from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import Asset, AssetStatus, Task, TaskKind, TaskState
from mediaindex.domain.rules import initial_feature_states
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.tasks import TaskRepository
from mediaindex.services import progress

log = logging.getLogger(__name__)


class IngestService:
    def __init__(self, assets: AssetRepository, tasks: TaskRepository, orchestrator: Orchestrator) -> None:
        self._assets = assets
        self._tasks = tasks
        self._orchestrator = orchestrator

    def original_uploaded(
        self, tenant_id: str, asset_id: str, *, size: int | None, etag: str | None
    ) -> Task | None:
        """The original has landed (single PUT, completed multipart, form upload, S3 event).
        Starts the ingest task exactly once: a duplicate or late event finds the asset no longer
        `awaiting_upload` (or loses the versioned write) and starts nothing."""
        asset = self._assets.get(tenant_id, asset_id)
        if asset is None:
            log.warning("upload for unknown asset dropped", extra={"asset_id": asset_id})
            return None
        if asset.status != AssetStatus.AWAITING_UPLOAD:
            self._restart_if_stranded(asset)
            return None
        asset.size_bytes = size if size is not None else asset.size_bytes
        asset.etag = etag
        if asset.upload:
            asset.upload.completed = True
        return self._start(asset, TaskKind.INGEST)

    def _restart_if_stranded(self, asset: Asset) -> None:
        """A repeated event for an asset whose ingest task never left `queued` (the orchestrator
        call failed after the task was saved) starts it again; a start of the same task twice
        runs it once, so this is safe when the first start did land."""
        page = self._tasks.list(asset.tenant_id, asset_id=asset.id, active_only=True, limit=10, cursor=None)
        for task in page.data:
            if task.kind == TaskKind.INGEST and task.state == TaskState.QUEUED:
                log.info("restarting a queued ingest task", extra={"task_id": task.id})
                self._orchestrator.start(task, asset)
                return
        log.info("duplicate upload event ignored", extra={"asset_id": asset.id})

    def start_url_fetch(self, asset: Asset) -> Task:
        task = self._start(asset, TaskKind.INGEST)
        assert task is not None
        return task

    def _start(self, asset: Asset, kind: TaskKind) -> Task | None:
        features = list(asset.features)
        task = Task(
            id=new_id("tsk"),
            tenant_id=asset.tenant_id,
            asset_id=asset.id,
            index_id=asset.index_id,
            kind=kind,
            features=initial_feature_states(features),
        )
        task, asset = progress.queue_features(task, asset)
        try:
            task, asset = self._tasks.create_with_asset(task, asset)
        except (ConflictError, NotFoundError):
            log.info("ingest already started", extra={"asset_id": asset.id})
            return None
        self._orchestrator.start(task, asset)
        return task
