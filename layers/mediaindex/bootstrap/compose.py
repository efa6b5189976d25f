"""Services over any set of adapters: both runtimes and the tests build them here."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from mediaindex.domain.quotas import Quotas
from mediaindex.ml.whisper_models import offered_models
from mediaindex.net import url_guard
from mediaindex.net.image_fetch import image_fetcher
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.indexes import PurgeLedger
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.query_encoder import QueryEncoder
from mediaindex.ports.search import SearchIndex
from mediaindex.ports.stores import MetadataStores
from mediaindex.ports.webhooks import EventSink
from mediaindex.services.asset_outputs import AssetOutputService
from mediaindex.services.assets import AssetService
from mediaindex.services.bundle import Services
from mediaindex.services.cleanup import CleanupService
from mediaindex.services.idempotency import IdempotencyService
from mediaindex.services.indexes import IndexService, InlinePurges, Purges, VisibleAssets
from mediaindex.services.ingest import IngestService
from mediaindex.services.keys import KeyService
from mediaindex.services.quotas import QuotaService
from mediaindex.services.reindex import ReindexService
from mediaindex.services.search import SearchService
from mediaindex.services.tasks import TaskService
from mediaindex.services.uploads import UploadService
from mediaindex.services.usage import UsageService
from mediaindex.settings import Settings

if TYPE_CHECKING:
    from mediaindex.bootstrap.runtime import Runtime
    from mediaindex.services.transfer import TransferService

log = logging.getLogger(__name__)
Background = Callable[[Callable[[], None]], None]


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
    purges: Purges | None = None,
    purge_ledger: PurgeLedger | None = None,
    events: EventSink | None = None,
) -> Services:
    """`purges`: how deleted indexes are purged (durable jobs where a worker pool runs); without
    one, inline in bounded batches, noted in `purge_ledger` for the sweep to finish. `events`:
    where `index.reindexed` goes (the runtime's webhooks)."""
    cleanup = CleanupService(
        assets=stores.assets,
        indexes=stores.indexes,
        tasks=stores.tasks,
        blobs=blobs,
        search=search_index,
        orchestrator=orchestrator,
    )
    if purges is None:
        purges = InlinePurges(
            stores.indexes,
            cleanup,
            purge_ledger,
            batch=settings.purge_batch_assets,
            budget_s=settings.purge_inline_budget_s,
        )
    indexes = IndexService(stores.indexes, cleanup, purges)
    ingest = IngestService(stores.assets, stores.tasks, orchestrator)
    # What the API reads: the assets of an index being deleted are gone at once.
    visible = VisibleAssets(stores.assets, stores.indexes)

    def check_url(url: str) -> None:
        url_guard.check_url(url, allow_private=settings.allow_private_urls)

    search = SearchService(
        indexes=stores.indexes,
        assets=stores.assets,  # it checks the index itself (a deleting one is not found)
        outputs=stores.outputs,
        index=search_index,
        encoder=encoder,
        blobs=blobs,
        image_loader=image_fetcher(
            allow_private=settings.allow_private_urls,
            timeout_s=settings.fetch_timeout_s,
            max_redirects=settings.fetch_max_redirects,
            deadline_s=settings.query_image_deadline_s,
            slots=settings.query_image_fetch_slots,
        ),
        url_ttl_s=settings.download_url_ttl_s,
        default_transcription=settings.whisper_model,
    )
    uploads = UploadService(visible, blobs, ingest, settings)
    assets = AssetService(visible, blobs, indexes, ingest, cleanup, uploads, settings, check_url)
    usage = UsageService(stores.assets, stores.outputs, stores.indexes, stores.tasks)
    # The operator's default for every tenant; an admin may set its own (PUT /v1/quotas).
    defaults = Quotas(requests_per_minute=settings.rate_limit_per_minute or None)
    return Services(
        settings=settings,
        keys=KeyService(stores.keys),
        quotas=QuotaService(stores.keys, usage, defaults),
        indexes=indexes,
        assets=assets,
        uploads=uploads,
        outputs=AssetOutputService(assets, stores.outputs, blobs, settings),
        tasks=TaskService(visible, stores.tasks, orchestrator),
        ingest=ingest,
        usage=usage,
        idempotency=IdempotencyService(
            stores.idempotency,
            settings.idempotency_ttl_s,
            lease_s=settings.idempotency_lease_s,
            wait_s=settings.idempotency_wait_s,
        ),
        search=search,
        reindex=build_reindex(settings, stores, orchestrator, search_index, events),
    )


def build_reindex(
    settings: Settings,
    stores: MetadataStores,
    orchestrator: Orchestrator,
    search_index: SearchIndex,
    events: EventSink | None,
) -> ReindexService:
    return ReindexService(
        indexes=stores.indexes,
        assets=stores.assets,
        tasks=stores.tasks,
        orchestrator=orchestrator,
        search=search_index,
        offered_transcription=lambda: offered_models(settings.whisper_model, settings.whisper_models_offered),
        default_transcription=settings.whisper_model,
        events=events,
        concurrency=settings.reindex_concurrency,
    )


def transfer_service(runtime: Runtime) -> TransferService:
    """Export and import over a runtime's own stores and blobs (the CLI's and the tests')."""
    from mediaindex import __version__
    from mediaindex.services.transfer import TransferService

    return TransferService(
        keys=runtime.stores.keys,
        indexes=runtime.stores.indexes,
        assets=runtime.stores.assets,
        outputs=runtime.stores.outputs,
        blobs=runtime.blobs,
        reindex=runtime.services.reindex,
        version=__version__,
    )
