"""The rows of many assets of an index being purged whole (services/cleanup.py's bulk path),
without a transaction per asset: the index is hidden already and goes with its counters, so
nothing here keeps `asset_count` or the usage shards in step, as a single asset's delete must.
Each asset's partition is read with one consistent Query; everything found goes in batched
writes (25 a request), the asset items last, so an asset half-deleted by a crash still lists
under its index and the next run finishes it."""

from __future__ import annotations

from collections.abc import Callable

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.items import (
    ASSET_SK,
    TASK_REF_PREFIX,
    TASK_SK,
    asset_pk,
    task_from,
    task_pk,
)
from mediaindex.adapters.aws.dynamo.table import Item, Table, key
from mediaindex.adapters.aws.dynamo.usage import index_shard_keys
from mediaindex.domain.models import Task, TaskState

_ACTIVE = {TaskState.QUEUED, TaskState.PROCESSING}


class DynamoBulkPurge:
    def __init__(self, table: Table) -> None:
        self._t = table

    def delete_assets(
        self, tenant_id: str, asset_ids: list[str], before_rows: Callable[[list[Task]], None]
    ) -> None:
        """Reads what the assets own (derivatives, segments, usage, task pointers and their tasks),
        calls `before_rows` with their queued or running tasks, then deletes it all, the asset items
        last. The partitions of assets with such a task are read and swept once more after their
        asset item: a step still running may have written a row meanwhile (it finds the asset gone
        after that and writes no more). Safe to repeat: a missing item is no error."""
        owned, task_ids = self._owned(asset_ids)
        found = self._t.batch_get([(task_pk(t), TASK_SK) for t in task_ids])
        active = [t for t in map(task_from, found) if t.tenant_id == tenant_id and t.state in _ACTIVE]
        before_rows(active)
        self._t.batch_delete(owned)
        self._t.batch_delete([key(asset_pk(a), ASSET_SK) for a in asset_ids])
        self._t.batch_delete(self._owned(list(dict.fromkeys(t.asset_id for t in active)))[0])

    def forget_index(self, tenant_id: str, index_id: str) -> None:
        """Deletes the index's usage counter shards (its assets are gone; the index row goes next)."""
        self._t.batch_delete(index_shard_keys(tenant_id, index_id))

    def _owned(self, asset_ids: list[str]) -> tuple[list[Item], list[str]]:
        """The keys of what the assets' partitions hold besides the asset items (their tasks'
        items included), and the ids of those tasks."""
        owned: list[Item] = []
        task_ids: list[str] = []
        for asset_id in asset_ids:
            for it in self._t.partition(asset_pk(asset_id), keys_only=True):
                sk = it[ks.SK]["S"]
                if sk == ASSET_SK:
                    continue
                owned.append(it)
                if sk.startswith(TASK_REF_PREFIX):
                    task_ids.append(sk.removeprefix(TASK_REF_PREFIX))
                    owned.append(key(task_pk(task_ids[-1]), TASK_SK))
        return owned, task_ids
