"""The metadata repositories on one SQLite file (the local runtime).

`Database` (database.py) owns the file: a connection per thread, `BEGIN IMMEDIATE` transactions,
versioned migrations (migrations/NNN_name.sql). Each repository module maps one aggregate to its
tables; `rows.py` holds what they share (cursors, pages, the asset row). Every write is one
transaction that takes the write lock before it reads, so a read-check-write is atomic without
retries and `mutate*` call their function exactly once. Versions go up by one on every write (an
insert stores version+1 too)."""

from __future__ import annotations

from mediaindex.adapters.local.sqlite.assets import SqliteAssetRepository
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.adapters.local.sqlite.idempotency import SqliteIdempotencyRepository
from mediaindex.adapters.local.sqlite.indexes import SqliteIndexRepository
from mediaindex.adapters.local.sqlite.keys import SqliteKeyRepository
from mediaindex.adapters.local.sqlite.outputs import SqliteOutputRepository
from mediaindex.adapters.local.sqlite.tasks import SqliteTaskRepository
from mediaindex.ports.stores import MetadataStores


def open_stores(db: Database) -> MetadataStores:
    """Applies any pending migrations (idempotent: one SELECT per migration when up to date) and
    opens every repository over `db`. The file must enforce foreign keys: deleting an asset relies
    on ON DELETE CASCADE to remove its tasks, derivatives and segments."""
    if not db.foreign_keys:
        raise ValueError("the metadata repositories need a Database with foreign_keys=True")
    db.migrate()
    return MetadataStores(
        keys=SqliteKeyRepository(db),
        indexes=SqliteIndexRepository(db),
        assets=SqliteAssetRepository(db),
        outputs=SqliteOutputRepository(db),
        tasks=SqliteTaskRepository(db),
        idempotency=SqliteIdempotencyRepository(db),
    )


__all__ = [
    "Database",
    "SqliteAssetRepository",
    "SqliteIdempotencyRepository",
    "SqliteIndexRepository",
    "SqliteKeyRepository",
    "SqliteOutputRepository",
    "SqliteTaskRepository",
    "open_stores",
]
