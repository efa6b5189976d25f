"""Wiring of the AWS runtime: DynamoDB, S3, Step Functions and OpenSearch behind the same ports.

Search index: OpenSearch when `settings.opensearch_url` is set; otherwise the embedded index in
`settings.data_dir` (per process: fine for `mediaindex serve --runtime aws` against moto and for
tests, not for a deployment, where infra always sets the URL).

Orchestrator: Step Functions when `settings.state_machine_arn` is set. Without it (moto, a laptop
against LocalStack) the pipeline runs in-process: the local worker pool and its SQLite job queue in
`data_dir`, over the AWS adapters - `InProcessPipeline` below. Deployed Lambdas always get the ARN.
There is no EventBridge rule either then, so uploads are learnt from the SQS queue `mediaindex aws
init` makes (`extras["upload_queue"]`, an UploadQueueWatcher, polling while the workers run).

`extras["runner"]` is the PipelineRunner over these adapters. The Batch entrypoint and the
pipeline-events Lambda use `build_aws_runner` (the runner alone), the upload-event Lambda
`build_aws_ingest`: each builds only what it calls, for cold start and least privilege."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from mediaindex.adapters.aws.clients import AwsClients, LazyClient
from mediaindex.container import Services
from mediaindex.ports.blobs import BlobStore
from mediaindex.ports.metadata import MetadataStore
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.search import SearchIndex
from mediaindex.runtime import _inline_background, compose, search_service
from mediaindex.services.ingest import IngestService
from mediaindex.settings import Settings

if TYPE_CHECKING:
    from mediaindex.services.pipeline import PipelineRunner

log = logging.getLogger(__name__)

# What the in-process fallback keeps in data_dir (its job rows only; metadata stays in DynamoDB).
FALLBACK_DB = "aws-inprocess-jobs.db"


def build_aws(settings: Settings, *, clients: AwsClients | None = None) -> Services:
    """The AWS runtime's services. `clients` defaults to boto3 clients made on first use in
    `settings.aws_region` (the endpoint from AWS_ENDPOINT_URL when set)."""
    clients = clients or AwsClients(region=settings.aws_region)
    metadata, blobs = _stores(settings, clients)
    search_index, close_search = _search_index(settings)
    closers: list[Any] = [close_search] if close_search else []

    orchestrator: Orchestrator
    extras: dict[str, Any] = {"clients": clients}
    models: Any = None
    if not (settings.state_machine_arn and settings.query_encoder_function):
        # Models and the runner only where they run here: the deployed API Lambda has Step Functions
        # and the encoder Lambda, and skips importing them (and numpy) at cold start.
        from mediaindex.ml.registry import ModelRegistry
        from mediaindex.pipeline.steps import get_step
        from mediaindex.services.pipeline import PipelineRunner

        models = ModelRegistry(settings)
        extras["runner"] = PipelineRunner(metadata, blobs, search_index, models, settings, get_step)
    if settings.state_machine_arn:
        orchestrator = _step_functions(settings.state_machine_arn, clients, metadata)
    else:
        fallback = InProcessPipeline(settings, metadata, extras["runner"])
        orchestrator = fallback.orchestrator
        extras.update(worker_pool=fallback.pool, queue=fallback.queue)
        closers.append(fallback.close)

    services = compose(
        settings,
        metadata=metadata,
        blobs=blobs,
        orchestrator=orchestrator,
        search_index=search_index,
        background=_inline_background,
        search=search_service(
            settings, metadata, search_index, blobs, _query_encoders(settings, clients, models)
        ),
    )
    services.extras.update(extras)
    services.closers.extend(closers)
    if settings.bootstrap_key_secret_arn:
        ensure_bootstrap_key(services, clients.get("secretsmanager"), settings.bootstrap_key_secret_arn)
    if not settings.state_machine_arn:
        watcher = _upload_queue_watcher(settings, clients, services.ingest)
        if watcher is not None:
            services.extras["upload_queue"] = watcher
            if settings.start_workers:
                watcher.start()
            services.closers.append(watcher.stop)  # closers run last-in first: before the pool and DB
    return services


def _upload_queue_watcher(settings: Settings, clients: AwsClients, ingest: IngestService) -> Any:
    """The watcher of the upload queue (the setting's URL, else the queue found by name), or None
    when there is none: then uploads are noticed only through the API's own calls."""
    from mediaindex.adapters.aws.upload_queue import UploadQueueWatcher, find_upload_queue
    from mediaindex.errors import UnavailableError

    sqs = clients.get("sqs")
    url = settings.upload_queue_url
    if url is None:
        try:
            url = find_upload_queue(sqs, settings.upload_queue_name)
        except UnavailableError as e:
            log.warning("upload queue not usable: %s", e)
            return None
    if url is None:
        # Loud only when serving: one-shot commands (`keys create`) never watch anyway.
        log.log(
            logging.WARNING if settings.start_workers else logging.INFO,
            "no upload queue %r (run `mediaindex aws init`): uploads to presigned URLs go unnoticed",
            settings.upload_queue_name,
        )
        return None
    return UploadQueueWatcher(sqs, url, ingest, bucket=settings.bucket_name)


def ensure_bootstrap_key(services: Services, secrets: Any, secret_arn: str) -> None:
    """The stack's generated first key works once its hash is in the table: one GetSecretValue and
    one read per cold start. The key is never logged."""
    try:
        raw = secrets.get_secret_value(SecretId=secret_arn)["SecretString"]
    except (ClientError, BotoCoreError) as e:
        # Serving must not depend on it: existing keys still work; the next cold start retries.
        log.warning("bootstrap key secret unreadable", extra={"error": type(e).__name__})
        return
    services.keys.ensure_key(services.settings.bootstrap_tenant, raw)


def _query_encoders(settings: Settings, clients: AwsClients, models: Any) -> Any:
    """The encoder Lambda when one is configured (the deployment); else the models in-process
    (`serve --runtime aws` on a laptop)."""
    if settings.query_encoder_function:
        from mediaindex.adapters.aws.lambda_encoders import LambdaQueryEncoders

        return LambdaQueryEncoders(settings.query_encoder_function, clients.lazy("lambda"))
    from mediaindex.services.search import RegistryQueryEncoders

    return RegistryQueryEncoders(models)


def build_aws_runner(settings: Settings, *, clients: AwsClients | None = None) -> PipelineRunner:
    """Only the PipelineRunner over the AWS adapters: what a Batch job and the pipeline-events Lambda
    need. No orchestrator (they run inside an execution; none of them gets the state machine ARN)."""
    from mediaindex.ml.registry import ModelRegistry
    from mediaindex.pipeline.steps import get_step
    from mediaindex.services.pipeline import PipelineRunner

    clients = clients or AwsClients(region=settings.aws_region)
    metadata, blobs = _stores(settings, clients)
    search_index, _ = _search_index(settings)
    return PipelineRunner(metadata, blobs, search_index, ModelRegistry(settings), settings, get_step)


def build_aws_ingest(settings: Settings, *, clients: AwsClients | None = None) -> IngestService:
    """Only the IngestService (DynamoDB + Step Functions): what the upload-event Lambda needs."""
    if not settings.state_machine_arn:
        raise ValueError("MEDIAINDEX_STATE_MACHINE_ARN is required to start executions")
    clients = clients or AwsClients(region=settings.aws_region)
    metadata, _ = _stores(settings, clients)
    return IngestService(metadata, _step_functions(settings.state_machine_arn, clients, metadata))


def lambda_settings() -> Settings:
    """Settings for a Lambda function: the environment's, with data_dir under /tmp (the only
    writable place) unless MEDIAINDEX_DATA_DIR says otherwise."""
    settings = Settings()
    if "MEDIAINDEX_DATA_DIR" not in os.environ and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        settings = settings.model_copy(update={"data_dir": Path("/tmp/mediaindex")})  # noqa: S108
    return settings


def _stores(settings: Settings, clients: AwsClients) -> tuple[MetadataStore, BlobStore]:
    from mediaindex.adapters.aws.dynamo_store import DynamoMetadataStore
    from mediaindex.adapters.aws.s3_blobs import S3BlobStore

    # DynamoDB serves every request (API key lookup); S3 only some, so its client waits for one.
    metadata = DynamoMetadataStore(settings.table_name, clients.dynamodb)
    return metadata, S3BlobStore(settings.bucket_name, clients.lazy("s3"))


def _step_functions(arn: str, clients: AwsClients, metadata: MetadataStore) -> Orchestrator:
    from mediaindex.adapters.aws.stepfunctions import StepFunctionsOrchestrator

    # Lazy client: only ingest starts, re-runs and cancels need Step Functions; most API calls never do.
    return StepFunctionsOrchestrator(arn, clients.lazy("stepfunctions"), metadata=metadata)


def _search_index(settings: Settings) -> tuple[SearchIndex, Any]:
    """The index and its closer (or None)."""
    if settings.opensearch_url:
        from mediaindex.adapters.aws.opensearch_index import OpenSearchIndex, make_client

        host = urlsplit(settings.opensearch_url).hostname or ""
        serverless = host.endswith(".aoss.amazonaws.com")
        # Managed endpoints are SigV4-signed; a plain URL is a cluster of one's own (tests, dev).
        region = settings.aws_region if host.endswith(".amazonaws.com") else None
        url = settings.opensearch_url
        # Made on first use: opensearch-py costs ~0.3 s to import, and most requests never search.
        client = LazyClient(lambda: make_client(url, region=region, serverless=serverless), "opensearch")
        return OpenSearchIndex(client, serverless=serverless), None
    from mediaindex.adapters.local.embedded_search import EmbeddedSearchIndex

    log.info("no opensearch_url: using the embedded search index in %s", settings.data_dir)
    index = EmbeddedSearchIndex(settings.data_dir / "search")
    return index, index.close


def _jobs_only_database(path: Path) -> Any:
    """The local adapters' SQLite file, holding only the job queue here: its rows name tasks that
    live in DynamoDB, so the foreign keys to the (empty) SQLite `tasks` table are not enforced (with
    them every task start failed with "FOREIGN KEY constraint failed")."""
    from mediaindex.adapters.local.sqlite_db import Database

    class JobsOnlyDatabase(Database):
        def _open(self) -> Any:
            conn = super()._open()
            conn.execute("PRAGMA foreign_keys = OFF")
            return conn

    return JobsOnlyDatabase(path)


class InProcessPipeline:
    """The fallback executor when no state machine is configured: the local worker pool and its
    SQLite job queue (in data_dir) drive the pipeline over the AWS adapters, in this process.
    Workers start only when `settings.start_workers` is true (tests drive `pool.run_until_idle()`)."""

    def __init__(self, settings: Settings, metadata: MetadataStore, runner: Any) -> None:
        from mediaindex.adapters.local.job_queue import JobQueue
        from mediaindex.adapters.local.worker_pool import LocalOrchestrator, WorkerPool

        log.warning("no state_machine_arn: the pipeline runs in-process (local worker pool, AWS adapters)")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._db = _jobs_only_database(settings.data_dir / FALLBACK_DB)
        self._db.migrate()
        self.queue = JobQueue(self._db)
        self.orchestrator = LocalOrchestrator(self.queue, metadata, max_attempts=settings.job_max_attempts)
        self.pool = WorkerPool(
            self.queue,
            runner,
            self.orchestrator.wakeup,
            workers=settings.workers,
            backoff_s=settings.job_retry_backoff_s,
        )
        self._started = False
        if settings.start_workers:
            self.pool.start()
            self._started = True

    def close(self) -> None:
        if self._started:
            self.pool.stop()
        self._db.close()
