"""The reconciler's schedule in the synthesized template (infra/reconcile.py): a rate rule that
invokes the function, the function's wiring, and a role holding exactly what a sweep calls."""

from __future__ import annotations

import json

import pytest

from infra.reconcile import ENV_QUEUES, RATE
from tests.infra.conftest import Synth
from tests.infra.test_webhooks_infra import arn_of, grants, logical_id

pytestmark = pytest.mark.infra


def test_a_rate_rule_runs_the_reconciler_one_at_a_time(synth: Synth) -> None:
    rec = synth.stack.reconcile
    rule = synth.doc["Resources"][logical_id(synth, rec.rule)]["Properties"]
    assert rule["ScheduleExpression"] == f"rate({int(RATE.to_minutes())} minutes)"
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [logical_id(synth, rec.fn.function), "Arn"]}
    fn = synth.doc["Resources"][logical_id(synth, rec.fn.function)]["Properties"]
    assert fn["ReservedConcurrentExecutions"] == 1
    env = fn["Environment"]["Variables"]
    machine = synth.stack.pipeline.state_machine
    assert env["MEDIAINDEX_STATE_MACHINE_ARN"] == {"Ref": logical_id(synth, machine)}
    queues = json.dumps(env[ENV_QUEUES])
    for queue in (synth.stack.compute.cpu_queue, synth.stack.compute.gpu_queue):
        assert logical_id(synth, queue) in queues


def test_the_reconciler_role_holds_only_what_a_sweep_calls(synth: Synth) -> None:
    stack = synth.stack
    role = grants(synth, stack.reconcile.fn.role)
    machine = json.dumps({"Ref": logical_id(synth, stack.pipeline.state_machine)}, sort_keys=True)

    assert role["states:ListExecutions"] == {machine}
    executions = role["states:DescribeExecution"]
    assert executions == role["states:StopExecution"] and len(executions) == 1
    assert ":execution:" in next(iter(executions))
    assert role["batch:ListJobs"] == {'"*"'}
    assert len(role["batch:TerminateJob"]) == 1 and "job/*" in next(iter(role["batch:TerminateJob"]))
    table = arn_of(synth, stack.storage.table)
    assert {a for a in role if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        # the index purge job: a page's tasks, its rows in batches, the index row and its ledger item
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        # failing a stuck task's features moves the usage counters (an ADD in its transaction)
        "dynamodb:UpdateItem",
    }
    assert all(role[a] == {table} for a in role if a.startswith("dynamodb:") and a != "dynamodb:Query")
    assert len(role["dynamodb:Query"]) == 2 and table in role["dynamodb:Query"]  # and its GSIs
    assert role["sqs:SendMessage"] == {arn_of(synth, stack.webhooks.queue)}
    assert {a.split(":")[0] for a in role} == {"states", "batch", "dynamodb", "s3", "sqs", "logs", "xray"}
    assert set(role) - {a for a in role if a.startswith(("dynamodb:", "states:", "batch:"))} == {
        "s3:DeleteObject",
        "s3:ListBucket",
        "sqs:SendMessage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
