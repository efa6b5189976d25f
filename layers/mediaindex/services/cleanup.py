"""Cascade deletes: an asset's original, derivatives, segments, vectors and rows; an index's assets.
Rows go last, so a crash part-way leaves a row that a retry can still find and finish."""

from __future__ import annotations

import logging

from mediaindex.domain.blob_keys import asset_prefixes
from mediaindex.domain.models import Asset, TaskState
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.metadata import MetadataStore
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.search import SearchIndex

log = logging.getLogger(__name__)


class CleanupService:
    def __init__(
        self, metadata: MetadataStore, blobs: BlobStore, search: SearchIndex, orchestrator: Orchestrator
    ) -> None:
        self._metadata = metadata
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
        self._metadata.delete_asset(asset.id)

    def purge_index(self, tenant_id: str, index_id: str) -> None:
        while True:
            page = self._metadata.list_assets(tenant_id, index_id=index_id, limit=100, cursor=None)
            if not page.data:
                break
            for asset in page.data:
                self.purge_asset(asset)
        self._search.delete_index(tenant_id, index_id)
        self._metadata.delete_index(tenant_id, index_id)
        log.info("index purged", extra={"index_id": index_id})

    def _cancel_running(self, asset: Asset) -> None:
        cursor = None
        while True:
            page = self._metadata.list_tasks(
                asset.tenant_id, asset_id=asset.id, active_only=True, limit=100, cursor=cursor
            )
            for task in page.data:
                if task.state in (TaskState.QUEUED, TaskState.PROCESSING):
                    self._orchestrator.cancel(task)
            if not page.next_cursor:
                return
            cursor = page.next_cursor
