"""The feature branches of the pipeline's state machine: feature steps grouped into chains (a step
that needs another feature step follows it in that step's branch), and one Parallel branch per
chain. A branch first writes a `skipped` outcome for each of its steps, so no Choice ever reads a
missing path; each step runs only when its feature was requested, is blocked when its upstream
failed in this task, and a failure is reported for its feature alone (`feature_failed`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mediaindex.adapters.aws.state_machine_tasks import State, batch_task, lambda_task
from mediaindex.pipeline.spec import StepSpec

# The status a branch writes for each of its steps before any runs (a step not requested stays so).
SKIPPED = "skipped"


def feature_chains(spec: Sequence[StepSpec]) -> list[list[StepSpec]]:
    """Feature steps grouped into chains: a step that needs another feature step follows it."""
    feature_steps = [s for s in spec if s.features]
    names = {s.name for s in feature_steps}
    chains: list[list[StepSpec]] = []
    where: dict[str, list[StepSpec]] = {}
    for step in feature_steps:
        if len(step.features) != 1:
            raise ValueError(f"step {step.name!r}: the state machine supports one feature per feature step")
        upstream = [n for n in step.needs if n in names]
        if not upstream:
            chain = [step]
            chains.append(chain)
        elif len(upstream) == 1 and upstream[0] in where and where[upstream[0]][-1].name == upstream[0]:
            chain = where[upstream[0]]
            chain.append(step)
        else:
            raise ValueError(f"step {step.name!r}: feature steps must form chains (needs {upstream})")
        where[step.name] = chain
    return chains


def branch(
    chain: list[StepSpec],
    *,
    queues: Mapping[str, str],
    job_definitions: Mapping[str, str],
    events_function_arn: str,
    retry_interval_s: int,
    queue_wait_s: int,
) -> State:
    states: dict[str, State] = {}
    start = f"{chain[0].name} branch"
    done = f"{chain[0].name} branch done"
    # Every outcome this branch's Choices read exists from here on, whatever was requested.
    states[start] = {
        "Type": "Pass",
        "Result": {step.name: {"status": SKIPPED} for step in chain},
        "ResultPath": "$.outcome",
        "Next": f"{chain[0].name} requested?",
    }
    for i, step in enumerate(chain):
        feature = str(step.features[0])
        after = f"{chain[i + 1].name} requested?" if i + 1 < len(chain) else done
        upstream = chain[i - 1].name if i > 0 else None
        wanted: State = {"Variable": f"$.wants.{feature}", "BooleanEquals": True}
        choices: list[State] = []
        if upstream is not None:
            # The step needs its upstream's output: if that failed in this task, this fails too.
            # (Not requested, the upstream stays `skipped`: this step reads what an earlier task left.)
            choices.append(
                {
                    "And": [wanted, {"Variable": f"$.outcome.{upstream}.status", "StringEquals": "failed"}],
                    "Next": f"{step.name} blocked",
                }
            )
        choices.append({**wanted, "Next": step.name})
        states[f"{step.name} requested?"] = {"Type": "Choice", "Choices": choices, "Default": after}
        if upstream is not None:
            states[f"{step.name} blocked"] = {
                "Type": "Pass",
                "Result": {"Error": "UpstreamFailed", "Cause": f"{step.name} needs {upstream}, which failed"},
                "ResultPath": "$.error",
                "Next": f"{step.name} failed",
            }
        states[step.name] = batch_task(
            step,
            queue_arn=queues[step.compute],
            job_definition_arn=job_definitions[step.image],
            retry_interval_s=retry_interval_s,
            queue_wait_s=queue_wait_s,
            next_state=after,
            catch_state=f"{step.name} failed",
        )
        states[f"{step.name} failed"] = lambda_task(
            events_function_arn,
            {
                "action": "feature_failed",
                "tenant_id.$": "$.tenant_id",
                "task_id.$": "$.task_id",
                "feature": feature,
                "error.$": "$.error",
            },
            next_state=f"{step.name} marked failed",
            # Unreported, the feature is still active at the end: task_finished fails it then.
            catch_state=f"{step.name} marked failed",
        )
        states[f"{step.name} marked failed"] = {
            "Type": "Pass",
            "Result": {"status": "failed"},
            "ResultPath": f"$.outcome.{step.name}",
            "Next": after,
        }
    states[done] = {"Type": "Pass", "OutputPath": "$.outcome", "End": True}
    return {"StartAt": start, "States": states}
