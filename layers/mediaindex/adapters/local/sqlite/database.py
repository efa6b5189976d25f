"""One SQLite database file shared by the local adapters (metadata, job queue, ...).

WAL so readers never wait for the writer, one connection per thread (sqlite3 connections must not be
shared across threads mid-statement), `BEGIN IMMEDIATE` transactions so a read-modify-write takes the
write lock before it reads (no lost updates, no deadlocking lock upgrades), and versioned migrations:
`migrations/NNN_name.sql`, applied in order once each, recorded in `schema_migrations`."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{3,})_([A-Za-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def discover_migrations(directory: Path) -> list[Migration]:
    """`NNN_name.sql` files sorted by version; two files with one version are a packaging bug."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file {path.name!r} is not named NNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise ValueError(
                f"two migrations share version {version}: {found[version].path.name}, {path.name}"
            )
        found[version] = Migration(version, m.group(2), path)
    return [found[v] for v in sorted(found)]


def split_statements(script: str) -> list[str]:
    """Splits a script at statement ends as SQLite itself sees them (semicolons inside strings,
    comments and trigger bodies do not end a statement). Needed because `executescript` commits any
    open transaction first, and a migration must run inside one."""
    out: list[str] = []
    buf: list[str] = []
    for ch in script:
        buf.append(ch)
        if ch == ";":
            stmt = "".join(buf)
            if sqlite3.complete_statement(stmt):
                if stmt.strip(" \t\r\n;"):
                    out.append(stmt.strip())
                buf = []
    rest = "".join(buf).strip()
    if rest and sqlite3.complete_statement(rest + ";"):
        out.append(rest)
    return out


class Database:
    """A SQLite file opened lazily once per thread. Call `migrate()` once at start (idempotent).

    `foreign_keys=False` leaves the schema's REFERENCES unenforced: for a file that holds only part
    of the data (the AWS runtime keeps just the job queue here, its tasks live in DynamoDB)."""

    def __init__(
        self,
        path: str | Path,
        *,
        migrations_dir: Path = MIGRATIONS_DIR,
        busy_timeout_ms: int = 10_000,
        synchronous: str = "NORMAL",
        foreign_keys: bool = True,
    ) -> None:
        if str(path) == ":memory:":
            # Each thread would get its own empty database; use a file (tmp_path in tests).
            raise ValueError("Database needs a file path, not ':memory:'")
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"bad synchronous mode {synchronous!r}")
        self.path = Path(path)
        self.migrations_dir = migrations_dir
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = synchronous.upper()
        self.foreign_keys = foreign_keys
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()

    # Connections -------------------------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            self._local.depth = 0
        return conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit; transactions are opened explicitly by `transaction()`.
        # check_same_thread=False only so `close()` may close every thread's connection at shutdown.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a crash of the process loses nothing; a power cut may lose the last commits.
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute(f"PRAGMA foreign_keys = {'ON' if self.foreign_keys else 'OFF'}")
        with self._all_lock:
            self._all.append(conn)
        return conn

    def close(self) -> None:
        """Closes every thread's connection (at shutdown, when no thread is using the database)."""
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    # Transactions ------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """`BEGIN IMMEDIATE` ... COMMIT, or ROLLBACK when the block raises. Nested use on the same
        thread becomes a SAVEPOINT, so adapters can compose (a job row and an asset in one commit)."""
        conn = self.connection()
        depth: int = self._local.depth
        if depth == 0:
            conn.execute("BEGIN IMMEDIATE")
        else:
            conn.execute(f"SAVEPOINT sp{depth}")
        self._local.depth = depth + 1
        try:
            yield conn
        except BaseException:
            self._local.depth = depth
            if depth == 0:
                # SQLite may already have rolled back by itself (disk full, interrupt).
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            else:
                conn.execute(f"ROLLBACK TO sp{depth}")
                conn.execute(f"RELEASE sp{depth}")
            raise
        self._local.depth = depth
        if depth == 0:
            conn.execute("COMMIT")
        else:
            conn.execute(f"RELEASE sp{depth}")

    # Migrations --------------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Applies the migrations not yet recorded, each in its own transaction, in version order.
        Returns the versions applied now (empty on a restart). Safe when several processes start at
        once: the version check happens under the write lock."""
        conn = self.connection()
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        applied: list[int] = []
        for mig in discover_migrations(self.migrations_dir):
            statements = split_statements(mig.path.read_text(encoding="utf-8"))
            with self.transaction() as tx:
                done = tx.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (mig.version,)
                ).fetchone()
                if done:
                    continue
                for stmt in statements:
                    tx.execute(stmt)
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (mig.version, mig.name, datetime.now(UTC).isoformat()),
                )
            applied.append(mig.version)
        return applied

    def applied_versions(self) -> list[int]:
        rows = self.connection().execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        return [int(r[0]) for r in rows]
