"""Reconcile Lambda, run by an EventBridge schedule (infra/reconcile.py): one sweep of the
reconciler (services/reconcile.py) over Step Functions executions and Batch jobs, each action
logged and published as a CloudWatch metric (namespace `mediaindex`, `Reconciled` by `action`),
then the index purge job: the purge ledger resumed within `purge_job_budget_s` (under the
function's timeout). The API invokes it asynchronously with `{"purge": true}` when an index is
deleted: that event runs the purge job alone, at once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from mediaindex.services.indexes import InlinePurges
from mediaindex.services.reconcile import ACTIONS, Reconciler

logger = Logger(service="mediaindex-reconcile")
metrics = Metrics(namespace="mediaindex", service="reconcile")

_state: dict[str, Any] = {}


def configure(
    reconciler: Reconciler | None = None, purges: InlinePurges | None = None, *, budget_s: float = 200.0
) -> None:
    """Sets the reconciler and the purge job (None: this process runs none) with how long one run
    purges; without a reconciler, both are built from settings (the first invoke does so)."""
    if reconciler is None:
        from mediaindex.bootstrap.aws import lambda_settings
        from mediaindex.bootstrap.reconcile import build_aws_purges, build_aws_reconciler

        settings = lambda_settings()
        reconciler, purges = build_aws_reconciler(settings), build_aws_purges(settings)
        budget_s = settings.purge_job_budget_s
    _state.update(reconciler=reconciler, purges=purges, budget_s=budget_s)


def purge() -> dict[str, Any]:
    if _state["purges"] is None:
        return {}
    finished = _state["purges"].resume(budget_s=_state["budget_s"])
    metrics.add_metric(name="IndexesPurged", unit=MetricUnit.Count, value=finished)
    logger.info("purge job", extra={"finished": finished})
    return {"purged": finished}


def process() -> dict[str, Any]:
    report = _state["reconciler"].sweep()
    for action in ACTIONS:
        metrics.add_metric(name=f"Reconciled_{action}", unit=MetricUnit.Count, value=report.counts[action])
    logger.info("reconcile sweep", extra={"counts": report.counts, "tasks": report.tasks[:50]})
    return {"counts": report.counts, "tasks": report.tasks, **purge()}


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "reconciler" not in _state:
        configure()
    if event.get("purge") is True:
        return purge()
    return process()
