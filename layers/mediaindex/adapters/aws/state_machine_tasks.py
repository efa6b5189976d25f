"""The Task states of the pipeline's state machine: a step as an AWS Batch job (`batch_task`:
`submitJob.sync` on its queue, its state-level timeout covering the queue wait, retries from the
spec, a small ResultSelector), an invoke of the events Lambda (`lambda_task`: idempotent, retried,
Lambda's transient errors more), and the Catch of States.ALL every such state carries (`catch_all`).
state_machine.py assembles them into the whole definition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mediaindex.pipeline.spec import StepSpec

BATCH_SUBMIT_SYNC = "arn:aws:states:::batch:submitJob.sync"
SQS_SEND_WAIT = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"

# Lambda's own transient failures, retried before the Catch of a reporting state could be needed.
_LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
_MAX_BACKOFF_S = 600
# Beyond the gather window and the queue wait, for a heartbeat sent late (every minute by a job).
_HEARTBEAT_MARGIN_S = 300

State = dict[str, Any]


def catch_all(next_state: str, result_path: str = "$.error") -> list[State]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": result_path, "Next": next_state}]


@dataclass(frozen=True)
class GpuBatching:
    """GPU steps sent to the GPU work queue and run in batches (adapters/aws/gpu_batches.py):
    `queue_url` of that queue, at most `max_items` per batch, gathered for up to `window_s`."""

    queue_url: str
    max_items: int
    window_s: int


def queued_task(
    step: StepSpec,
    *,
    batching: GpuBatching,
    retry_interval_s: int,
    queue_wait_s: int,
    next_state: str,
    catch_state: str,
) -> State:
    """A GPU step as one message to the GPU work queue, waiting on its task token: the batch job
    that runs it settles the token (or the job's FAILED event fails it). Heartbeats come from the
    batcher when it submits and from the job while it works, so HeartbeatSeconds covers the gather
    window and the queue wait; the whole state may last as long as a full batch runs."""
    state: State = {
        "Type": "Task",
        "Resource": SQS_SEND_WAIT,
        "Parameters": {
            "QueueUrl": batching.queue_url,
            "MessageBody": {
                "tenant_id.$": "$.tenant_id",
                "task_id.$": "$.task_id",
                "step": step.name,
                "token.$": "$$.Task.Token",
            },
            # An SQS fair queue: one tenant's backlog does not hold up the others' messages.
            "MessageGroupId.$": "$.tenant_id",
        },
        "HeartbeatSeconds": batching.window_s + queue_wait_s + _HEARTBEAT_MARGIN_S,
        "TimeoutSeconds": batching.window_s + queue_wait_s + step.timeout_s * batching.max_items,
        # The job answers {"status": "completed", "ran": bool}: only the status is kept.
        "ResultSelector": {"status": "completed"},
    }
    return _step_outcome(state, step, retry_interval_s, next_state, catch_state)


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
    }
    return _step_outcome(state, step, retry_interval_s, next_state, catch_state)


def _step_outcome(
    state: State, step: StepSpec, retry_interval_s: int, next_state: str, catch_state: str
) -> State:
    """What every step's Task state shares: its outcome at `$.outcome.<step>`, the spec's retries,
    and any failure caught for `catch_state`."""
    state.update(
        {"ResultPath": f"$.outcome.{step.name}", "Catch": catch_all(catch_state), "Next": next_state}
    )
    if step.max_attempts > 1:
        state["Retry"] = _retries(step, retry_interval_s)
    return state


def _retries(step: StepSpec, retry_interval_s: int) -> list[State]:
    return [
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
