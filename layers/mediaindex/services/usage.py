"""Usage: what a tenant stores and runs, and the measures its quotas are checked against
(services/quotas.py). Each is computed from the stored entities, not kept as a counter: a full
read of the tenant's assets (stored bytes) or of today's tasks (media hours), so quotas that need
them are read only when they are set."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from mediaindex.domain.models import FeatureStatus
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.indexes import IndexRepository
from mediaindex.ports.outputs import OutputRepository
from mediaindex.ports.tasks import TaskRepository


class UsageService:
    def __init__(
        self,
        assets: AssetRepository,
        outputs: OutputRepository,
        indexes: IndexRepository,
        tasks: TaskRepository,
    ) -> None:
        self._assets = assets
        self._outputs = outputs
        self._indexes = indexes
        self._tasks = tasks

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

    def stored_bytes(self, tenant_id: str) -> int:
        """Originals and derivatives, as `usage` counts them."""
        return stored_bytes(self.usage(tenant_id))

    def media_seconds_since(self, tenant_id: str, since: datetime) -> float:
        """Seconds of media in the tasks started since `since` (cancelled ones too: they ran),
        by their asset's duration (0 until probed)."""
        total = 0.0
        cursor = None
        durations: dict[str, float] = {}
        while True:
            page = self._tasks.list(tenant_id, limit=100, cursor=cursor)
            for task in page.data:
                if task.created_at < since:  # newest first: the rest are older
                    return total
                if task.asset_id not in durations:
                    asset = self._assets.get(tenant_id, task.asset_id)
                    durations[task.asset_id] = (asset.duration_s or 0.0) if asset else 0.0
                total += durations[task.asset_id]
            if not page.next_cursor:
                return total
            cursor = page.next_cursor

    def active_tasks(self, tenant_id: str, *, at_most: int) -> int:
        """Queued or processing tasks, counted up to `at_most` (enough to compare with a limit)."""
        return len(self._tasks.list(tenant_id, active_only=True, limit=max(1, at_most), cursor=None).data)


def stored_bytes(counted: dict[str, Any]) -> int:
    """Originals and derivatives, from what `UsageService.usage` counted."""
    return int(counted["original_bytes"]) + int(counted["derivative_bytes"])
