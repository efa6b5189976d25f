"""Services over any set of adapters: both runtimes and the tests build them here."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mediaindex.net import url_guard
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.query_encoder import QueryEncoder
from mediaindex.ports.search import SearchIndex
from mediaindex.ports.stores import MetadataStores
from mediaindex.services.asset_outputs import AssetOutputService
from mediaindex.services.assets import AssetService
from mediaindex.services.bundle import Services
from mediaindex.services.cleanup import CleanupService
from mediaindex.services.idempotency import IdempotencyService
from mediaindex.services.indexes import Background, IndexService
from mediaindex.services.ingest import IngestService
from mediaindex.services.keys import KeyService
from mediaindex.services.search import SearchService
from mediaindex.services.tasks import TaskService
from mediaindex.services.usage import UsageService
from mediaindex.settings import Settings

log = logging.getLogger(__name__)


def thread_background(fn: Callable[[], None]) -> None:
    """Runs `fn` on a daemon thread (a long-lived server)."""

    def run() -> None:
        try:
            fn()
        except Exception:
            log.exception("background work failed")

    threading.Thread(target=run, name="mi-background", daemon=True).start()


def inline_background(fn: Callable[[], None]) -> None:
    """Runs `fn` before answering (a Lambda is frozen after its answer: a thread would stall)."""
    fn()


def compose_services(
    settings: Settings,
    *,
    stores: MetadataStores,
    blobs: BlobStore,
    orchestrator: Orchestrator,
    search_index: SearchIndex,
    encoder: QueryEncoder,
    background: Background,
) -> Services:
    cleanup = CleanupService(
        assets=stores.assets,
        indexes=stores.indexes,
        tasks=stores.tasks,
        blobs=blobs,
        search=search_index,
        orchestrator=orchestrator,
    )
    indexes = IndexService(stores.indexes, cleanup, background)
    ingest = IngestService(stores.assets, stores.tasks, orchestrator)

    def check_url(url: str) -> None:
        url_guard.check_url(url, allow_private=settings.allow_private_urls)

    search = SearchService(
        indexes=stores.indexes,
        assets=stores.assets,
        outputs=stores.outputs,
        index=search_index,
        encoder=encoder,
        blobs=blobs,
        image_loader=url_guard.image_fetcher(
            allow_private=settings.allow_private_urls,
            timeout_s=settings.fetch_timeout_s,
            max_redirects=settings.fetch_max_redirects,
        ),
        url_ttl_s=settings.download_url_ttl_s,
    )
    assets = AssetService(stores.assets, blobs, indexes, ingest, cleanup, settings, check_url)
    return Services(
        settings=settings,
        keys=KeyService(stores.keys),
        indexes=indexes,
        assets=assets,
        outputs=AssetOutputService(assets, stores.outputs, blobs, settings),
        tasks=TaskService(stores.assets, stores.tasks, orchestrator),
        ingest=ingest,
        usage=UsageService(stores.assets, stores.outputs),
        idempotency=IdempotencyService(stores.idempotency, settings.idempotency_ttl_s),
        search=search,
    )
