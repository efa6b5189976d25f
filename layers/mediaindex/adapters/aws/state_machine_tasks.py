"""The Task states of the pipeline's state machine: a step as an AWS Batch job (`batch_task`:
`submitJob.sync` on its queue, its state-level timeout covering the queue wait, retries from the
spec, a small ResultSelector), an invoke of the events Lambda (`lambda_task`: idempotent, retried,
Lambda's transient errors more), and the Catch of States.ALL every such state carries (`catch_all`).
state_machine.py assembles them into the whole definition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaindex.pipeline.spec import StepSpec

BATCH_SUBMIT_SYNC = "arn:aws:states:::batch:submitJob.sync"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"

# Lambda's own transient failures, retried before the Catch of a reporting state could be needed.
_LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
_MAX_BACKOFF_S = 600

State = dict[str, Any]


def catch_all(next_state: str, result_path: str = "$.error") -> list[State]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": result_path, "Next": next_state}]


def batch_task(
    step: StepSpec,
    *,
    queue_arn: str,
    job_definition_arn: str,
    retry_interval_s: int,
    queue_wait_s: int,
    next_state: str,
    catch_state: str,
) -> State:
    state: State = {
        "Type": "Task",
        "Resource": BATCH_SUBMIT_SYNC,
        "Parameters": {
            # Batch job names allow [A-Za-z0-9_-]{1,128}; task ids are made of those.
            "JobName.$": f"States.Format('{step.name}-{{}}', $.task_id)",
            "JobQueue": queue_arn,
            "JobDefinition": job_definition_arn,
            # The queues schedule by fair share (infra/compute.py): one share per tenant. Tenant ids
            # are letters, digits and underscores, as share identifiers must be.
            "ShareIdentifier.$": "$.tenant_id",
            "ContainerOverrides": {
                "Command.$": "States.Array('--tenant-id', $.tenant_id, '--task-id', $.task_id, "
                f"'--step', '{step.name}')",
            },
            # Batch enforces this from RUNNING on; the state's own timeout also bounds the queueing.
            "Timeout": {"AttemptDurationSeconds": step.timeout_s},
        },
        "TimeoutSeconds": step.timeout_s + queue_wait_s,
        # Keep the state small: the job description Batch returns is large.
        "ResultSelector": {"status": "completed", "job_id.$": "$.JobId"},
        "ResultPath": f"$.outcome.{step.name}",
        "Catch": catch_all(catch_state),
        "Next": next_state,
    }
    if step.max_attempts > 1:
        state["Retry"] = [
            # A job that never left the queue in time would queue again: no retry.
            {"ErrorEquals": ["States.Timeout"], "MaxAttempts": 0},
            {
                "ErrorEquals": ["States.ALL"],
                "IntervalSeconds": retry_interval_s,
                # The spec counts attempts; ASL counts retries after the first attempt.
                "MaxAttempts": step.max_attempts - 1,
                "BackoffRate": 2.0,
                "MaxDelaySeconds": _MAX_BACKOFF_S,
                "JitterStrategy": "FULL",
            },
        ]
    return state


def lambda_task(
    function_arn: str, payload: Mapping[str, Any], *, next_state: str | None, catch_state: str | None = None
) -> State:
    """An invoke of the events Lambda. Its handler is idempotent (a settled feature stays settled),
    so any error is retried a few times, Lambda's own transient ones more."""
    state: State = {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": function_arn, "Payload": dict(payload)},
        "ResultPath": None,
        "Retry": [
            {
                "ErrorEquals": _LAMBDA_TRANSIENT,
                "IntervalSeconds": 2,
                "MaxAttempts": 6,
                "BackoffRate": 2.0,
                "JitterStrategy": "FULL",
            },
            {
                "ErrorEquals": ["States.ALL"],
                "IntervalSeconds": 5,
                "MaxAttempts": 3,
                "BackoffRate": 2.0,
                "JitterStrategy": "FULL",
            },
        ],
    }
    if catch_state is not None:
        # Where the report itself failed for good: recorded beside the state, never over `error`.
        state["Catch"] = catch_all(catch_state, "$.report_error")
    if next_state is None:
        state["End"] = True
    else:
        state["Next"] = next_state
    return state
