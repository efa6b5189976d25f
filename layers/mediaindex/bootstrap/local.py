"""The embedded runtime: SQLite, a blob folder with HMAC-signed URLs served by the app, the
in-process worker pool, the embedded search index, the models of this machine.

The blob folder has no bucket lifecycle rules: a sweeper thread does their work every
`upload_sweep_interval_s`, ending multipart uploads idle past `stale_upload_after_s` (their assets
`failed` with `upload_expired`) and removing what half-written uploads left."""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import threading
from collections.abc import Callable

from mediaindex.adapters.local.blob_routes import build_local_blob_router
from mediaindex.adapters.local.fs_blobs import LocalBlobStore
from mediaindex.adapters.local.sqlite import open_stores
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.bootstrap.compose import thread_background
from mediaindex.bootstrap.in_process import in_process_runtime
from mediaindex.bootstrap.pipeline import preload_models
from mediaindex.bootstrap.reconcile import start_local_reconciler
from mediaindex.bootstrap.runtime import Runtime
from mediaindex.bootstrap.search import build_search_index
from mediaindex.bootstrap.webhooks import build_local_webhooks
from mediaindex.domain.blob_keys import parse_original_key
from mediaindex.ports.blobs import BlobInfo
from mediaindex.services.ingest import Landing
from mediaindex.services.uploads import UploadService
from mediaindex.settings import Settings

DATABASE_FILE = "mediaindex.db"
log = logging.getLogger(__name__)


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
    # The embedded index, or OpenSearch when MEDIAINDEX_OPENSEARCH_URL says so (the upgrade path).
    search_index, close_search = build_search_index(settings)
    hooks = build_local_webhooks(settings, db)
    runtime = in_process_runtime(
        settings,
        jobs_db=db,
        stores=stores,
        blobs=blobs,
        search_index=search_index,
        background=thread_background,
        start_workers=settings.start_workers if start_workers is None else start_workers,
        events=hooks.webhooks.notifier,
    )
    runtime.webhooks = hooks.webhooks
    runtime.services = dataclasses.replace(runtime.services, webhooks=hooks.webhooks.service)
    if close_search is not None:
        runtime.closers.insert(0, close_search)
    ingest = runtime.services.ingest

    def original_wanted(key: str) -> bool:
        parsed = parse_original_key(key)
        return parsed is None or ingest.awaits_original(parsed[0], parsed[1])

    def original_created(key: str, info: BlobInfo) -> bool:
        """False when the asset no longer wants it: the router then deletes it again."""
        parsed = parse_original_key(key)
        if not parsed:
            return True
        landing, _ = ingest.original_landed(parsed[0], parsed[1], size=info.size, etag=info.etag, key=key)
        return landing != Landing.UNWANTED

    # Signed PUTs land through the app itself: its blob routes tell ingest an original arrived.
    runtime.routers.append(build_local_blob_router(blobs, original_created, original_wanted))
    workers = settings.start_workers if start_workers is None else start_workers
    if workers and settings.preload_models and runtime.runner is not None:
        # A serving process loads them before its first asset, at its workers' priority.
        preload_models(runtime.runner.models, nice=settings.background_nice)
    if workers and settings.upload_sweep_interval_s > 0:
        sweeper = Periodic(
            settings.upload_sweep_interval_s,
            lambda: sweep_stale_uploads(blobs, runtime.services.uploads, settings),
            name="mi-upload-sweeper",
        )
        sweeper.start()
        runtime.closers.append(sweeper.stop)  # stopped first, before the pool and the database
    if workers:
        hooks.loop.start()
        runtime.closers.append(hooks.loop.stop)  # before the database closes
        start_local_reconciler(runtime, db)  # tasks whose plan ended unsettled, or never ends
    return runtime


def sweep_stale_uploads(blobs: LocalBlobStore, uploads: UploadService, settings: Settings) -> int:
    """Ends the multipart uploads idle past the threshold (never less than the upload URL TTL):
    their assets `failed` with `upload_expired`, their parts removed, with what half-written
    uploads left in the temp folder. Returns how many assets were expired."""
    older_than_s = max(settings.stale_upload_after_s, settings.upload_url_ttl_s)
    expired = 0
    for key, upload_id in blobs.stale_uploads(older_than_s):
        parsed = parse_original_key(key)
        if parsed is None:
            continue
        try:
            expired += uploads.expire_upload(parsed[0], parsed[1], upload_id)
        except Exception:
            log.exception("expiring a stale upload failed", extra={"upload_id": upload_id})
    removed = blobs.cleanup_stale_uploads(older_than_s)
    if expired or removed:
        log.info("stale uploads swept", extra={"expired_assets": expired, "removed_uploads": removed})
    return expired


class Periodic:
    """Runs `fn` every `interval_s` on a daemon thread until stopped; a failure is logged, not fatal."""

    def __init__(self, interval_s: float, fn: Callable[[], object], *, name: str) -> None:
        self._interval = interval_s
        self._fn = fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._fn()
            except Exception:
                log.exception("periodic task %s failed", self._thread.name)
