"""The AWS runtime: DynamoDB, S3, Step Functions and OpenSearch behind the same ports.

Search index: OpenSearch when `settings.opensearch_url` is set; otherwise the embedded index in
`settings.data_dir` (per process: fine for `mediaindex serve --runtime aws` against moto and for
tests, not for a deployment, where infra always sets the URL).

Orchestrator: Step Functions when `settings.state_machine_arn` is set. Without it (moto, a laptop
against LocalStack) the pipeline runs in-process: the local executor with its SQLite job rows in
`data_dir`, over the AWS adapters. There is no EventBridge rule either then, so uploads are learnt
from the SQS queue `mediaindex aws init` makes (`Runtime.upload_watcher`). Deployed Lambdas always
get the ARN.

The Batch entrypoint and the pipeline-events Lambda use `build_aws_runner` (the runner alone), the
upload-event Lambda `build_aws_ingest`: each builds only what it calls, for cold start and least
privilege."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from mediaindex.adapters.aws.clients import AwsClients
from mediaindex.adapters.aws.dynamo import open_stores
from mediaindex.adapters.aws.dynamo.purges import DynamoPurgeLedger
from mediaindex.adapters.aws.dynamo.table import Table
from mediaindex.adapters.aws.s3_blobs import S3BlobStore
from mediaindex.adapters.aws.stepfunctions import StepFunctionsOrchestrator
from mediaindex.bootstrap.compose import build_reindex, compose_services, inline_background
from mediaindex.bootstrap.runtime import Runtime
from mediaindex.bootstrap.search import build_search_index
from mediaindex.bootstrap.webhooks import build_aws_webhooks
from mediaindex.ports.orchestrator import Orchestrator
from mediaindex.ports.query_encoder import QueryEncoder
from mediaindex.ports.search import SearchIndex
from mediaindex.ports.stores import MetadataStores
from mediaindex.ports.webhooks import EventSink
from mediaindex.services.cleanup import CleanupService
from mediaindex.services.indexes import HandedOffPurges, IndexService
from mediaindex.services.ingest import IngestService
from mediaindex.services.keys import KeyService
from mediaindex.services.reindex import ReindexProgress, ReindexService
from mediaindex.settings import Settings

if TYPE_CHECKING:  # the API never runs a pipeline: the runner's modules are not on its cold start
    from mediaindex.services.pipeline import PipelineRunner

log = logging.getLogger(__name__)

# What the in-process fallback keeps in data_dir (its job rows only; metadata stays in DynamoDB).
FALLBACK_DB = "aws-inprocess-jobs.db"


def build_aws(settings: Settings, *, clients: AwsClients | None = None) -> Runtime:
    """`clients` defaults to boto3 clients made on first use in `settings.aws_region` (the endpoint
    from AWS_ENDPOINT_URL when set)."""
    clients = clients or AwsClients(region=settings.aws_region)
    stores = open_stores(settings.table_name, clients.dynamodb)
    # S3 serves only some requests, so its client waits for one.
    blobs = S3BlobStore(settings.bucket_name, clients.lazy("s3"))
    search_index, close_search = build_search_index(settings)
    webhooks = build_aws_webhooks(settings, clients)
    if settings.state_machine_arn:
        runtime = _deployed(
            settings, clients, stores, blobs, search_index, webhooks.notifier if webhooks else None
        )
    else:
        runtime = _in_process(
            settings, clients, stores, blobs, search_index, webhooks.notifier if webhooks else None
        )
    runtime.webhooks = webhooks
    runtime.services = dataclasses.replace(runtime.services, webhooks=webhooks.service if webhooks else None)
    if close_search is not None:
        runtime.closers.insert(0, close_search)  # closed last: the pool stops before it
    if settings.bootstrap_key_secret_arn:
        ensure_bootstrap_key(
            runtime.services.keys, settings, clients.get("secretsmanager"), settings.bootstrap_key_secret_arn
        )
    return runtime


def _deployed(
    settings: Settings,
    clients: AwsClients,
    stores: MetadataStores,
    blobs: S3BlobStore,
    index: SearchIndex,
    events: EventSink | None,
) -> Runtime:
    """The API of a deployment: Step Functions runs the pipeline; queries are embedded by the encoder
    Lambda when one is configured, so the API imports no model (nor numpy) at cold start."""
    # Lazy client: only ingest starts, re-runs and cancels need Step Functions.
    assert settings.state_machine_arn is not None
    orchestrator = StepFunctionsOrchestrator(settings.state_machine_arn, clients.lazy("stepfunctions"))
    encoder: QueryEncoder
    if settings.query_encoder_function:
        from mediaindex.adapters.aws.lambda_encoder import LambdaQueryEncoder

        encoder = LambdaQueryEncoder(settings.query_encoder_function, clients.lazy("lambda"))
    else:
        encoder = _models_encoder(settings)
    # No worker pool here: DELETE /v1/indexes notes the purge in a ledger (one small DynamoDB
    # partition) and hands it to the purge job (the reconcile Lambda) with an asynchronous invoke;
    # without that job, it purges inline for a bounded time and the start-up sweep finishes it.
    ledger = DynamoPurgeLedger(Table(settings.table_name, clients.dynamodb))
    purges = None
    if settings.purge_function:
        cleanup = CleanupService(
            assets=stores.assets,
            indexes=stores.indexes,
            tasks=stores.tasks,
            blobs=blobs,
            search=index,
            orchestrator=orchestrator,
        )
        kick = functools.partial(_kick_purge_job, clients.lazy("lambda"), settings.purge_function)
        purges = HandedOffPurges(stores.indexes, cleanup, ledger, kick)
    services = compose_services(
        settings,
        stores=stores,
        blobs=blobs,
        orchestrator=orchestrator,
        search_index=index,
        encoder=encoder,
        purges=purges,
        purge_ledger=ledger,
        events=events,
    )
    if purges is None:
        _start_up_sweep(services.indexes, ledger, settings.purge_inline_budget_s)
    return Runtime(
        settings=settings,
        stores=stores,
        blobs=blobs,
        search_index=index,
        orchestrator=orchestrator,
        services=services,
        aws_clients=clients,
    )


def _in_process(
    settings: Settings,
    clients: AwsClients,
    stores: MetadataStores,
    blobs: S3BlobStore,
    index: SearchIndex,
    events: EventSink | None,
) -> Runtime:
    """No state machine: the local executor runs the pipeline over the AWS adapters, in this process.
    Workers start only when `settings.start_workers` is true (tests drive `pool.run_until_idle()`)."""
    from mediaindex.adapters.local.sqlite.database import Database
    from mediaindex.bootstrap.in_process import in_process_runtime

    log.warning("no state_machine_arn: the pipeline runs in-process (local worker pool, AWS adapters)")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # This file holds only the job queue: its rows name tasks that live in DynamoDB, so the
    # foreign keys to the (empty) SQLite tasks table are not enforced.
    db = Database(settings.data_dir / FALLBACK_DB, foreign_keys=False)
    db.migrate()
    runtime = in_process_runtime(
        settings,
        jobs_db=db,
        stores=stores,
        blobs=blobs,
        search_index=index,
        background=inline_background,
        start_workers=settings.start_workers,
        events=events,
    )
    runtime.aws_clients = clients
    runtime.upload_watcher = _upload_queue_watcher(settings, clients, runtime.services.ingest, blobs)
    if runtime.upload_watcher is not None:
        if settings.start_workers:
            runtime.upload_watcher.start()
        runtime.closers.append(runtime.upload_watcher.stop)  # stopped first: before the pool and DB
    return runtime


# What the purge job's handler (functions/reconcile) reads as "resume the purge ledger only".
PURGE_EVENT = {"purge": True}


def _kick_purge_job(client: Any, function: str) -> None:
    """Starts the purge job now (InvocationType=Event: queued by Lambda, this request waits for
    nothing but the queueing)."""
    client.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(PURGE_EVENT).encode())


def _start_up_sweep(
    indexes: IndexService, ledger: DynamoPurgeLedger, budget_s: float
) -> threading.Thread | None:
    """Resumes index purges a crash or a Lambda's time limit left unfinished, on a daemon thread, so
    the first request never waits for it: one Query of the ledger per start, then, when it holds
    any, purging for at most `budget_s`. On a Lambda it runs while the environment runs (init, then
    invocations) and is frozen in between; whatever is left waits for the next start, or for a
    scheduled call of `resume_purges`."""
    if budget_s <= 0:
        return None

    def sweep() -> None:
        try:
            if not ledger.pending(limit=1):
                return
        except (ClientError, BotoCoreError) as e:
            log.warning("purge ledger unreadable", extra={"error": type(e).__name__})
            return
        try:
            finished = indexes.resume_purges(budget_s=budget_s)
            log.info("purge sweep done", extra={"finished": finished})
        except Exception:
            log.exception("purge sweep failed")

    thread = threading.Thread(target=sweep, name="mi-purge-sweep", daemon=True)
    thread.start()
    return thread


def _models_encoder(settings: Settings) -> QueryEncoder:
    from mediaindex.ml.query_encoder import ModelQueryEncoder
    from mediaindex.ml.registry import ModelRegistry

    return ModelQueryEncoder(ModelRegistry(settings))


def _upload_queue_watcher(
    settings: Settings, clients: AwsClients, ingest: IngestService, blobs: S3BlobStore
) -> Any:
    """The watcher of the upload queue (the setting's URL, else the queue found by name), or None
    when there is none: then uploads are noticed only through the API's own calls."""
    from mediaindex.adapters.aws.upload_queue import UploadQueueWatcher, find_upload_queue
    from mediaindex.domain.errors import UnavailableError
    from mediaindex.services.upload_events import object_created

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
    handler = functools.partial(object_created, ingest, expected_bucket=settings.bucket_name, blobs=blobs)
    return UploadQueueWatcher(sqs, url, handler)


def ensure_bootstrap_key(keys: KeyService, settings: Settings, secrets: Any, secret_arn: str) -> None:
    """The stack's generated first key works once its hash is in the table: one GetSecretValue and
    one read per cold start. The key is never logged."""
    try:
        raw = secrets.get_secret_value(SecretId=secret_arn)["SecretString"]
    except (ClientError, BotoCoreError) as e:
        # Serving must not depend on it: existing keys still work; the next cold start retries.
        log.warning("bootstrap key secret unreadable", extra={"error": type(e).__name__})
        return
    keys.ensure_key(settings.bootstrap_tenant, raw)


def build_aws_runner(
    settings: Settings, *, clients: AwsClients | None = None, state_machine_arn: str | None = None
) -> PipelineRunner:
    """Only the PipelineRunner over the AWS adapters: what a Batch job, the pipeline-events Lambda
    and the reconciler need. Its settled tasks go to the webhooks and, once it knows the state
    machine (`state_machine_arn` here, or `bind_aws_reindex` later), move re-indexes on."""
    from mediaindex.bootstrap.pipeline import build_runner
    from mediaindex.ml.registry import ModelRegistry

    clients = clients or AwsClients(region=settings.aws_region)
    stores = open_stores(settings.table_name, clients.dynamodb)
    blobs = S3BlobStore(settings.bucket_name, clients.lazy("s3"))
    index, _ = build_search_index(settings)
    # The pipeline-events Lambda ends every task (finish_task): it reports them to the webhooks.
    webhooks = build_aws_webhooks(settings, clients)
    progress = _MachineBoundProgress(
        webhooks.notifier if webhooks else None,
        lambda arn: build_reindex(
            settings,
            stores,
            StepFunctionsOrchestrator(arn, clients.lazy("stepfunctions")),
            index,
            webhooks.notifier if webhooks else None,
        ),
    )
    runner = build_runner(settings, stores, blobs, index, ModelRegistry(settings), progress)
    if state_machine_arn:
        progress.bind_machine(state_machine_arn)
    return runner


class _MachineBoundProgress(ReindexProgress):
    """ReindexProgress whose re-index driver is built, over the runner's own stores and search
    index, once the state machine that starts its tasks is known."""

    def __init__(self, inner: EventSink | None, build: Callable[[str], ReindexService]) -> None:
        super().__init__(inner)
        self._build = build

    def bind_machine(self, state_machine_arn: str) -> None:
        self.bind(self._build(state_machine_arn))


def bind_aws_reindex(runner: PipelineRunner, state_machine_arn: str) -> None:
    """Lets a runner built without the state machine move re-indexes on (the pipeline-events
    Lambda learns the machine from its first event)."""
    if isinstance(runner.events, _MachineBoundProgress):
        runner.events.bind_machine(state_machine_arn)


def build_aws_ingest(
    settings: Settings, *, clients: AwsClients | None = None
) -> tuple[IngestService, S3BlobStore]:
    """Only what the upload-event Lambda needs: the IngestService (DynamoDB + Step Functions) and
    the blob store that deletes an original nobody is waiting for."""
    if not settings.state_machine_arn:
        raise ValueError("MEDIAINDEX_STATE_MACHINE_ARN is required to start executions")
    clients = clients or AwsClients(region=settings.aws_region)
    stores = open_stores(settings.table_name, clients.dynamodb)
    orchestrator: Orchestrator = StepFunctionsOrchestrator(
        settings.state_machine_arn, clients.lazy("stepfunctions")
    )
    blobs = S3BlobStore(settings.bucket_name, clients.lazy("s3"))
    return IngestService(stores.assets, stores.tasks, orchestrator), blobs


def lambda_settings() -> Settings:
    """Settings for a Lambda function: the environment's, with data_dir under /tmp (the only
    writable place) unless MEDIAINDEX_DATA_DIR says otherwise."""
    settings = Settings()
    if "MEDIAINDEX_DATA_DIR" not in os.environ and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        settings = settings.model_copy(update={"data_dir": Path("/tmp/mediaindex")})  # noqa: S108
    return settings
