"""The reconciler of each runtime (services/reconcile.py): local, over the job plans of the
worker pool, run every `interval_s` by the serving process; AWS, over Step Functions and Batch,
run by functions/reconcile on an EventBridge schedule, which also runs the AWS index purge job
(`build_aws_purges`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediaindex.bootstrap.runtime import Runtime
from mediaindex.services.cleanup import CleanupService
from mediaindex.services.indexes import InlinePurges
from mediaindex.services.reconcile import Reconciler, ReconcileSettings
from mediaindex.settings import Settings

if TYPE_CHECKING:
    from mediaindex.adapters.aws.clients import AwsClients
    from mediaindex.adapters.local.sqlite.database import Database


def build_local_reconciler(
    runtime: Runtime, jobs_db: Database, policy: ReconcileSettings | None = None
) -> Reconciler:
    from mediaindex.adapters.local.plan_executions import PlanExecutions

    if runtime.executor is None or runtime.runner is None:
        raise ValueError("the local reconciler needs the in-process executor")
    return Reconciler(
        runtime.stores.tasks,
        runtime.runner,
        PlanExecutions(jobs_db, runtime.executor.queue),
        policy=policy,
    )


def start_local_reconciler(runtime: Runtime, jobs_db: Database) -> None:
    """Sweeps every `interval_s` on a daemon thread, stopped with the runtime (before its database)."""
    from mediaindex.bootstrap.local import Periodic

    policy = ReconcileSettings()
    periodic = Periodic(
        policy.interval_s, build_local_reconciler(runtime, jobs_db, policy).sweep, name="mi-reconciler"
    )
    periodic.start()
    runtime.closers.append(periodic.stop)


def build_aws_reconciler(
    settings: Settings, *, clients: AwsClients | None = None, policy: ReconcileSettings | None = None
) -> Reconciler:
    from mediaindex.adapters.aws.clients import AwsClients
    from mediaindex.adapters.aws.dynamo import open_stores
    from mediaindex.adapters.aws.executions import BatchWaitingJobs, StepFunctionsExecutions
    from mediaindex.bootstrap.aws import build_aws_runner

    if not settings.state_machine_arn:
        raise ValueError("the AWS reconciler needs the state machine ARN")
    clients = clients or AwsClients(region=settings.aws_region)
    policy = policy or ReconcileSettings()
    executions = StepFunctionsExecutions(
        settings.state_machine_arn, clients.get("stepfunctions"), horizon_s=policy.max_execution_s
    )
    waiting = (
        BatchWaitingJobs(policy.batch_queue_arns, clients.get("batch")) if policy.batch_queue_arns else None
    )
    return Reconciler(
        open_stores(settings.table_name, clients.dynamodb).tasks,
        # It settles tasks, but leaves re-indexes to the events Lambda and to reads of the index.
        build_aws_runner(settings, clients=clients),
        executions,
        waiting,
        policy=policy,
    )


def build_aws_purges(settings: Settings, *, clients: AwsClients | None = None) -> InlinePurges:
    """The purge job of functions/reconcile: resumes the purge ledger, each index's assets in bulk
    (batched writes, no transaction per asset). Search documents are the API's to drop
    (`HandedOffPurges`): this role reaches no search domain."""
    from mediaindex.adapters.aws.clients import AwsClients
    from mediaindex.adapters.aws.dynamo import open_stores
    from mediaindex.adapters.aws.dynamo.bulk_purge import DynamoBulkPurge
    from mediaindex.adapters.aws.dynamo.purges import DynamoPurgeLedger
    from mediaindex.adapters.aws.dynamo.table import Table
    from mediaindex.adapters.aws.s3_blobs import S3BlobStore
    from mediaindex.adapters.aws.stepfunctions import StepFunctionsOrchestrator

    if not settings.state_machine_arn:
        raise ValueError("the AWS purge job needs the state machine ARN")
    clients = clients or AwsClients(region=settings.aws_region)
    table = Table(settings.table_name, clients.dynamodb)
    stores = open_stores(settings.table_name, clients.dynamodb)
    cleanup = CleanupService(
        assets=stores.assets,
        indexes=stores.indexes,
        tasks=stores.tasks,
        blobs=S3BlobStore(settings.bucket_name, clients.lazy("s3")),
        search=None,
        orchestrator=StepFunctionsOrchestrator(settings.state_machine_arn, clients.lazy("stepfunctions")),
        bulk=DynamoBulkPurge(table),
    )
    return InlinePurges(
        stores.indexes,
        cleanup,
        DynamoPurgeLedger(table),
        batch=settings.purge_job_batch_assets,
        budget_s=settings.purge_job_budget_s,
    )
