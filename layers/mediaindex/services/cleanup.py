"""Cascade deletes: an asset's original, derivatives, segments, vectors and rows; an index's assets.
Rows go last, so a crash part-way leaves a row that a retry can still find and finish."""

from __future__ import annotations

import logging
import time

from mediaindex.domain.blob_keys import asset_prefixes
from mediaindex.domain.models import Asset, TaskState
from mediaindex.domain.search import search_key
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

    def purge_asset(self, asset: Asset, *, search_docs: bool = True) -> None:
        """`search_docs=False` when the caller removes the whole index's documents at once."""
        self._cancel_running(asset)
        if search_docs:
            self._search.delete_asset(asset.tenant_id, asset.id)
        if asset.upload and asset.upload.multipart_upload_id and not asset.upload.completed:
            self._blobs.abort_multipart(asset.upload.key, asset.upload.multipart_upload_id)
        self._delete_files(asset, search_docs=search_docs)
        self._assets.delete(asset.tenant_id, asset.id)
        # Once more after the row: a step that wrote between the first pass and the row's delete
        # finds the asset gone and removes its own outputs, but only after they landed here.
        self._delete_files(asset, search_docs=search_docs)

    def _delete_files(self, asset: Asset, *, search_docs: bool) -> None:
        for prefix in asset_prefixes(asset.tenant_id, asset.id):
            self._blobs.delete_prefix(prefix)
        if search_docs:
            self._search.delete_asset(asset.tenant_id, asset.id)

    def purge_index_batch(self, tenant_id: str, index_id: str, *, max_assets: int = 100) -> bool:
        """Purges up to `max_assets` of an index marked `deleting`; once none is left, its search
        documents and its row (which frees its name). True when the index is gone. Safe to repeat
        and to resume after a crash at any point: each asset goes whole (rows last), and the index
        row goes only after a listing that found no asset."""
        index = self._indexes.get(tenant_id, index_id)
        if index is None:
            return True
        if not index.deleting:
            log.warning("purge of an index not marked deleting: skipped", extra={"index_id": index_id})
            return True
        page = self._assets.list(tenant_id, index_id=index_id, limit=max_assets, cursor=None)
        # One delete of the index's search documents per batch rather than one per asset (a
        # delete-by-query each on OpenSearch): the index is hidden already.
        for generation in range(1, index.generations + 1):  # a re-index in flight has one more
            self._search.delete_index(tenant_id, search_key(index_id, generation))
        for asset in page.data:
            self.purge_asset(asset, search_docs=False)
        if page.data:
            return False
        self._indexes.delete(tenant_id, index_id)
        log.info("index purged", extra={"index_id": index_id})
        return True

    def purge_index(
        self, tenant_id: str, index_id: str, *, batch: int = 100, budget_s: float | None = None
    ) -> bool:
        """Batches until the index is gone, or until `budget_s` has passed (then False: what is
        left stays hidden behind the `deleting` flag, for the next run to finish)."""
        deadline = None if budget_s is None else time.monotonic() + budget_s
        while not self.purge_index_batch(tenant_id, index_id, max_assets=batch):
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

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
