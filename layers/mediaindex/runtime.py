"""Wiring: builds the Services of one runtime from Settings. The only module that knows which
adapter serves which port; everything above it sees ports."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mediaindex.container import Services
from mediaindex.pipeline import url_guard
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.metadata import MetadataStore
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.search import SearchIndex
from mediaindex.services.assets import AssetService
from mediaindex.services.cleanup import CleanupService
from mediaindex.services.idempotency import IdempotencyService
from mediaindex.services.indexes import Background, IndexService
from mediaindex.services.ingest import IngestService
from mediaindex.services.keys import KeyService
from mediaindex.services.tasks import TaskService
from mediaindex.services.usage import UsageService
from mediaindex.settings import Settings

log = logging.getLogger(__name__)


def _thread_background(fn: Callable[[], None]) -> None:
    def run() -> None:
        try:
            fn()
        except Exception:
            log.exception("background work failed")

    threading.Thread(target=run, name="mi-background", daemon=True).start()


def _inline_background(fn: Callable[[], None]) -> None:
    fn()


def compose(
    settings: Settings,
    *,
    metadata: MetadataStore,
    blobs: BlobStore,
    orchestrator: Orchestrator,
    search_index: SearchIndex,
    background: Background,
    search: Any = None,
) -> Services:
    """Builds the services over any set of adapters (both runtimes and the tests use this)."""
    cleanup = CleanupService(metadata, blobs, search_index, orchestrator)
    indexes = IndexService(metadata, cleanup, background)
    ingest = IngestService(metadata, orchestrator)

    def check_url(url: str) -> None:
        url_guard.check_url(url, allow_private=settings.allow_private_urls)

    return Services(
        settings=settings,
        metadata=metadata,
        blobs=blobs,
        orchestrator=orchestrator,
        search_index=search_index,
        keys=KeyService(metadata),
        indexes=indexes,
        assets=AssetService(metadata, blobs, indexes, ingest, cleanup, settings, check_url),
        tasks=TaskService(metadata, orchestrator),
        ingest=ingest,
        usage=UsageService(metadata),
        idempotency=IdempotencyService(metadata, settings.idempotency_ttl_s),
        search=search,
    )


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


def build_local(settings: Settings, *, start_workers: bool | None = None) -> Services:
    """The embedded runtime: SQLite, a blob folder, the in-process worker pool, the embedded index."""
    from mediaindex.adapters.local.embedded_search import EmbeddedSearchIndex
    from mediaindex.adapters.local.fs_blobs import LocalBlobStore
    from mediaindex.adapters.local.job_queue import JobQueue
    from mediaindex.adapters.local.sqlite_db import Database
    from mediaindex.adapters.local.sqlite_store import SqliteMetadataStore
    from mediaindex.adapters.local.worker_pool import LocalOrchestrator, WorkerPool
    from mediaindex.api.routes.local_blobs import build_local_blob_router
    from mediaindex.ml.registry import ModelRegistry
    from mediaindex.pipeline.steps import get_step
    from mediaindex.services.pipeline import PipelineRunner
    from mediaindex.services.search import RegistryQueryEncoders

    data: Path = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    db = Database(data / "mediaindex.db")
    db.migrate()
    metadata = SqliteMetadataStore(db)
    blobs = LocalBlobStore(
        data / "blobs", settings.base_url, signing_secret(settings), max_object_bytes=settings.max_asset_bytes
    )
    search_index = EmbeddedSearchIndex(data / "search")
    queue = JobQueue(db)
    orchestrator = LocalOrchestrator(queue, metadata, max_attempts=settings.job_max_attempts)
    models = ModelRegistry(settings)
    services = compose(
        settings,
        metadata=metadata,
        blobs=blobs,
        orchestrator=orchestrator,
        search_index=search_index,
        background=_thread_background,
        search=search_service(settings, metadata, search_index, blobs, RegistryQueryEncoders(models)),
    )
    runner = PipelineRunner(metadata, blobs, search_index, models, settings, get_step)
    pool = WorkerPool(
        queue, runner, orchestrator.wakeup, workers=settings.workers, backoff_s=settings.job_retry_backoff_s
    )

    def original_created(key: str, info: Any) -> None:
        from mediaindex.domain.blob_keys import parse_original_key

        parsed = parse_original_key(key)
        if parsed:
            services.ingest.original_uploaded(parsed[1], size=info.size, etag=info.etag)

    services.extras.update(
        local_blob_router=build_local_blob_router(blobs, original_created),
        worker_pool=pool,
        runner=runner,
        queue=queue,
    )
    if settings.start_workers if start_workers is None else start_workers:
        pool.start()
        services.closers.append(pool.stop)
    services.closers.append(db.close)
    close_search = getattr(search_index, "close", None)
    if callable(close_search):
        services.closers.append(close_search)
    return services


def search_service(
    settings: Settings, metadata: MetadataStore, index: SearchIndex, blobs: BlobStore, encoders: Any
) -> Any:
    from mediaindex.services.search import SearchService

    loader = url_guard.image_fetcher(
        allow_private=settings.allow_private_urls,
        timeout_s=settings.fetch_timeout_s,
        max_redirects=settings.fetch_max_redirects,
    )
    return SearchService(
        metadata, index, encoders, blobs, image_loader=loader, url_ttl_s=settings.download_url_ttl_s
    )


def build_services(settings: Settings) -> Services:
    if settings.runtime == "aws":
        from mediaindex.runtime_aws import build_aws

        return build_aws(settings)
    return build_local(settings)
