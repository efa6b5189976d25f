"""The embedded runtime: SQLite, a blob folder with HMAC-signed URLs served by the app, the
in-process worker pool, the embedded search index, the models of this machine."""

from __future__ import annotations

import os
import secrets

from mediaindex.adapters.local.blob_routes import build_local_blob_router
from mediaindex.adapters.local.embedded_search import EmbeddedSearchIndex
from mediaindex.adapters.local.fs_blobs import LocalBlobStore
from mediaindex.adapters.local.sqlite import open_stores
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.bootstrap.compose import thread_background
from mediaindex.bootstrap.in_process import in_process_runtime
from mediaindex.bootstrap.runtime import Runtime
from mediaindex.domain.blob_keys import parse_original_key
from mediaindex.ports.blobs import BlobInfo
from mediaindex.settings import Settings

DATABASE_FILE = "mediaindex.db"


def signing_secret(settings: Settings) -> bytes:
    """The configured secret, else one generated once into the data dir (mode 0600)."""
    if settings.signing_secret is not None:
        return settings.signing_secret.get_secret_value().encode()
    path = settings.data_dir / "signing.key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def build_local(settings: Settings, *, start_workers: bool | None = None) -> Runtime:
    """`start_workers` overrides the setting (one-shot commands and tests drive the pool themselves)."""
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    db = Database(data / DATABASE_FILE)
    db.migrate()
    stores = open_stores(db)
    blobs = LocalBlobStore(
        data / "blobs", settings.base_url, signing_secret(settings), max_object_bytes=settings.max_asset_bytes
    )
    search_index = EmbeddedSearchIndex(data / "search")
    runtime = in_process_runtime(
        settings,
        jobs_db=db,
        stores=stores,
        blobs=blobs,
        search_index=search_index,
        background=thread_background,
        start_workers=settings.start_workers if start_workers is None else start_workers,
    )
    runtime.closers.insert(0, search_index.close)
    ingest = runtime.services.ingest

    def original_created(key: str, info: BlobInfo) -> None:
        parsed = parse_original_key(key)
        if parsed:
            ingest.original_uploaded(parsed[0], parsed[1], size=info.size, etag=info.etag)

    # Signed PUTs land through the app itself: its blob routes tell ingest an original arrived.
    runtime.routers.append(build_local_blob_router(blobs, original_created))
    return runtime
