"""The webhook delivery infrastructure in the synthesized template (infra/webhooks.py): the queue
and its DLQ, the consumer mapping, the KMS key, and who may do what with them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.webhooks import CONSUME, ENV_KEY, ENV_QUEUE, MAX_RECEIVES
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra


def logical_id(synth: Synth, construct: Any) -> str:
    return str(synth.stack.get_logical_id(construct.node.default_child))


def grants(synth: Synth, role: Any) -> dict[str, set[str]]:
    """action -> the resources (as JSON) the role's own policies grant it on."""
    role_id = logical_id(synth, role)
    out: dict[str, set[str]] = {}
    for r in synth.doc["Resources"].values():
        if r["Type"] != "AWS::IAM::Policy" or {"Ref": role_id} not in r["Properties"]["Roles"]:
            continue
        for s in r["Properties"]["PolicyDocument"]["Statement"]:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            for a in actions:
                out.setdefault(a, set()).update(json.dumps(x, sort_keys=True) for x in resources)
    return out


def arn_of(synth: Synth, construct: Any) -> str:
    return json.dumps({"Fn::GetAtt": [logical_id(synth, construct), "Arn"]}, sort_keys=True)


def test_the_delivery_queue_has_a_dlq_encryption_and_a_partial_batch_consumer(synth: Synth) -> None:
    hooks = synth.stack.webhooks
    queue = synth.doc["Resources"][logical_id(synth, hooks.queue)]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [logical_id(synth, hooks.dlq), "Arn"]},
        "maxReceiveCount": MAX_RECEIVES,
    }
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] >= 6 * 30
    mappings = [
        r["Properties"]
        for r in synth.doc["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    (mapping,) = [
        m for m in mappings if m["EventSourceArn"] == {"Fn::GetAtt": [logical_id(synth, hooks.queue), "Arn"]}
    ]
    assert mapping["FunctionName"] == {"Ref": logical_id(synth, hooks.delivery_fn.function)}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    key = synth.doc["Resources"][logical_id(synth, hooks.key)]["Properties"]
    assert key["EnableKeyRotation"] is True


def test_only_the_delivery_function_opens_secrets_and_each_role_gets_only_its_part(synth: Synth) -> None:
    stack = synth.stack
    hooks = stack.webhooks
    queue, key = arn_of(synth, hooks.queue), arn_of(synth, hooks.key)
    delivery = grants(synth, hooks.delivery_fn.role)
    assert delivery["kms:Decrypt"] == {key}
    assert "kms:Encrypt" not in delivery
    assert delivery["sqs:SendMessage"] == {queue}
    for action in CONSUME:
        assert delivery[action] == {queue}
    assert {a for a in delivery if a.startswith("dynamodb:")} == {"dynamodb:GetItem", "dynamodb:PutItem"}

    api = grants(synth, stack.api.handler.role)
    assert api["kms:Encrypt"] == {key}
    assert "kms:Decrypt" not in api
    assert api["sqs:SendMessage"] == {queue}
    events = grants(synth, stack.pipeline.events_fn.role)
    assert events["sqs:SendMessage"] == {queue}
    assert not [a for a in events if a.startswith("kms:")]
    for role in (stack.api.handler.role, stack.pipeline.events_fn.role, stack.pipeline.upload_fn.role):
        assert not [a for a in grants(synth, role) if a in CONSUME]


def test_the_functions_that_use_webhooks_are_told_the_queue_and_key(synth: Synth) -> None:
    stack = synth.stack
    hooks = stack.webhooks
    wanted = {
        ENV_QUEUE: {"Ref": logical_id(synth, hooks.queue)},
        ENV_KEY: {"Fn::GetAtt": [logical_id(synth, hooks.key), "Arn"]},
    }
    for fn in (hooks.delivery_fn, stack.api.handler, stack.pipeline.events_fn):
        env = synth.doc["Resources"][logical_id(synth, fn.function)]["Properties"]["Environment"]["Variables"]
        assert {k: env[k] for k in wanted} == wanted
    upload = stack.pipeline.upload_fn.function
    env = synth.doc["Resources"][logical_id(synth, upload)]["Properties"]["Environment"]["Variables"]
    assert ENV_QUEUE not in env
    handler = synth.doc["Resources"][logical_id(synth, hooks.delivery_fn.function)]["Properties"]["Handler"]
    assert handler == "handler.handler"


def test_a_dlq_message_raises_the_alarm(synth: Synth) -> None:
    alarm = synth.doc["Resources"][logical_id(synth, synth.stack.webhooks.dlq_alarm)]["Properties"]
    assert alarm["Threshold"] == 1
    assert {
        "Name": "QueueName",
        "Value": {"Fn::GetAtt": [logical_id(synth, synth.stack.webhooks.dlq), "QueueName"]},
    } in alarm["Dimensions"]
    assert alarm["AlarmActions"]
