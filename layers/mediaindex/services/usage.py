"""Usage: what a tenant stores and runs."""

from __future__ import annotations

from collections import Counter
from typing import Any

from mediaindex.domain.models import FeatureStatus
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.indexes import IndexRepository
from mediaindex.ports.outputs import OutputRepository


class UsageService:
    def __init__(self, assets: AssetRepository, outputs: OutputRepository, indexes: IndexRepository) -> None:
        self._assets = assets
        self._outputs = outputs
        self._indexes = indexes

    def _counted(self, tenant_id: str, index_id: str, seen: dict[str, bool]) -> bool:
        """Assets of an index being deleted are not counted: they are gone to the tenant."""
        if index_id not in seen:
            index = self._indexes.get(tenant_id, index_id)
            seen[index_id] = index is not None and not index.deleting
        return seen[index_id]

    def usage(self, tenant_id: str) -> dict[str, Any]:
        assets: Counter[str] = Counter()
        asset_bytes: Counter[str] = Counter()
        runs: Counter[str] = Counter()
        derivative_bytes = 0
        cursor = None
        seen: dict[str, bool] = {}
        while True:
            page = self._assets.list(tenant_id, limit=100, cursor=cursor)
            for a in page.data:
                if not self._counted(tenant_id, a.index_id, seen):
                    continue
                kind = a.media_type.value if a.media_type else "unknown"
                assets[kind] += 1
                asset_bytes[kind] += a.size_bytes or 0
                derivative_bytes += sum(d.size_bytes for d in self._outputs.list_derivatives(tenant_id, a.id))
                for f, fs in a.features.items():
                    runs[f"{f.value}.{fs.state.value}"] += 1 if fs.state != FeatureStatus.QUEUED else 0
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        return {
            "asset_count": sum(assets.values()),
            "assets_by_media_type": dict(assets),
            "bytes_by_media_type": dict(asset_bytes),
            "original_bytes": sum(asset_bytes.values()),
            "derivative_bytes": derivative_bytes,
            "feature_runs": {k: v for k, v in runs.items() if v},
        }
