"""Backup and restore of the local runtime's data dir, safe while the server runs.

The SQLite databases (mediaindex.db, search/*.db) are copied with SQLite's online backup API, which
reads one consistent snapshot even while the server writes (WAL). The blob folder is copied after the
snapshots: objects are only ever replaced whole (os.replace), so every object the snapshot names is
in the archive complete; an object written after the snapshot is at worst an unreferenced extra.

A local-runtime operations tool beside the CLI, so it knows the data dir's layout (that of
adapters/local): it is not a port and no service imports it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

FORMAT = "mediaindex-backup/1"
MANIFEST = "MANIFEST.json"
# What a backup holds besides the databases: the blobs (not their tmp/ staging) and the URL secret.
_BLOB_DIRS = ("objects", "meta", "uploads")
_SECRET = "signing.key"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True)
class BackupReport:
    archive: Path
    databases: dict[str, str]  # relative path -> sha256 of the snapshot
    blob_files: int
    blob_bytes: int
    seconds: float


@dataclass(frozen=True)
class RestoreReport:
    data_dir: Path
    databases: list[str]
    blob_files: int
    meta_refreshed: int = 0


def _databases(data_dir: Path) -> list[Path]:
    main = data_dir / "mediaindex.db"
    if not main.is_file():
        raise FileNotFoundError(f"{main} does not exist: not a mediaindex data dir")
    return [main, *sorted((data_dir / "search").glob("*.db"))]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def snapshot_sqlite(src: Path, dest: Path) -> None:
    """A consistent copy of a live database (read-only on the source; waits out a writer's lock)."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)  # one step: the whole database from one read transaction
        # A single file, ready to open: WAL is switched back on by the server when it opens it.
        target.execute("PRAGMA journal_mode = DELETE")
    finally:
        target.close()
        source.close()


def backup(data_dir: Path, archive: Path) -> BackupReport:
    """Writes `archive` (a .tar, mode 0600: it holds the URL signing secret)."""
    t0 = time.monotonic()
    data_dir = data_dir.resolve()
    archive = archive.resolve()
    if archive.is_relative_to(data_dir):
        raise ValueError("the archive must be written outside the data dir")
    archive.parent.mkdir(parents=True, exist_ok=True)
    dbs: dict[str, str] = {}
    files = size = 0
    partial = archive.with_name(f".{archive.name}.{os.getpid()}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="mi-backup-") as tmp,
            os.fdopen(fd, "wb") as out,
            tarfile.open(fileobj=out, mode="w") as tar,
        ):
            # Databases first: the blobs copied next are a superset of what they reference.
            for db in _databases(data_dir):
                rel = db.relative_to(data_dir).as_posix()
                snap = Path(tmp) / rel.replace("/", "__")
                snapshot_sqlite(db, snap)
                dbs[rel] = _sha256(snap)
                tar.add(snap, arcname=rel, recursive=False)
            for sub in _BLOB_DIRS:
                root = data_dir / "blobs" / sub
                for path in sorted(root.rglob("*")) if root.is_dir() else []:
                    if not path.is_file() or path.is_symlink():
                        continue
                    try:
                        f = path.open("rb")
                    except FileNotFoundError:
                        continue  # deleted meanwhile: the snapshot no longer needs it either
                    with f:
                        # Stat the open file: a replace meanwhile cannot tear the copy.
                        info = tar.gettarinfo(arcname=path.relative_to(data_dir).as_posix(), fileobj=f)
                        tar.addfile(info, f)
                    files += 1
                    size += info.size
            secret = data_dir / _SECRET
            if secret.is_file():
                tar.add(secret, arcname=_SECRET, recursive=False)
            manifest = json.dumps(
                {"format": FORMAT, "created_at": time.time(), "databases": dbs, "blob_files": files},
                indent=1,
            ).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(manifest)
            info.mtime = int(time.time())
            tar.addfile(info, fileobj=io.BytesIO(manifest))
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    return BackupReport(archive, dbs, files, size, time.monotonic() - t0)


def _refresh_blob_meta(data_dir: Path) -> int:
    """Blob records name the inode and mtime of the file they describe (fs_blobs); restored files
    have new ones. Re-tie each record to its restored file when the size still matches, so content
    types and multipart etags survive instead of being re-derived."""
    meta_root = data_dir / "blobs" / "meta"
    objects = data_dir / "blobs" / "objects"
    refreshed = 0
    for meta in meta_root.rglob("*.json") if meta_root.is_dir() else []:
        obj = objects / meta.relative_to(meta_root).as_posix()[: -len(".json")]
        try:
            doc = json.loads(meta.read_text())
            st = obj.stat()
        except (FileNotFoundError, ValueError):
            continue
        if doc.get("size") != st.st_size:
            continue  # the record describes other bytes: the store re-hashes it on first use
        doc["ino"], doc["mtime_ns"] = st.st_ino, st.st_mtime_ns
        meta.write_text(json.dumps(doc))
        refreshed += 1
    return refreshed


def restore(archive: Path, data_dir: Path) -> RestoreReport:
    """Unpacks `archive` into `data_dir`, which must be missing or empty (never merged into data)."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise FileExistsError(f"{data_dir} is not empty: restore only into a fresh data dir")
    data_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, mode="r") as tar:
        names = tar.getnames()
        if MANIFEST not in names:
            raise ValueError(f"{archive} is not a mediaindex backup (no {MANIFEST})")
        extracted = tar.extractfile(MANIFEST)
        assert extracted is not None
        manifest = json.loads(extracted.read())
        if manifest.get("format") != FORMAT:
            raise ValueError(f"unknown backup format {manifest.get('format')!r}")
        # The `data` filter refuses absolute paths, `..`, links out of the tree and device files.
        tar.extractall(data_dir, filter="data")
    (data_dir / MANIFEST).unlink()
    problems = [
        f"{rel}: sha256 differs from the manifest"
        for rel, digest in manifest["databases"].items()
        if _sha256(data_dir / rel) != digest
    ]
    if problems:
        shutil.rmtree(data_dir)
        raise ValueError(f"the archive is damaged: {problems}")
    secret = data_dir / _SECRET
    if secret.exists():
        secret.chmod(0o600)
    blob_files = sum(1 for p in (data_dir / "blobs").rglob("*") if p.is_file())
    return RestoreReport(
        data_dir, sorted(manifest["databases"]), blob_files, meta_refreshed=_refresh_blob_meta(data_dir)
    )


# ---- CLI ---------------------------------------------------------------------------------------


def _data_dir(args: argparse.Namespace) -> Path:
    if getattr(args, "data_dir", None) is not None:
        return Path(args.data_dir)
    from mediaindex.settings import Settings

    return Settings().data_dir


def cmd_backup(args: argparse.Namespace) -> int:
    report = backup(_data_dir(args), Path(args.archive))
    print(
        json.dumps(
            {
                "archive": str(report.archive),
                "databases": report.databases,
                "blob_files": report.blob_files,
                "blob_bytes": report.blob_bytes,
                "seconds": round(report.seconds, 3),
            }
        )
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    report = restore(Path(args.archive), _data_dir(args))
    print(
        json.dumps(
            {
                "data_dir": str(report.data_dir),
                "databases": report.databases,
                "blob_files": report.blob_files,
                "meta_refreshed": report.meta_refreshed,
            }
        )
    )
    return 0
