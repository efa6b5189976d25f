"""AssetRepository on SQLite: table `assets` (doc + the columns lists filter on). Every read and
write names the tenant; an asset of another tenant is not found. Each write is one `BEGIN
IMMEDIATE` transaction, which takes the write lock before it reads, so `mutate` calls `fn` once,
and changes the tenant's usage counters (usage.py) in that transaction."""

from __future__ import annotations

from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.adapters.local.sqlite.rows import (
    Row,
    find_asset,
    insert_asset,
    load_asset,
    newest_first,
    write_asset,
)
from mediaindex.adapters.local.sqlite.usage import add_usage, read_usage, stored_derivative_bytes
from mediaindex.domain.errors import NotFoundError
from mediaindex.domain.models import Asset, AssetStatus, MediaType, Page
from mediaindex.ports.assets import (
    DERIVATIVE_BYTES,
    AssetFn,
    AssetRepository,
    UsageCounts,
    next_asset,
    usage_change,
)


def _asset(row: Row) -> Asset:
    return Asset.model_validate_json(row[0])


class SqliteAssetRepository(AssetRepository):
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, asset: Asset) -> Asset:
        stored = asset.model_copy(update={"version": asset.version + 1})
        with self._db.transaction() as tx:
            owner = tx.execute("SELECT tenant_id FROM indexes WHERE id = ?", (asset.index_id,)).fetchone()
            if owner is None or owner[0] != asset.tenant_id:
                raise NotFoundError(
                    f"index {asset.index_id} not found", code="index_not_found", field="index_id"
                )
            insert_asset(tx, stored)
            tx.execute("UPDATE indexes SET asset_count = asset_count + 1 WHERE id = ?", (asset.index_id,))
        return stored

    def get(self, tenant_id: str, asset_id: str) -> Asset | None:
        # The API's hot path: one primary-key lookup on this thread's open connection.
        return find_asset(self._db.connection(), tenant_id, asset_id)

    def get_many(self, tenant_id: str, asset_ids: list[str]) -> dict[str, Asset]:
        ids = list(dict.fromkeys(asset_ids))
        out: dict[str, Asset] = {}
        conn = self._db.connection()
        for i in range(0, len(ids), 500):  # under SQLite's bound-parameter limit
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for (doc,) in conn.execute(
                f"SELECT doc FROM assets WHERE tenant_id = ? AND id IN ({marks})",  # noqa: S608
                [tenant_id, *chunk],
            ):
                asset = Asset.model_validate_json(doc)
                out[asset.id] = asset
        return out

    def list(
        self,
        tenant_id: str,
        *,
        index_id: str | None = None,
        status: AssetStatus | None = None,
        media_type: MediaType | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[Asset]:
        filters = {
            "tenant_id": tenant_id,
            "index_id": index_id,
            "status": AssetStatus(status).value if status is not None else None,
            "media_type": MediaType(media_type).value if media_type is not None else None,
        }
        conn = self._db.connection()
        return newest_first(conn, "doc FROM assets", _asset, equal=filters, limit=limit, cursor=cursor)

    def mutate(self, tenant_id: str, asset_id: str, fn: AssetFn) -> Asset:
        with self._db.transaction() as tx:
            current = load_asset(tx, tenant_id, asset_id)
            # A copy to fn: `current` stays the before of the counters' change.
            return write_asset(tx, next_asset(current, fn(current.model_copy(deep=True))), current)

    def delete(self, tenant_id: str, asset_id: str) -> Asset | None:
        with self._db.transaction() as tx:
            asset = find_asset(tx, tenant_id, asset_id)
            if asset is None:
                return None
            gone = {**usage_change(asset, None), DERIVATIVE_BYTES: -stored_derivative_bytes(tx, asset_id)}
            # ON DELETE CASCADE removes its tasks, derivatives and segments.
            tx.execute("DELETE FROM assets WHERE id = ?", (asset_id,))
            add_usage(tx, tenant_id, asset.index_id, gone)
            tx.execute("UPDATE indexes SET asset_count = asset_count - 1 WHERE id = ?", (asset.index_id,))
        return asset

    def usage_by_index(self, tenant_id: str) -> dict[str, UsageCounts]:
        return read_usage(self._db, tenant_id)
