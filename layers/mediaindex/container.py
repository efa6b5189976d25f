"""The services of one runtime, wired once at start. Built by mediaindex.runtime; handed to the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.metadata import MetadataStore
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.search import SearchIndex
from mediaindex.services.assets import AssetService
from mediaindex.services.idempotency import IdempotencyService
from mediaindex.services.indexes import IndexService
from mediaindex.services.ingest import IngestService
from mediaindex.services.keys import KeyService
from mediaindex.services.tasks import TaskService
from mediaindex.services.usage import UsageService
from mediaindex.settings import Settings


@dataclass
class Services:
    settings: Settings
    metadata: MetadataStore
    blobs: BlobStore
    orchestrator: Orchestrator
    search_index: SearchIndex
    keys: KeyService
    indexes: IndexService
    assets: AssetService
    tasks: TaskService
    ingest: IngestService
    usage: UsageService
    idempotency: IdempotencyService
    search: Any = None  # services.search.SearchService, wired when the search backend is available
    # Runtime-only pieces the app mounts (the local blob router) and what to stop at shutdown.
    extras: dict[str, Any] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for fn in reversed(self.closers):
            fn()
        self.closers.clear()
