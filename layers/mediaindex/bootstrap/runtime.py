"""What the composition root builds: one typed Runtime per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.search import SearchIndex
from mediaindex.ports.stores import MetadataStores
from mediaindex.services.bundle import Services
from mediaindex.settings import Settings

if TYPE_CHECKING:  # adapters are imported by the builders only, when a runtime uses them
    from fastapi import APIRouter

    from mediaindex.adapters.aws.clients import AwsClients
    from mediaindex.adapters.aws.upload_queue import UploadQueueWatcher
    from mediaindex.adapters.local.job_queue import JobQueue
    from mediaindex.adapters.local.worker_pool import LocalOrchestrator, WorkerPool
    from mediaindex.services.pipeline import PipelineRunner
    from mediaindex.services.webhooks import Webhooks


@dataclass(frozen=True)
class LocalExecutor:
    """The in-process executor: durable job rows in SQLite and a pool of worker threads."""

    queue: JobQueue
    pool: WorkerPool
    orchestrator: LocalOrchestrator


@dataclass
class Runtime:
    settings: Settings
    stores: MetadataStores
    blobs: BlobStore
    search_index: SearchIndex
    orchestrator: Orchestrator
    services: Services
    # Where this process runs pipeline steps itself (local, or aws without a state machine).
    runner: PipelineRunner | None = None
    executor: LocalExecutor | None = None
    # aws without a state machine: uploads are learnt from the S3 -> SQS queue.
    upload_watcher: UploadQueueWatcher | None = None
    aws_clients: AwsClients | None = None
    # Webhook subscriptions and deliveries; None on an aws runtime without a queue and a KMS key.
    webhooks: Webhooks | None = None
    # HTTP routes of an adapter (the local blob store's signed URLs), mounted by the app.
    routers: list[APIRouter] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Stops what the runtime started, last started first."""
        for fn in reversed(self.closers):
            fn()
        self.closers.clear()
