"""The feature steps of the pipeline's state machine, in two stages.

Stage one: feature steps grouped into chains (a step that needs one other feature step follows it
in that step's branch), one Parallel branch per chain. A branch first writes a `skipped` outcome
for each of its steps, so no Choice ever reads a missing path.

Stage two, after the Parallel: the joins, steps that need feature steps of several chains (the
embedding step needs transcription's transcript and render's keyframes). Their upstreams' outcomes
are gathered from the branches first.

Each step runs only when one of its features was requested, is blocked when an upstream failed in
this task, and a failure is reported for its features alone (`feature_failed`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mediaindex.adapters.aws.state_machine_tasks import (
    GpuBatching,
    State,
    batch_task,
    lambda_task,
    queued_task,
)
from mediaindex.pipeline.spec import StepSpec

# The status a branch writes for each of its steps before any runs (a step not requested stays so).
SKIPPED = "skipped"


@dataclass(frozen=True)
class Stages:
    chains: list[list[StepSpec]]
    joins: list[StepSpec]


def feature_stages(spec: Sequence[StepSpec]) -> Stages:
    """Feature steps grouped into chains, and the joins that follow them all."""
    feature_steps = [s for s in spec if s.features]
    names = {s.name for s in feature_steps}
    chains: list[list[StepSpec]] = []
    joins: list[StepSpec] = []
    where: dict[str, list[StepSpec]] = {}
    for step in feature_steps:
        upstream = [n for n in step.needs if n in names]
        if any(n in {j.name for j in joins} for n in upstream):
            raise ValueError(f"step {step.name!r}: no step may need a join (needs {upstream})")
        if not upstream:
            chain = [step]
            chains.append(chain)
        elif len(upstream) == 1 and upstream[0] in where and where[upstream[0]][-1].name == upstream[0]:
            chain = where[upstream[0]]
            chain.append(step)
        elif len(upstream) > 1 and all(n in where for n in upstream):
            joins.append(step)
            continue
        else:
            raise ValueError(f"step {step.name!r}: feature steps must form chains (needs {upstream})")
        where[step.name] = chain
    return Stages(chains, joins)


def _wanted(step: StepSpec) -> State:
    tests = [{"Variable": f"$.wants.{f}", "BooleanEquals": True} for f in step.features]
    return tests[0] if len(tests) == 1 else {"Or": tests}


@dataclass(frozen=True)
class Targets:
    """Where the steps' jobs and reports go."""

    queues: Mapping[str, str]
    job_definitions: Mapping[str, str]
    events_function_arn: str
    retry_interval_s: int
    queue_wait_s: int
    # When set, GPU steps go to the GPU work queue and run in batches.
    gpu_batching: GpuBatching | None = None

    def step_task(self, step: StepSpec, *, next_state: str, catch_state: str) -> State:
        """The Task state that runs `step`: a batched GPU step, or a job of its own."""
        if step.compute == "gpu" and self.gpu_batching is not None:
            return queued_task(
                step,
                batching=self.gpu_batching,
                retry_interval_s=self.retry_interval_s,
                queue_wait_s=self.queue_wait_s,
                next_state=next_state,
                catch_state=catch_state,
            )
        return batch_task(
            step,
            queue_arn=self.queues[step.compute],
            job_definition_arn=self.job_definitions[step.image],
            retry_interval_s=self.retry_interval_s,
            queue_wait_s=self.queue_wait_s,
            next_state=next_state,
            catch_state=catch_state,
        )


def _step_states(step: StepSpec, upstream: list[str], after: str, t: Targets) -> dict[str, State]:
    """`<step> requested?` and what follows it: the job, or `blocked` when an upstream failed;
    a failure reported, then `after`."""
    states: dict[str, State] = {}
    wanted = _wanted(step)
    choices: list[State] = []
    if upstream:
        # The step needs its upstreams' output: if one failed in this task, this fails too.
        # (Not requested, an upstream stays `skipped`: this step reads what an earlier task left.)
        failed = [{"Variable": f"$.outcome.{n}.status", "StringEquals": "failed"} for n in upstream]
        choices.append(
            {
                "And": [wanted, failed[0] if len(failed) == 1 else {"Or": failed}],
                "Next": f"{step.name} blocked",
            }
        )
        needed = upstream[0] if len(upstream) == 1 else " and ".join(upstream)
        cause = (
            f"{step.name} needs {needed}, which failed"
            if len(upstream) == 1
            else f"{step.name} needs {needed}: one failed"
        )
        states[f"{step.name} blocked"] = {
            "Type": "Pass",
            "Result": {"Error": "UpstreamFailed", "Cause": cause},
            "ResultPath": "$.error",
            "Next": f"{step.name} failed",
        }
    choices.append({**wanted, "Next": step.name})
    states[f"{step.name} requested?"] = {"Type": "Choice", "Choices": choices, "Default": after}
    states[step.name] = t.step_task(step, next_state=after, catch_state=f"{step.name} failed")
    states[f"{step.name} failed"] = lambda_task(
        t.events_function_arn,
        {
            "action": "feature_failed",
            "tenant_id.$": "$.tenant_id",
            "task_id.$": "$.task_id",
            # The events Lambda fails every feature of the step that serves this one.
            "feature": str(step.features[0]),
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
    return states


def branch(chain: list[StepSpec], t: Targets) -> State:
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
        after = f"{chain[i + 1].name} requested?" if i + 1 < len(chain) else done
        states.update(_step_states(step, [chain[i - 1].name] if i > 0 else [], after, t))
    states[done] = {"Type": "Pass", "OutputPath": "$.outcome", "End": True}
    return {"StartAt": start, "States": states}


def joins(stages: Stages, t: Targets, *, after: str) -> tuple[str, dict[str, State]]:
    """The states of stage two, run after the Parallel (whose results are at `$.branches`, one
    outcome object per chain): its first state's name, and the states, the last going to `after`."""
    if not stages.joins:
        return after, {}
    # One object of every branch's outcomes, merged with intrinsics: `$.branches[0].x` is a path
    # some interpreters (moto's) answer with a list.
    merged = "States.ArrayGetItem($.branches, 0)"
    for i in range(1, len(stages.chains)):
        merged = f"States.JsonMerge({merged}, States.ArrayGetItem($.branches, {i}), false)"
    states: dict[str, State] = {
        "gather outcomes": {
            "Type": "Pass",
            # What `prepare` passed on, the branches, and their outcomes as one object.
            "Parameters": {
                **{f"{k}.$": f"$.{k}" for k in ("tenant_id", "task_id", "asset_id", "features", "wants")},
                "branches.$": "$.branches",
                "outcome.$": merged,
            },
            "Next": f"{stages.joins[0].name} join",
        }
    }
    names = {s.name for chain in stages.chains for s in chain}
    for i, step in enumerate(stages.joins):
        nxt = f"{stages.joins[i + 1].name} join" if i + 1 < len(stages.joins) else after
        # Its outcome exists whatever was requested, as a branch's steps' do.
        states[f"{step.name} join"] = {
            "Type": "Pass",
            "Result": {"status": SKIPPED},
            "ResultPath": f"$.outcome.{step.name}",
            "Next": f"{step.name} requested?",
        }
        states.update(_step_states(step, [n for n in step.needs if n in names], nxt, t))
    return "gather outcomes", states
