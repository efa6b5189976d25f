"""Pipeline-events Lambda, invoked by the state machine (mediaindex.adapters.aws.state_machine):

- `{"action": "feature_failed", "tenant_id", "task_id", "feature", "error": {"Error", "Cause"}}` from
  a Catch: the step serving that feature failed for good (after its retries); only that feature fails.
- `{"action": "task_finished", "tenant_id", "task_id", "state_machine_arn"}` at the end of every
  execution. A settled task moves its index's running re-index on (services.reindex), which starts
  the next re-index tasks on `state_machine_arn` (the machine that invoked it).

The runner (services.pipeline.PipelineRunner) does the work, reporting each settled task to the
webhooks (bootstrap.aws.build_aws_runner wires its event sink: a delivery per subscribed webhook
and a message on the delivery queue); this module only reads the payload."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Tracer

from mediaindex.ports.step_runner import StepRunner

logger = Logger(service="mediaindex-pipeline-events")
tracer = Tracer(service="mediaindex-pipeline-events", patch_modules=["botocore"])

_state: dict[str, StepRunner] = {}
_MAX_MESSAGE = 500


def configure(runner: StepRunner | None = None) -> None:
    """Sets the runner to use; the first invoke builds it from settings."""
    if runner is None:
        from mediaindex.bootstrap.aws import build_aws_runner, lambda_settings

        runner = build_aws_runner(lambda_settings())
    _state["runner"] = runner


def error_from_catch(error: Any) -> Any:
    """ErrorInfo from Step Functions' error object. For a Batch job, Cause is the job description
    as JSON: its status reason and the container's exit code make the message."""
    from mediaindex.domain.models import ErrorInfo

    error = error if isinstance(error, dict) else {}
    name = str(error.get("Error") or "States.TaskFailed")
    cause = error.get("Cause")
    message = str(cause or name)
    try:
        job = json.loads(cause) if isinstance(cause, str) else None
    except ValueError:
        job = None
    if isinstance(job, dict):
        container = job.get("Container") or {}
        reason = job.get("StatusReason") or container.get("Reason") or name
        exit_code = container.get("ExitCode")
        message = f"{reason} (exit code {exit_code})" if exit_code is not None else str(reason)
    code = {
        "States.Timeout": "step_timeout",
        # A batched GPU step whose job stopped sending heartbeats (it died unseen).
        "States.HeartbeatTimeout": "step_timeout",
        "UpstreamFailed": "upstream_failed",
    }.get(name, "step_failed")
    return ErrorInfo(code=code, message=message[:_MAX_MESSAGE])


def process(event: dict[str, Any]) -> dict[str, Any]:
    from mediaindex.domain.models import Feature
    from mediaindex.pipeline.spec import STEP_FOR_FEATURE

    action = event.get("action")
    tenant_id = str(event.get("tenant_id") or "")
    task_id = str(event.get("task_id") or "")
    if not tenant_id or not task_id:
        raise ValueError("pipeline event without tenant_id and task_id")
    runner = _state["runner"]
    if action == "feature_failed":
        feature = Feature(str(event.get("feature")))
        step = STEP_FOR_FEATURE[feature].name
        error = error_from_catch(event.get("error"))
        logger.warning(
            "feature failed",
            extra={"task_id": task_id, "feature": str(feature), "step": step, "code": error.code},
        )
        runner.fail_step(tenant_id, task_id, step, error)
        return {"status": "recorded", "task_id": task_id, "feature": str(feature)}
    if action == "task_finished":
        arn = event.get("state_machine_arn")
        if isinstance(arn, str) and arn and _state.get("reindex_bound") is not runner:
            from mediaindex.bootstrap.aws import bind_aws_reindex
            from mediaindex.services.pipeline import PipelineRunner

            if isinstance(runner, PipelineRunner):
                bind_aws_reindex(runner, arn)
            _state["reindex_bound"] = runner
        runner.finish_task(tenant_id, task_id)
        return {"status": "finished", "task_id": task_id}
    raise ValueError(f"unknown pipeline event action {action!r}")


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "runner" not in _state:
        configure()
    logger.append_keys(task_id=event.get("task_id"))
    return process(event)
