"""Cascade deletes: an asset's original, derivatives, segments, vectors and rows; an index's assets.
Rows go last, so a crash part-way leaves a row that a retry can still find and finish."""

from __future__ import annotations

import logging

from mediaindex.domain.blob_keys import asset_prefixes
from mediaindex.domain.models import Asset, TaskState
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.indexes import IndexRepository
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.search import SearchIndex
from mediaindex.ports.tasks import TaskRepository

log = logging.getLogger(__name__)


class CleanupService:
    def __init__(
        self,
        *,
        assets: AssetRepository,
        indexes: IndexRepository,
        tasks: TaskRepository,
        blobs: BlobStore,
        search: SearchIndex,
        orchestrator: Orchestrator,
    ) -> None:
        self._assets = assets
        self._indexes = indexes
        self._tasks = tasks
        self._blobs = blobs
        self._search = search
        self._orchestrator = orchestrator

    def purge_asset(self, asset: Asset) -> None:
        self._cancel_running(asset)
        self._search.delete_asset(asset.tenant_id, asset.id)
        if asset.upload and asset.upload.multipart_upload_id and not asset.upload.completed:
            self._blobs.abort_multipart(asset.upload.key, asset.upload.multipart_upload_id)
        for prefix in asset_prefixes(asset.tenant_id, asset.id):
            self._blobs.delete_prefix(prefix)
        self._assets.delete(asset.tenant_id, asset.id)

    def purge_index(self, tenant_id: str, index_id: str) -> None:
        while True:
            page = self._assets.list(tenant_id, index_id=index_id, limit=100, cursor=None)
            if not page.data:
                break
            for asset in page.data:
                self.purge_asset(asset)
        self._search.delete_index(tenant_id, index_id)
        self._indexes.delete(tenant_id, index_id)
        log.info("index purged", extra={"index_id": index_id})

    def _cancel_running(self, asset: Asset) -> None:
        cursor = None
        while True:
            page = self._tasks.list(
                asset.tenant_id, asset_id=asset.id, active_only=True, limit=100, cursor=cursor
            )
            for task in page.data:
                if task.state in (TaskState.QUEUED, TaskState.PROCESSING):
                    self._orchestrator.cancel(task)
            if not page.next_cursor:
                return
            cursor = page.next_cursor
