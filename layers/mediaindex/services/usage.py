"""Usage: what a tenant stores and runs, and the measures its quotas are checked against
(services/quotas.py). What it stores (assets, bytes, feature runs) is read from counters the
stores keep per index beside every write that changes them (`AssetRepository.usage_by_index`): a
constant number of store calls whatever the tenant holds; so is today's media time, a counter the
task writes keep per UTC day (ports/tasks.py `media_counted`)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from mediaindex.ports.assets import DERIVATIVE_BYTES, AssetRepository
from mediaindex.ports.indexes import IndexRepository
from mediaindex.ports.outputs import OutputRepository
from mediaindex.ports.tasks import TaskRepository

_ASSETS, _BYTES, _RUNS = "assets:", "bytes:", "runs:"


class UsageService:
    def __init__(
        self,
        assets: AssetRepository,
        outputs: OutputRepository,
        indexes: IndexRepository,
        tasks: TaskRepository,
    ) -> None:
        del outputs  # the counters include derivatives; kept for the composition root's call
        self._assets = assets
        self._indexes = indexes
        self._tasks = tasks

    def _live_indexes(self, tenant_id: str) -> set[str]:
        """The tenant's indexes not being deleted: their assets are gone to the tenant."""
        live: set[str] = set()
        cursor = None
        while True:
            page = self._indexes.list(tenant_id, limit=100, cursor=cursor)
            live.update(i.id for i in page.data if not i.deleting)
            if not page.next_cursor:
                return live
            cursor = page.next_cursor

    def usage(self, tenant_id: str) -> dict[str, Any]:
        by_index = self._assets.usage_by_index(tenant_id)
        total: Counter[str] = Counter()
        if by_index:
            live = self._live_indexes(tenant_id)
            for index_id, counts in by_index.items():
                if index_id in live:
                    total.update(counts)
        assets = _named(total, _ASSETS)
        asset_bytes = {kind: total[_BYTES + kind] for kind in assets}
        return {
            "asset_count": sum(assets.values()),
            "assets_by_media_type": assets,
            "bytes_by_media_type": asset_bytes,
            "original_bytes": sum(asset_bytes.values()),
            "derivative_bytes": total[DERIVATIVE_BYTES],
            "feature_runs": _named(total, _RUNS),
        }

    def stored_bytes(self, tenant_id: str) -> int:
        """Originals and derivatives, as `usage` counts them."""
        return stored_bytes(self.usage(tenant_id))

    def media_seconds_on(self, tenant_id: str, day: date) -> float:
        """Seconds of media the tenant's tasks of that UTC day counted (cancelled ones too: they
        ran), each by its asset's duration once probe knew it: one counter read."""
        return self._tasks.media_ms_on(tenant_id, day.isoformat()) / 1000

    def active_tasks(self, tenant_id: str, *, at_most: int) -> int:
        """Queued or processing tasks, counted up to `at_most` (enough to compare with a limit)."""
        return len(self._tasks.list(tenant_id, active_only=True, limit=max(1, at_most), cursor=None).data)


def _named(total: Counter[str], prefix: str) -> dict[str, int]:
    """The positive counters named `prefix`..., by the rest of their name."""
    return {k[len(prefix) :]: v for k, v in sorted(total.items()) if k.startswith(prefix) and v > 0}


def stored_bytes(counted: dict[str, Any]) -> int:
    """Originals and derivatives, from what `UsageService.usage` counted."""
    return int(counted["original_bytes"]) + int(counted["derivative_bytes"])
