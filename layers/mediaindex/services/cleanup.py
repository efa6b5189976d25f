"""Cascade deletes: an asset's original, derivatives, segments, vectors and rows; an index's assets.
Rows go last, so a crash part-way leaves a row that a retry can still find and finish.

An index purged whole may go in bulk (`BulkAssetPurge`, where the store offers it): its assets'
rows in batched writes rather than one transaction each, since the hidden index and its counters
go with them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from mediaindex.domain.blob_keys import asset_prefixes
from mediaindex.domain.models import Asset, Task, TaskState
from mediaindex.domain.search import search_key
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.indexes import IndexRepository
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.search import SearchIndex
from mediaindex.ports.tasks import TaskRepository

log = logging.getLogger(__name__)


class BulkAssetPurge(Protocol):
    """Many assets' rows at once, for an index being purged whole (adapters/aws/dynamo/bulk_purge.py)."""

    def delete_assets(
        self, tenant_id: str, asset_ids: list[str], before_rows: Callable[[list[Task]], None]
    ) -> None:
        """Reads what the assets own, calls `before_rows` with their queued or running tasks, then
        deletes their rows, the asset rows last; safe to repeat."""

    def forget_index(self, tenant_id: str, index_id: str) -> None:
        """Deletes what the store keeps for the index beside its row (usage counters)."""


class CleanupService:
    def __init__(
        self,
        *,
        assets: AssetRepository,
        indexes: IndexRepository,
        tasks: TaskRepository,
        blobs: BlobStore,
        search: SearchIndex | None,
        orchestrator: Orchestrator,
        bulk: BulkAssetPurge | None = None,
    ) -> None:
        """`search` None: the index's documents are dropped by whoever hands the purge over
        (`drop_documents`), not here; only the bulk index purge runs so. `bulk`: purge an index's
        assets with it rather than one `purge_asset` each."""
        if search is None and bulk is None:
            raise ValueError("without a search index, only the bulk index purge runs")
        self._assets = assets
        self._indexes = indexes
        self._tasks = tasks
        self._blobs = blobs
        self._search = search
        self._orchestrator = orchestrator
        self._bulk = bulk

    def purge_asset(self, asset: Asset, *, search_docs: bool = True) -> None:
        """`search_docs=False` when the caller removes the whole index's documents at once."""
        self._cancel_running(asset)
        if search_docs and self._search is not None:
            self._search.delete_asset(asset.tenant_id, asset.id)
        if asset.upload and asset.upload.multipart_upload_id and not asset.upload.completed:
            self._blobs.abort_multipart(asset.upload.key, asset.upload.multipart_upload_id)
        self._delete_files(asset, search_docs=search_docs)
        self._assets.delete(asset.tenant_id, asset.id)
        # Once more after the row: a step that wrote between the first pass and the row's delete
        # finds the asset gone and removes its own outputs, but only after they landed here.
        self._delete_files(asset, search_docs=search_docs)

    def _delete_files(self, asset: Asset, *, search_docs: bool) -> None:
        for prefix in asset_prefixes(asset):
            self._blobs.delete_prefix(prefix)
        if search_docs and self._search is not None:
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
        self.drop_documents(tenant_id, index_id, index.generations)
        if self._bulk is not None:
            self._purge_bulk(self._bulk, page.data)
        else:
            for asset in page.data:
                self.purge_asset(asset, search_docs=False)
        if page.data:
            return False
        if self._bulk is not None:
            self._bulk.forget_index(tenant_id, index_id)
        self._indexes.delete(tenant_id, index_id)
        log.info("index purged", extra={"index_id": index_id})
        return True

    def drop_documents(self, tenant_id: str, index_id: str, generations: int) -> None:
        """The index's search documents, one delete per generation (a re-index in flight has one
        more) rather than one per asset (a delete-by-query each on OpenSearch): it is hidden."""
        if self._search is None:
            return
        for generation in range(1, generations + 1):
            self._search.delete_index(tenant_id, search_key(index_id, generation))

    def _purge_bulk(self, bulk: BulkAssetPurge, assets: list[Asset]) -> None:
        """The bulk counterpart of `purge_asset` for a page of a hidden index's assets: their
        running tasks cancelled and files deleted before their rows go in batches (asset rows
        last), and the files of those whose task was running deleted again after (a step may have
        written meanwhile; it finds the asset gone after that and removes what it wrote)."""
        if not assets:
            return
        busy: set[str] = set()

        def before_rows(running: list[Task]) -> None:
            for task in running:
                self._orchestrator.cancel(task)
                busy.add(task.asset_id)
            for asset in assets:
                if asset.upload and asset.upload.multipart_upload_id and not asset.upload.completed:
                    self._blobs.abort_multipart(asset.upload.key, asset.upload.multipart_upload_id)
                self._delete_files(asset, search_docs=False)

        bulk.delete_assets(assets[0].tenant_id, [a.id for a in assets], before_rows)
        for asset in assets:
            if asset.id in busy:
                self._delete_files(asset, search_docs=False)

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
