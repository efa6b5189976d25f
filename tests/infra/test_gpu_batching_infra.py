"""GPU batching in the synthesized template (infra/pipeline.py): the GPU work queue and its DLQ,
the batcher Lambda fed by the queue and by the GPU queue's failed jobs, the state machine's GPU
states sending to the queue, and who may do what with queue, manifests and task tokens."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import names
from infra.pipeline import (
    BATCHER_MAX_CONCURRENCY,
    BATCHER_TIMEOUT,
    DEFAULT_GPU_BATCH_MAX_ITEMS,
    DEFAULT_GPU_BATCH_WINDOW_S,
    GPU_MAX_RECEIVES,
    consumer_batch_size,
    gpu_batching_context,
)
from mediaindex.adapters.aws.state_machine import DEFAULT_QUEUE_WAIT_S
from mediaindex.adapters.aws.state_machine_tasks import (
    BATCH_SUBMIT_SYNC,
    SQS_SEND_WAIT,
    GpuBatching,
    queued_task,
)
from mediaindex.pipeline.spec import STEP_BY_NAME, STEPS
from tests.infra.conftest import ROOT, Synth
from tests.infra.test_stack import as_list, resources

pytestmark = pytest.mark.infra


def logical(synth: Synth, construct: Any) -> str:
    return str(synth.stack.get_logical_id(construct.node.default_child))


def role_statements(doc: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the role."""
    return [
        s
        for p in resources(doc, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def granted(doc: dict[str, Any], role_id: str, action: str) -> list[Any]:
    """The resources the role's policies give `action` on."""
    return [
        r
        for s in role_statements(doc, role_id)
        if action in as_list(s["Action"])
        for r in as_list(s["Resource"])
    ]


def states_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The state machine's states by name, branches' too (a token is kept as its JSON text)."""
    (machine,) = resources(doc, "AWS::StepFunctions::StateMachine").values()
    definition = machine["Properties"]["DefinitionString"]
    parts = definition["Fn::Join"][1] if isinstance(definition, dict) else [definition]
    text = "".join(p if isinstance(p, str) else json.dumps(json.dumps(p))[1:-1] for p in parts)
    out: dict[str, dict[str, Any]] = {}

    def walk(machine: dict[str, Any]) -> None:
        for name, state in machine["States"].items():
            out[name] = state
            for branch in state.get("Branches", []):
                walk(branch)

    walk(json.loads(text))
    return out


def gpu_queue_arn(synth: Synth) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical(synth, synth.stack.compute.gpu_queue), "JobQueueArn"]}


def ref_text(synth: Synth, construct: Any) -> str:
    return json.dumps({"Ref": logical(synth, construct)})


def test_the_gpu_work_queue_is_encrypted_tls_only_with_a_dead_letter_queue(synth: Synth) -> None:
    pipeline = synth.stack.pipeline
    queue = synth.doc["Resources"][logical(synth, pipeline.gpu_work)]["Properties"]
    dlq = synth.doc["Resources"][logical(synth, pipeline.gpu_dlq)]["Properties"]
    # SQS-managed encryption on both; a group the batcher keeps failing waits in the DLQ 14 days
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [logical(synth, pipeline.gpu_dlq), "Arn"]},
        "maxReceiveCount": GPU_MAX_RECEIVES,
    }
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    # A message stays hidden while an invoke may still be working on it (AWS: 6x the timeout + window)
    assert queue["VisibilityTimeout"] >= 6 * BATCHER_TIMEOUT.to_seconds() + DEFAULT_GPU_BATCH_WINDOW_S
    batcher = synth.doc["Resources"][logical(synth, pipeline.gpu_batcher.function)]["Properties"]
    assert batcher["Timeout"] == BATCHER_TIMEOUT.to_seconds()
    # Only TLS requests reach either queue
    for q in (pipeline.gpu_work, pipeline.gpu_dlq):
        (policy,) = [
            p["Properties"]
            for p in resources(synth.doc, "AWS::SQS::QueuePolicy").values()
            if {"Ref": logical(synth, q)} in p["Properties"]["Queues"]
        ]
        deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_batcher_gets_the_queue_in_groups_and_reports_partial_failures(synth: Synth) -> None:
    pipeline = synth.stack.pipeline
    (mapping,) = [
        m["Properties"]
        for m in resources(synth.doc, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [logical(synth, pipeline.gpu_work), "Arn"]}
    ]
    assert mapping["FunctionName"] == {"Ref": logical(synth, pipeline.gpu_batcher.function)}
    assert mapping["BatchSize"] == DEFAULT_GPU_BATCH_MAX_ITEMS * 4
    assert mapping["MaximumBatchingWindowInSeconds"] == DEFAULT_GPU_BATCH_WINDOW_S
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": BATCHER_MAX_CONCURRENCY}
    # The role the Lambda service polls with may consume that queue alone
    role = logical(synth, pipeline.gpu_batcher.role)
    queue_arn = {"Fn::GetAtt": [logical(synth, pipeline.gpu_work), "Arn"]}
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
        assert granted(synth.doc, role, action) == [queue_arn]


def test_failed_jobs_of_the_gpu_queue_reach_the_batcher(synth: Synth) -> None:
    stack = synth.stack
    pipeline = stack.pipeline
    rule = synth.doc["Resources"][logical(synth, pipeline.gpu_failed_rule)]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.batch"],
        "detail-type": ["Batch Job State Change"],
        "detail": {"status": ["FAILED"], "jobQueue": [gpu_queue_arn(synth)]},
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [logical(synth, pipeline.gpu_batcher.function), "Arn"]}
    assert pipeline.gpu_batcher.dlq is not None
    assert target["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": [logical(synth, pipeline.gpu_batcher.dlq), "Arn"]}
    }
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 4


def test_the_batcher_submits_to_the_gpu_queue_with_the_ml_definition(synth: Synth) -> None:
    stack = synth.stack
    fn = synth.doc["Resources"][logical(synth, stack.pipeline.gpu_batcher.function)]["Properties"]
    env = fn["Environment"]["Variables"]
    ml = stack.compute.job_definitions["ml"]
    assert env[names.ENV_GPU_QUEUE] == gpu_queue_arn(synth)
    assert env[names.ENV_GPU_JOB_DEFINITION] == {"Ref": logical(synth, ml)}
    assert env[names.ENV_BUCKET] == {"Ref": logical(synth, stack.storage.bucket)}
    assert env[names.ENV_GPU_BATCH_MAX_ITEMS] == str(DEFAULT_GPU_BATCH_MAX_ITEMS)
    gpu_steps = [s for s in STEPS if s.compute == "gpu"]
    assert env[names.ENV_GPU_ITEM_TIMEOUT] == str(max(s.timeout_s for s in gpu_steps))
    # The ml image's default command is the step entrypoint; the batcher overrides its arguments
    dockerfile = (ROOT / "containers" / "ml" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "functions.batch_step.main"]' in dockerfile


def test_the_state_machine_sends_gpu_steps_to_the_queue_and_submits_only_the_others(synth: Synth) -> None:
    stack = synth.stack
    states = states_of(synth.doc)
    queue_url = ref_text(synth, stack.pipeline.gpu_work)
    for step in STEPS:
        state = states[step.name]
        if step.compute == "gpu":
            assert state["Resource"] == SQS_SEND_WAIT
            assert json.dumps(state["Parameters"]["QueueUrl"]) == json.dumps(queue_url)
        else:
            assert state["Resource"] == BATCH_SUBMIT_SYNC
    # Its role sends to that queue, and submits to the CPU queue and media definition alone
    role = logical(synth, stack.pipeline.role)
    assert granted(synth.doc, role, "sqs:SendMessage") == [
        {"Fn::GetAtt": [logical(synth, stack.pipeline.gpu_work), "Arn"]}
    ]
    submit = json.dumps(granted(synth.doc, role, "batch:SubmitJob"))
    assert logical(synth, stack.compute.cpu_queue) in submit
    assert logical(synth, stack.compute.gpu_queue) not in submit
    assert logical(synth, stack.compute.job_definitions["media"]) in submit
    assert logical(synth, stack.compute.job_definitions["ml"]) not in submit


def test_manifests_and_tokens_are_granted_to_the_batcher_and_the_ml_jobs_alone(synth: Synth) -> None:
    stack = synth.stack
    machine = {"Ref": logical(synth, stack.pipeline.state_machine)}
    manifests = {"Fn::Join": ["", [{"Fn::GetAtt": [logical(synth, stack.storage.bucket), "Arn"]},
                                   f"/{names.GPU_MANIFESTS}*"]]}  # fmt: skip
    batcher = logical(synth, stack.pipeline.gpu_batcher.role)
    ml = logical(synth, stack.compute.job_roles["ml"])
    # The batcher writes manifests and reads them back, submits, keeps tokens alive and fails them
    assert granted(synth.doc, batcher, "s3:PutObject") == [manifests]
    assert granted(synth.doc, batcher, "s3:GetObject") == [manifests]
    assert granted(synth.doc, batcher, "batch:SubmitJob") == [
        gpu_queue_arn(synth),
        {"Ref": logical(synth, stack.compute.job_definitions["ml"])},
    ]
    assert granted(synth.doc, batcher, "states:SendTaskHeartbeat") == [machine]
    assert granted(synth.doc, batcher, "states:SendTaskFailure") == [machine]
    assert granted(synth.doc, batcher, "states:SendTaskSuccess") == []
    # The ml jobs read manifests and settle their items' tokens
    assert manifests in granted(synth.doc, ml, "s3:GetObject")
    for action in ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"):
        assert granted(synth.doc, ml, action) == [machine]
    # Nobody else may settle a token or touch the manifests
    others = [r for r in resources(synth.doc, "AWS::IAM::Role") if r not in (batcher, ml)]
    for role in others:
        statements = json.dumps(role_statements(synth.doc, role))
        assert "states:SendTask" not in statements and names.GPU_MANIFESTS not in statements, role


def test_context_sets_the_batch_size_and_the_gather_window() -> None:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    import app as cdk_app

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    # As `cdk deploy -c ...` passes them: strings.
    flags = {names.CTX_GPU_BATCH_MAX_ITEMS: "4", names.CTX_GPU_BATCH_WINDOW_S: "5"}
    stack = cdk_app.build(cdk.App(context={**context, "aws:cdk:bundling-stacks": [], **flags}))
    doc = dict(Template.from_stack(stack).to_json())
    (mapping,) = [
        m["Properties"]
        for m in resources(doc, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"].get("MaximumBatchingWindowInSeconds") is not None
    ]
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (16, 5)
    fn = doc["Resources"][stack.resolve(stack.pipeline.gpu_batcher.function.function_name)["Ref"]]
    assert fn["Properties"]["Environment"]["Variables"][names.ENV_GPU_BATCH_MAX_ITEMS] == "4"
    # The GPU states' time limits follow: a full batch's run, the window in the heartbeat
    embedding = states_of(doc)["embedding"]
    default = states_of_default_embedding()
    assert embedding["TimeoutSeconds"] - default["TimeoutSeconds"] == (
        (4 - DEFAULT_GPU_BATCH_MAX_ITEMS) * STEP_BY_NAME["embedding"].timeout_s
        + (5 - DEFAULT_GPU_BATCH_WINDOW_S)
    )
    assert embedding["HeartbeatSeconds"] - default["HeartbeatSeconds"] == 5 - DEFAULT_GPU_BATCH_WINDOW_S


def states_of_default_embedding() -> dict[str, Any]:
    """The embedding state the default context makes."""
    batching = GpuBatching("q", DEFAULT_GPU_BATCH_MAX_ITEMS, DEFAULT_GPU_BATCH_WINDOW_S)
    return queued_task(
        STEP_BY_NAME["embedding"],
        batching=batching,
        retry_interval_s=30,
        queue_wait_s=DEFAULT_QUEUE_WAIT_S,
        next_state="n",
        catch_state="c",
    )


@pytest.mark.parametrize(
    ("max_items", "window_s", "message"),
    [("0", None, names.CTX_GPU_BATCH_MAX_ITEMS), ("2501", None, names.CTX_GPU_BATCH_MAX_ITEMS),
     (None, "301", names.CTX_GPU_BATCH_WINDOW_S), (None, "-1", names.CTX_GPU_BATCH_WINDOW_S)],
)  # fmt: skip
def test_a_batch_shape_lambda_would_refuse_is_refused_at_synth(
    max_items: str | None, window_s: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        gpu_batching_context(max_items, window_s)


def test_without_a_window_an_invoke_gets_the_ten_messages_lambda_allows() -> None:
    assert gpu_batching_context(None, None) == (DEFAULT_GPU_BATCH_MAX_ITEMS, DEFAULT_GPU_BATCH_WINDOW_S)
    assert gpu_batching_context("2500", "0") == (2500, 0)
    assert consumer_batch_size(16, 0) == 10
    assert consumer_batch_size(2, 0) == 8
    assert consumer_batch_size(2500, 300) == 10_000
