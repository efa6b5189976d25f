"""Reconcile Lambda, run by an EventBridge schedule (infra/reconcile.py): one sweep of the
reconciler (services/reconcile.py) over Step Functions executions and Batch jobs, each action
logged and published as a CloudWatch metric (namespace `mediaindex`, `Reconciled` by `action`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from mediaindex.services.reconcile import ACTIONS, Reconciler

logger = Logger(service="mediaindex-reconcile")
metrics = Metrics(namespace="mediaindex", service="reconcile")

_state: dict[str, Reconciler] = {}


def configure(reconciler: Reconciler | None = None) -> None:
    """Sets the reconciler to use; the first invoke builds it from settings."""
    if reconciler is None:
        from mediaindex.bootstrap.aws import lambda_settings
        from mediaindex.bootstrap.reconcile import build_aws_reconciler

        reconciler = build_aws_reconciler(lambda_settings())
    _state["reconciler"] = reconciler


def process() -> dict[str, Any]:
    report = _state["reconciler"].sweep()
    for action in ACTIONS:
        metrics.add_metric(name=f"Reconciled_{action}", unit=MetricUnit.Count, value=report.counts[action])
    logger.info("reconcile sweep", extra={"counts": report.counts, "tasks": report.tasks[:50]})
    return {"counts": report.counts, "tasks": report.tasks}


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "reconciler" not in _state:
        configure()
    return process()
