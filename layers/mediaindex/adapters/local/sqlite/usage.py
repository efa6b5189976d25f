"""Usage counters on SQLite (tables in migrations/007_usage_counters.sql): the writes of assets
and derivatives add their change in their own transaction (`add_usage`); `read_usage` reads a
tenant's counters in two statements. A tenant not yet in `usage_tenants` had rows written before
the counters existed: its counters are rebuilt once from a full read, inside one write
transaction, so no write can fall between the read and the rebuilt counters."""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Mapping

from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.domain.models import Asset, Derivative
from mediaindex.ports.assets import DERIVATIVE_BYTES, UsageCounts, asset_usage, derivative_bytes


def add_usage(tx: sqlite3.Connection, tenant_id: str, index_id: str, delta: Mapping[str, int]) -> None:
    """Adds `delta` to the index's counters (in the caller's transaction)."""
    tx.executemany(
        "INSERT INTO usage_counters (tenant_id, index_id, name, value) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (tenant_id, index_id, name) DO UPDATE SET value = value + excluded.value",
        [(tenant_id, index_id, name, v) for name, v in delta.items() if v],
    )


def stored_derivative_bytes(tx: sqlite3.Connection, asset_id: str) -> int:
    rows = tx.execute("SELECT doc FROM derivatives WHERE asset_id = ?", (asset_id,)).fetchall()
    return derivative_bytes([Derivative.model_validate_json(r[0]) for r in rows])


def read_usage(db: Database, tenant_id: str) -> dict[str, UsageCounts]:
    conn = db.connection()
    if conn.execute("SELECT 1 FROM usage_tenants WHERE tenant_id = ?", (tenant_id,)).fetchone() is None:
        rebuild_usage(db, tenant_id)
    out: dict[str, UsageCounts] = defaultdict(dict)
    rows = conn.execute(
        "SELECT index_id, name, value FROM usage_counters WHERE tenant_id = ?", (tenant_id,)
    ).fetchall()
    for index_id, name, value in rows:
        out[index_id][name] = int(value)
    return dict(out)


def rebuild_usage(db: Database, tenant_id: str) -> None:
    """The backfill: the tenant's counters from every asset and derivative row it has, unless
    they are whole already (another thread rebuilt them while this one waited for the lock)."""
    with db.transaction() as tx:
        if tx.execute("SELECT 1 FROM usage_tenants WHERE tenant_id = ?", (tenant_id,)).fetchone():
            return
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for (doc,) in tx.execute("SELECT doc FROM assets WHERE tenant_id = ?", (tenant_id,)):
            asset = Asset.model_validate_json(doc)
            counts[asset.index_id].update(asset_usage(asset))
        derivatives = tx.execute(
            "SELECT a.index_id, d.doc FROM derivatives d JOIN assets a ON a.id = d.asset_id"
            " WHERE a.tenant_id = ?",
            (tenant_id,),
        )
        for index_id, doc in derivatives:
            counts[index_id][DERIVATIVE_BYTES] += Derivative.model_validate_json(doc).size_bytes
        tx.execute("DELETE FROM usage_counters WHERE tenant_id = ?", (tenant_id,))
        for index_id, counted in counts.items():
            add_usage(tx, tenant_id, index_id, counted)
        tx.execute("INSERT INTO usage_tenants (tenant_id) VALUES (?)", (tenant_id,))
