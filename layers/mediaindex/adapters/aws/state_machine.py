"""The Step Functions state machine, generated from the pipeline spec (pure: ASL as a dict).

Shape: an optional `fetch` (only when the input has `source_url`), then `probe`, then one Parallel
branch per chain of feature steps (a step that needs another feature step rides in that step's
branch, after it), then the joins (a step that needs feature steps of several branches, such as
embedding after transcription and render). Each step is an AWS Batch job (`submitJob.sync`) on the
CPU or GPU queue; with `gpu_batching`, a GPU step is a message to the GPU work queue whose batch
job settles the state's task token (`sqs:sendMessage.waitForTaskToken`, adapters/aws/gpu_batches.py).
A step whose features were not requested is skipped. A failed feature step
reports `feature_failed` for its features alone, marks the steps after it that need it failed too,
and lets the other branches go on. A failed shared step (fetch, probe) reports every requested feature failed.
`feature_failed` carries `error` as Step Functions' error object, {"Error": name, "Cause": text}
(for a Batch job, Cause is the job description as JSON).

Every path ends in `task_finished`, whatever fails:
- Every path a state reads exists for every input: a branch starts by writing a `skipped` outcome
  for each of its steps, so a Choice on an upstream step's outcome never reads a missing value
  (Step Functions fails an execution on such a read with States.Runtime, which no Catch catches:
  the task would stay `processing`). tests/infra/test_state_machine_faithful.py runs the
  definition in a strict interpreter for every feature subset to keep it so.
- Every Task (but task_finished's own), the Map and the Parallel state has a Catch of States.ALL:
  a job failure or timeout is reported for its feature; a failed report does not stop the branch
  (task_finished settles what is left active); anything else unexpected in the Parallel state
  still runs task_finished, then fails the execution (the alarm). Only what no Catch can catch
  (States.Runtime, States.DataLimitExceeded) ends an execution without task_finished: hence the
  first point, and small state (job descriptions are cut down by ResultSelector).
- Each Batch state has a state-level TimeoutSeconds: the job's own timeout (which Batch enforces
  only once the job is RUNNING) plus `queue_wait_s`, so a job stuck RUNNABLE cannot hang the
  execution; it fails with States.Timeout (not retried: it would queue again), reported as
  `feature_failed` (the events Lambda maps it to `step_timeout`).

Execution input: {"tenant_id", "task_id", "asset_id", "features": [...], "source_url"?}.
The execution succeeds when the feature branches ran (each feature's state is in the metadata
store); it fails when a shared step failed, so the failed-executions alarm means "an asset got
nothing at all", or when something unexpected failed around the feature branches.

The Task states are built in state_machine_tasks.py, the feature branches in
state_machine_branches.py; this module assembles the whole definition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from mediaindex.adapters.aws.state_machine_branches import Targets, branch, feature_stages, joins
from mediaindex.adapters.aws.state_machine_tasks import GpuBatching, State, catch_all, lambda_task
from mediaindex.pipeline.spec import STEPS, StepSpec

# How long a Batch job may wait in its queue (RUNNABLE: no capacity yet, a GPU instance scaling from
# zero, an image pull) on top of its own run time before its state times out.
DEFAULT_QUEUE_WAIT_S = 1800


def definition(
    spec: Sequence[StepSpec] = STEPS,
    *,
    cpu_queue_arn: str,
    gpu_queue_arn: str,
    job_definitions: Mapping[Literal["media", "ml"] | str, str],
    events_function_arn: str,
    retry_interval_s: int = 30,
    queue_wait_s: int = DEFAULT_QUEUE_WAIT_S,
    gpu_batching: GpuBatching | None = None,
) -> dict[str, Any]:
    """The ASL document for `spec`. `job_definitions` maps a step's image ("media", "ml") to its
    Batch job definition ARN. `retry_interval_s` is the first retry delay (doubling after).
    `queue_wait_s` is how long a job may wait in its queue on top of its run time (`timeout_s`).
    With `gpu_batching`, GPU steps wait on the GPU work queue and run in batches (gpu_batches.py)."""
    by_name = {s.name: s for s in spec}
    if "probe" not in by_name:
        raise ValueError("the pipeline spec needs a probe step")
    queues = {"cpu": cpu_queue_arn, "gpu": gpu_queue_arn}
    feature_names = [str(f) for s in spec for f in s.features]
    stages = feature_stages(spec)
    targets = Targets(
        queues, job_definitions, events_function_arn, retry_interval_s, queue_wait_s, gpu_batching
    )
    after_branches, join_states = joins(stages, targets, after="task finished")

    def finished(next_state: str) -> State:
        return lambda_task(
            events_function_arn,
            {
                "action": "task_finished",
                "tenant_id.$": "$.tenant_id",
                "task_id.$": "$.task_id",
                # The events Lambda starts a re-index's next tasks on this machine: passed, not
                # configured, because the machine's definition names the Lambda (no cycle).
                "state_machine_arn.$": "$$.StateMachine.Id",
            },
            next_state=next_state,
        )

    def fail(name: str, error: str) -> dict[str, State]:
        # A short cause from what a Catch always writes (its Cause may be absent, or a job
        # description of kilobytes): the failed state's own event in the history has the rest.
        return {
            f"describe {name}": {
                "Type": "Pass",
                "Parameters": {
                    "cause.$": "States.Format('task {} failed: {}', $.task_id, $.error.Error)",
                },
                "Next": f"{name} failed",
            },
            f"{name} failed": {"Type": "Fail", "Error": error, "CausePath": "$.cause"},
        }

    states: dict[str, State] = {}
    first = "probe"
    if "fetch" in by_name:
        first = "source_url given?"
        states[first] = {
            "Type": "Choice",
            "Choices": [{"Variable": "$.source_url", "IsPresent": True, "Next": "fetch"}],
            "Default": "probe",
        }
    for name in ("fetch", "probe"):
        if name not in by_name:
            continue
        states[name] = targets.step_task(
            by_name[name],
            next_state="probe" if name == "fetch" else "prepare",
            catch_state="mark all failed",
        )
    states["prepare"] = {
        # Which features this task asked for, as booleans the branch Choices can test.
        "Type": "Pass",
        "Parameters": {
            "tenant_id.$": "$.tenant_id",
            "task_id.$": "$.task_id",
            "asset_id.$": "$.asset_id",
            "features.$": "$.features",
            "wants": {f"{f}.$": f"States.ArrayContains($.features, '{f}')" for f in feature_names},
        },
        "Next": "features",
    }
    states["features"] = {
        "Type": "Parallel",
        "Branches": [branch(chain, targets) for chain in stages.chains],
        "ResultPath": "$.branches",
        # Nothing in a branch should fail it (each failure is caught there); should anything,
        # the task still finishes (settling what is left), and the execution fails.
        "Catch": catch_all("task finished after error"),
        "Next": after_branches,
    }
    states.update(join_states)
    states["task finished"] = finished("done")
    states["done"] = {
        "Type": "Pass",
        # Each branch's outcomes, and with joins every step's outcome (theirs included).
        "Parameters": {
            "tenant_id.$": "$.tenant_id",
            "task_id.$": "$.task_id",
            "branches.$": "$.branches",
            **({"outcome.$": "$.outcome"} if stages.joins else {}),
        },
        "End": True,
    }
    states["task finished after error"] = finished("describe pipeline")
    states.update(fail("pipeline", "PipelineFailed"))
    states["mark all failed"] = {
        "Type": "Map",
        "ItemsPath": "$.features",
        "ItemSelector": {
            "tenant_id.$": "$.tenant_id",
            "task_id.$": "$.task_id",
            "feature.$": "$$.Map.Item.Value",
            "error.$": "$.error",
        },
        "MaxConcurrency": 4,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "report feature failed",
            "States": {
                "report feature failed": lambda_task(
                    events_function_arn,
                    {
                        "action": "feature_failed",
                        "tenant_id.$": "$.tenant_id",
                        "task_id.$": "$.task_id",
                        "feature.$": "$.feature",
                        "error.$": "$.error",
                    },
                    next_state=None,
                    # One lost report must not stop the others; task_finished settles that feature.
                    catch_state="report lost",
                ),
                "report lost": {"Type": "Pass", "End": True},
            },
        },
        "ResultPath": None,
        "Catch": catch_all("task finished after failure", "$.report_error"),
        "Next": "task finished after failure",
    }
    states["task finished after failure"] = finished("describe shared step")
    states.update(fail("shared step", "SharedStepFailed"))
    return {
        "Comment": "mediaindex pipeline, generated from mediaindex.pipeline.spec",
        "StartAt": first,
        "States": states,
    }
