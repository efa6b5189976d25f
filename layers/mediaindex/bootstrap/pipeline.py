"""The pipeline runner over a runtime's adapters: what every executor calls to run a step."""

from __future__ import annotations

from mediaindex.ml.registry import ModelRegistry
from mediaindex.pipeline.steps import get_step
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.search import SearchIndex
from mediaindex.ports.stores import MetadataStores
from mediaindex.services.pipeline import PipelineRunner
from mediaindex.settings import Settings


def build_runner(
    settings: Settings,
    stores: MetadataStores,
    blobs: BlobStore,
    search_index: SearchIndex,
    models: ModelRegistry,
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
    )
