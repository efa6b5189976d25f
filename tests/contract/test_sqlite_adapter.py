"""What only the SQLite adapter can show: threads, speed, the database engine (migrations,
transactions, settings), and that a file written by the previous release opens and reads."""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mediaindex.adapters.local.sqlite import open_stores
from mediaindex.adapters.local.sqlite.database import Database, split_statements
from mediaindex.domain.models import Asset
from mediaindex.ports.stores import MetadataStores
from tests.contract.metadata_factories import (
    T1,
    make_asset,
    make_index,
)
from tests.contract.release_sample import (
    assert_reads_release_sample,
    assert_writes_over_release_sample,
    write_release_sample,
)

OLD_RELEASE_SQL = Path(__file__).parents[1] / "fixtures" / "metadata" / "sqlite_old_release.sql"


def test_sqlite_concurrent_mutations_lose_no_update(sqlite_stores: MetadataStores) -> None:
    stores = sqlite_stores
    asset = make_asset(stores, make_index(stores))
    threads, per_thread = 6, 15

    def bump(a: Asset) -> Asset:
        n = int(a.user_metadata.get("n", 0))
        return a.model_copy(update={"user_metadata": {**a.user_metadata, "n": n + 1}})

    def worker() -> None:
        for _ in range(per_thread):
            stores.assets.mutate(T1, asset.id, bump)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()

    final = stores.assets.get(T1, asset.id)
    assert final is not None
    assert final.user_metadata["n"] == threads * per_thread
    assert final.version == asset.version + threads * per_thread


def test_sqlite_get_asset_is_under_a_millisecond(sqlite_stores: MetadataStores) -> None:
    stores = sqlite_stores
    index = make_index(stores)
    assets = [make_asset(stores, index) for _ in range(50)]
    ids = [a.id for a in assets] * 20
    timings = []
    for asset_id in ids:
        t0 = time.perf_counter()
        stores.assets.get(T1, asset_id)
        timings.append(time.perf_counter() - t0)
    assert statistics.median(timings) < 0.001


def test_database_migrations_apply_once_and_in_order(tmp_path: Path) -> None:
    mig = tmp_path / "migrations"
    mig.mkdir()
    (mig / "002_more.sql").write_text("ALTER TABLE things ADD COLUMN size INTEGER; -- needs 001 first\n")
    (mig / "001_base.sql").write_text(
        "CREATE TABLE things (id TEXT PRIMARY KEY, note TEXT DEFAULT 'a;b');\n"
        "CREATE TRIGGER t AFTER INSERT ON things"
        " BEGIN UPDATE things SET note = 'x;y' WHERE id = NEW.id; END;\n"
    )

    db = Database(tmp_path / "x.db", migrations_dir=mig)
    assert db.migrate() == [1, 2]
    db.close()

    # When the process restarts, Then nothing runs twice
    again = Database(tmp_path / "x.db", migrations_dir=mig)
    assert again.migrate() == []
    assert again.applied_versions() == [1, 2]
    with again.transaction() as tx:
        tx.execute("INSERT INTO things (id, size) VALUES ('t1', 3)")
    assert again.connection().execute("SELECT note, size FROM things").fetchall() == [("x;y", 3)]
    again.close()


def test_database_failed_migration_leaves_no_trace(tmp_path: Path) -> None:
    mig = tmp_path / "migrations"
    mig.mkdir()
    (mig / "001_bad.sql").write_text("CREATE TABLE half (id TEXT);\nTHIS IS NOT SQL;\n")
    db = Database(tmp_path / "x.db", migrations_dir=mig)

    with pytest.raises(sqlite3.OperationalError):
        db.migrate()

    conn = db.connection()
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchall() == []
    assert db.applied_versions() == []
    db.close()


def test_database_settings_and_nested_transactions(metadata_sqlite_db: Database) -> None:
    db = metadata_sqlite_db
    db.migrate()
    conn = db.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.applied_versions()[0] == 1

    # A failing inner block rolls back alone; the outer block commits
    with db.transaction() as tx:
        tx.execute("INSERT INTO tenants (id, name, doc) VALUES ('t1', 'one', '{}')")
        with pytest.raises(RuntimeError), db.transaction() as inner:
            inner.execute("INSERT INTO tenants (id, name, doc) VALUES ('t2', 'two', '{}')")
            raise RuntimeError("inner fails")
    assert conn.execute("SELECT id FROM tenants").fetchall() == [("t1",)]

    # A failing outer block rolls everything back
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.execute("INSERT INTO tenants (id, name, doc) VALUES ('t3', 'three', '{}')")
        raise RuntimeError("outer fails")
    assert conn.execute("SELECT id FROM tenants").fetchall() == [("t1",)]


def test_database_without_foreign_keys_takes_rows_naming_absent_parents(tmp_path: Path) -> None:
    # Given the file the AWS runtime keeps only its job queue in (its tasks live in DynamoDB)
    db = Database(tmp_path / "jobs.db", foreign_keys=False)
    db.migrate()

    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO task_plans (task_id, steps, finished, created_at) VALUES ('tsk_remote', '[]', 0, 0)"
        )

    assert db.connection().execute("PRAGMA foreign_keys").fetchone()[0] == 0
    # And the metadata repositories, which rely on cascading deletes, refuse such a file
    with pytest.raises(ValueError, match="foreign_keys"):
        open_stores(db)
    db.close()


def test_split_statements_respects_strings_and_triggers() -> None:
    script = (
        "-- c;\nCREATE TABLE a (x TEXT DEFAULT ';');\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;\nSELECT 2"
    )
    assert len(split_statements(script)) == 3


# The previous release's file ----------------------------------------------------------------------
def _old_release_file(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(OLD_RELEASE_SQL.read_text(encoding="utf-8"))
    conn.close()
    return path


METADATA_TABLES = (
    "tenants",
    "api_keys",
    "indexes",
    "assets",
    "tasks",
    "derivatives",
    "segments",
    "idempotency",
)


def _metadata(db: Database) -> dict[str, tuple[list[Any], list[Any]]]:
    """Each metadata table's schema (table and indexes) and rows. Other tables (the job queue's)
    have migrations of their own and are left out."""
    conn = db.connection()
    return {
        table: (
            conn.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? ORDER BY name", (table,)
            ).fetchall(),
            conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall(),
        )
        for table in METADATA_TABLES
    }


def test_a_file_written_by_the_previous_release_opens_and_reads(tmp_path: Path) -> None:
    db = Database(_old_release_file(tmp_path / "old.db"))
    before = _metadata(db)
    stores = open_stores(db)

    # The metadata tables need no migration: opening changes nothing in them
    assert _metadata(db) == before
    assert db.applied_versions()[:2] == [1, 2]
    assert_reads_release_sample(stores)
    assert_writes_over_release_sample(stores)
    db.close()


def test_todays_writes_store_the_previous_release_format(tmp_path: Path) -> None:
    old = Database(_old_release_file(tmp_path / "old.db"))
    new = Database(tmp_path / "new.db")

    write_release_sample(open_stores(new))

    assert _metadata(new) == _metadata(old)
    old.close()
    new.close()
