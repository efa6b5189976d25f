"""The pipeline runner over a runtime's adapters: what every executor calls to run a step."""

from __future__ import annotations

import logging
import threading

from mediaindex.adapters.local.cpu_priority import lower_this_thread
from mediaindex.ml.registry import ModelRegistry
from mediaindex.pipeline.steps import get_step
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.search import SearchIndex
from mediaindex.ports.stores import MetadataStores
from mediaindex.ports.webhooks import EventSink
from mediaindex.services.pipeline import PipelineRunner
from mediaindex.settings import Settings

log = logging.getLogger(__name__)


def build_runner(
    settings: Settings,
    stores: MetadataStores,
    blobs: BlobStore,
    search_index: SearchIndex,
    models: ModelRegistry,
    events: EventSink | None = None,
) -> PipelineRunner:
    return PipelineRunner(
        assets=stores.assets,
        tasks=stores.tasks,
        outputs=stores.outputs,
        blobs=blobs,
        search=search_index,
        models=models,
        settings=settings,
        step_loader=get_step,
        events=events,
        indexes=stores.indexes,
    )


def preload_models(models: ModelRegistry, *, nice: int = 0) -> threading.Thread:
    """Loads the pipeline's models on a daemon thread, in the order a new asset needs them, so the
    first asset after a start does not wait for them (the text encoder alone takes seconds). A
    model that fails to load is only logged here: the step that needs it fails on its asset.
    `nice`: the thread runs that far below the caller's CPU priority, and so do the threads the
    models start there (CTranslate2's workers), as the workers that use them do."""

    def load() -> None:
        lower_this_thread(nice)
        for name, get in (
            ("transcriber", models.transcriber),
            ("text_encoder", models.text_encoder),
            ("clip", models.clip),
        ):
            try:
                get()
            except Exception:
                log.warning("preloading a model failed", extra={"model": name}, exc_info=True)

    thread = threading.Thread(target=load, name="mi-model-preload", daemon=True)
    thread.start()
    return thread
