"""A runtime whose pipeline runs in this process: durable job rows in SQLite and a pool of worker
threads over the runtime's adapters, the models of this machine, and queries embedded by them. The
local runtime is one; the aws runtime is another when no state machine is deployed."""

from __future__ import annotations

from mediaindex.adapters.local.job_queue import JobQueue
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.adapters.local.worker_pool import LocalOrchestrator, WorkerPool
from mediaindex.bootstrap.compose import compose_services
from mediaindex.bootstrap.pipeline import build_runner
from mediaindex.bootstrap.runtime import LocalExecutor, Runtime
from mediaindex.ml.query_encoder import ModelQueryEncoder
from mediaindex.ml.registry import ModelRegistry
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.search import SearchIndex
from mediaindex.ports.step_runner import StepRunner
from mediaindex.ports.stores import MetadataStores
from mediaindex.services.indexes import Background
from mediaindex.settings import Settings


def build_executor(db: Database, runner: StepRunner, settings: Settings) -> LocalExecutor:
    queue = JobQueue(db)
    orchestrator = LocalOrchestrator(queue, max_attempts=settings.job_max_attempts)
    pool = WorkerPool(
        queue, runner, orchestrator.wakeup, workers=settings.workers, backoff_s=settings.job_retry_backoff_s
    )
    return LocalExecutor(queue=queue, pool=pool, orchestrator=orchestrator)


def in_process_runtime(
    settings: Settings,
    *,
    jobs_db: Database,
    stores: MetadataStores,
    blobs: BlobStore,
    search_index: SearchIndex,
    background: Background,
    start_workers: bool,
) -> Runtime:
    """The runtime over these adapters; `jobs_db` (the job rows) is closed with it, after the pool."""
    models = ModelRegistry(settings)
    runner = build_runner(settings, stores, blobs, search_index, models)
    executor = build_executor(jobs_db, runner, settings)
    services = compose_services(
        settings,
        stores=stores,
        blobs=blobs,
        orchestrator=executor.orchestrator,
        search_index=search_index,
        encoder=ModelQueryEncoder(models),
        background=background,
    )
    runtime = Runtime(
        settings=settings,
        stores=stores,
        blobs=blobs,
        search_index=search_index,
        orchestrator=executor.orchestrator,
        services=services,
        runner=runner,
        executor=executor,
    )
    runtime.closers.append(jobs_db.close)
    if start_workers:
        executor.pool.start()
        runtime.closers.append(executor.pool.stop)  # closers run last-in first: the pool stops first
    return runtime
