"""The use cases of one runtime, as the API and the CLI see them. Built by mediaindex.bootstrap."""

from __future__ import annotations

from dataclasses import dataclass

from mediaindex.services.asset_outputs import AssetOutputService
from mediaindex.services.assets import AssetService
from mediaindex.services.idempotency import IdempotencyService
from mediaindex.services.indexes import IndexService
from mediaindex.services.ingest import IngestService
from mediaindex.services.keys import KeyService
from mediaindex.services.quotas import QuotaService
from mediaindex.services.reindex import ReindexService
from mediaindex.services.search import SearchService
from mediaindex.services.tasks import TaskService
from mediaindex.services.uploads import UploadService
from mediaindex.services.usage import UsageService
from mediaindex.services.webhooks import WebhookService
from mediaindex.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    keys: KeyService
    indexes: IndexService
    assets: AssetService
    uploads: UploadService
    outputs: AssetOutputService
    tasks: TaskService
    ingest: IngestService
    usage: UsageService
    idempotency: IdempotencyService
    search: SearchService
    quotas: QuotaService
    reindex: ReindexService
    # None where the runtime has no delivery path (webhook routes answer 503 webhooks_unavailable).
    webhooks: WebhookService | None = None
