"""Starting work on an asset: the ingest task when its original lands, re-runs on request.

An original that lands is one of three things (`Landing`): the awaited upload (the ingest starts);
a repeat of it (a duplicate event: nothing to do, the object stays); or unwanted, because its asset
is gone or ended before its upload completed (deleted, aborted, expired). The caller, which knows
the object, deletes an unwanted one: a late PUT must not leave an orphan original behind."""

from __future__ import annotations

import logging
from enum import StrEnum

from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import Asset, AssetStatus, Task, TaskKind, TaskState
from mediaindex.domain.rules import initial_feature_states
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.tasks import TaskRepository
from mediaindex.services import progress
from mediaindex.services.tasks import start_or_settle

log = logging.getLogger(__name__)


class Landing(StrEnum):
    STARTED = "started"  # the awaited original: its ingest task started
    DUPLICATE = "duplicate"  # a repeat (duplicate event, lost race to start): keep the object
    UNWANTED = "unwanted"  # the asset is gone or ended before its upload completed: delete the object


def _unwanted(asset: Asset | None) -> bool:
    return asset is None or (
        asset.status == AssetStatus.FAILED and not (asset.upload and asset.upload.completed)
    )


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
        `awaiting_upload` (or loses the versioned write) and starts nothing. None when nothing
        started; `original_landed` says why."""
        return self.original_landed(tenant_id, asset_id, size=size, etag=etag)[1]

    def original_landed(
        self,
        tenant_id: str,
        asset_id: str,
        *,
        size: int | None,
        etag: str | None,
        key: str | None = None,
    ) -> tuple[Landing, Task | None]:
        """As original_uploaded, with what the landing was: the caller deletes an UNWANTED object.
        `key`, where the object landed: an object that names the asset but is not at the key its
        upload was signed for (another layout's or another extension's) is UNWANTED too, so the
        pipeline never starts on a file it would not read."""
        asset = self._assets.get(tenant_id, asset_id)
        if _unwanted(asset):
            log.warning("upload for a deleted or ended asset is unwanted", extra={"asset_id": asset_id})
            return Landing.UNWANTED, None
        assert asset is not None
        if key is not None and asset.upload is not None and key != asset.upload.key:
            log.warning("an object not at the asset's upload key is unwanted", extra={"asset_id": asset_id})
            return Landing.UNWANTED, None
        if asset.status != AssetStatus.AWAITING_UPLOAD:
            self._restart_if_stranded(asset)
            return Landing.DUPLICATE, None
        asset.size_bytes = size if size is not None else asset.size_bytes
        asset.etag = etag
        if asset.upload:
            asset.upload.completed = True
        task = self._start(asset, TaskKind.INGEST)
        if task is not None:
            return Landing.STARTED, task
        # Lost the versioned write: to a start of the same upload, or to a delete or an expiry.
        return (
            Landing.UNWANTED if _unwanted(self._assets.get(tenant_id, asset_id)) else Landing.DUPLICATE
        ), None

    def awaits_original(self, tenant_id: str, asset_id: str) -> bool:
        """Whether an original for the asset would be taken now (checked before bytes are sent)."""
        asset = self._assets.get(tenant_id, asset_id)
        return asset is not None and asset.status == AssetStatus.AWAITING_UPLOAD

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
        # No event comes again for a URL: a start the executor refuses fails the asset at once.
        task = self._start(asset, TaskKind.INGEST, settle_if_refused=True)
        assert task is not None
        return task

    def _start(self, asset: Asset, kind: TaskKind, *, settle_if_refused: bool = False) -> Task | None:
        """An upload's start that the executor refuses stays queued: the upload event is delivered
        again, and _restart_if_stranded starts it then."""
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
        if settle_if_refused:
            start_or_settle(self._tasks, self._orchestrator, task, asset, asset_error=True)
        else:
            self._orchestrator.start(task, asset)
        return task
