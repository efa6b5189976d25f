"""A runtime whose pipeline runs in this process: durable job rows in SQLite and a pool of worker
threads over the runtime's adapters, the models of this machine, and queries embedded by them. The
local runtime is one; the aws runtime is another when no state machine is deployed."""

from __future__ import annotations

from mediaindex.adapters.local.job_queue import JobQueue
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.adapters.local.worker_pool import LocalOrchestrator, WorkerPool
from mediaindex.bootstrap.compose import Background, compose_services
from mediaindex.bootstrap.pipeline import build_runner
from mediaindex.bootstrap.runtime import LocalExecutor, Runtime
from mediaindex.ml.query_encoder import ModelQueryEncoder
from mediaindex.ml.registry import ModelRegistry
from mediaindex.net.budget import abort_in_flight
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.search import SearchIndex
from mediaindex.ports.step_runner import StepRunner
from mediaindex.ports.stores import MetadataStores
from mediaindex.ports.webhooks import EventSink
from mediaindex.services.reindex import ReindexProgress
from mediaindex.settings import Settings


class JobPurges:
    """Index purges as durable job rows of the local job store, run by the worker pool one batch
    at a time and resumed after a restart. Where the pool's workers are not started (tests,
    one-shot commands) `background` runs the queued purges instead (a thread, or inline)."""

    def __init__(self, executor: LocalExecutor, *, workers_started: bool, background: Background) -> None:
        self._executor = executor
        self._workers_started = workers_started
        self._background = background

    def requested(self, tenant_id: str, index_id: str) -> None:
        pass  # the row is written once the index is marked; a start-up finds marks without rows

    def start(self, tenant_id: str, index_id: str) -> None:
        self._executor.queue.enqueue_purge(tenant_id, index_id)
        self._kick()

    def resume(self, *, budget_s: float) -> int:
        self._kick()  # the rows resume themselves; this only wakes whoever runs them
        return 0

    def _kick(self) -> None:
        if self._workers_started:
            self._executor.orchestrator.wakeup.set()
        else:
            self._background(self._run_purges)

    def _run_purges(self) -> None:
        self._executor.pool.run_purges()


def build_executor(db: Database, runner: StepRunner, settings: Settings) -> LocalExecutor:
    queue = JobQueue(db)
    orchestrator = LocalOrchestrator(queue, max_attempts=settings.job_max_attempts)
    pool = WorkerPool(
        queue,
        runner,
        orchestrator.wakeup,
        workers=settings.workers,
        backoff_s=settings.job_retry_backoff_s,
        nice=settings.background_nice,
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
    events: EventSink | None = None,
) -> Runtime:
    """The runtime over these adapters; `jobs_db` (the job rows) is closed with it, after the pool.
    `events`: where the runner reports settled tasks (webhooks)."""
    models = ModelRegistry(settings)
    # Settled tasks go to the webhooks and move re-indexes on (bound once the services exist).
    progress = ReindexProgress(events)
    runner = build_runner(settings, stores, blobs, search_index, models, progress)
    executor = build_executor(jobs_db, runner, settings)
    services = compose_services(
        settings,
        stores=stores,
        blobs=blobs,
        orchestrator=executor.orchestrator,
        search_index=search_index,
        encoder=ModelQueryEncoder(models),
        purges=JobPurges(executor, workers_started=start_workers, background=background),
        events=events,
    )
    progress.bind(services.reindex)
    indexes = services.indexes
    executor.pool.set_purger(
        lambda tenant_id, index_id: indexes.purge_batch(
            tenant_id, index_id, max_assets=settings.purge_batch_assets
        )
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
    # Closers run last-in first: the pool stops (its workers, and a purge run on a background
    # thread where none were started) before the database closes.
    runtime.closers.append(executor.pool.stop)
    # First of all at close: abort in-flight URL fetches, so workers and request threads stuck on
    # a slow source return at once (their jobs stay `running`, resumed by the next start).
    runtime.closers.append(abort_in_flight)
    return runtime
