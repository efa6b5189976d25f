"""GPU batches (mediaindex.adapters.aws.gpu_batches): reading the work, cutting it into batches fair
across tenants, manifests, and running a batch with each item's token settled on its own. The state
machine and the batch path together run under moto in tests/functional/test_statemachine.py."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mediaindex.adapters.aws import gpu_batches as gb
from mediaindex.pipeline.spec import STEP_BY_NAME

GPU_STEPS = [name for name, s in STEP_BY_NAME.items() if s.compute == "gpu"]


def work(tenant: str, task: str, step: str = "transcription") -> gb.GpuWork:
    return gb.GpuWork(tenant, task, step, f"token-{tenant}-{task}-{step}")


class FakeStepFunctions:
    """Records the token calls; tokens in `settled` answer as Step Functions does for a state no
    longer waiting, `broken` as an outage."""

    def __init__(self, settled: set[str] | None = None, broken: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.settled = settled or set()
        self.broken = broken
        self.lock = threading.Lock()

    def _call(self, op: str, **params: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append((op, params))
        if self.broken:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, op)
        if params["taskToken"] in self.settled:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "gone"}}, op)
        return {}

    def send_task_success(self, **p: Any) -> dict[str, Any]:
        return self._call("success", **p)

    def send_task_failure(self, **p: Any) -> dict[str, Any]:
        return self._call("failure", **p)

    def send_task_heartbeat(self, **p: Any) -> dict[str, Any]:
        return self._call("heartbeat", **p)


def test_a_message_is_read_only_when_it_names_a_gpu_step_of_a_well_formed_task() -> None:
    good = {"tenant_id": "ten_1", "task_id": "tsk_1", "step": "embedding", "token": "t"}
    assert gb.parse_work(json.dumps(good), GPU_STEPS) == gb.GpuWork("ten_1", "tsk_1", "embedding", "t")
    for bad in (
        "not json",
        "[]",
        json.dumps({**good, "token": ""}),
        json.dumps({k: v for k, v in good.items() if k != "task_id"}),
        json.dumps({**good, "step": "render"}),  # a CPU step is no GPU work
        json.dumps({**good, "tenant_id": "ten/../x"}),
        json.dumps({**good, "task_id": 7}),
    ):
        assert gb.parse_work(bad, GPU_STEPS) is None, bad


def test_batches_hold_one_tenant_each_and_tenants_take_turns() -> None:
    # Given a flood from tenant a, then one item each from b and c
    flood = [work("a", f"t{i}") for i in range(5)]
    queue = [*flood[:3], work("b", "t0"), *flood[3:], work("c", "t0")]

    batches = gb.plan_batches(queue, 2)

    # Then each batch is one tenant's, at most 2 items, and b and c go before a's backlog
    assert [[w.tenant_id for w in b] for b in batches] == [["a", "a"], ["b"], ["c"], ["a", "a"], ["a"]]
    # and nothing is lost or reordered within a tenant
    assert [w for b in batches for w in b if w.tenant_id == "a"] == flood
    assert gb.plan_batches([], 4) == []
    with pytest.raises(ValueError):
        gb.plan_batches(queue, 0)


def test_a_manifest_round_trips_and_refuses_what_this_release_cannot_read() -> None:
    batch = [work("a", "t1"), work("a", "t2", "embedding")]
    assert gb.parse_manifest(gb.manifest_body(batch), GPU_STEPS) == batch
    for raw in (
        json.dumps({"version": 99, "items": []}),
        json.dumps({"version": 1, "items": [{"tenant_id": "a"}]}),
        json.dumps([1]),
    ):
        with pytest.raises(ValueError):
            gb.parse_manifest(raw.encode(), GPU_STEPS)


def test_only_a_batch_jobs_own_manifest_key_is_taken_from_its_command() -> None:
    key = f"{gb.MANIFEST_PREFIX}abc.json"
    assert gb.manifest_key_of(["--batch-manifest", key]) == key
    assert gb.manifest_key_of(["--tenant-id", "t", "--task-id", "x", "--step", "probe"]) is None
    assert gb.manifest_key_of(["--batch-manifest", "originals/aa/t/x/orig.mp4"]) is None
    assert gb.manifest_key_of(["--batch-manifest", f"{gb.MANIFEST_PREFIX}../originals/x"]) is None
    assert gb.manifest_key_of(["--batch-manifest"]) is None


def test_a_batch_settles_each_token_and_a_crash_fails_its_item_alone() -> None:
    # Given three items, the second crashing with a message that must not reach users
    sfn = FakeStepFunctions()
    items = [work("a", "t1"), work("a", "t2"), work("a", "t3", "embedding")]
    ran: list[str] = []

    def run_item(w: gb.GpuWork) -> bool:
        ran.append(w.task_id)
        if w.task_id == "t2":
            raise RuntimeError("CUDA error at /opt/secret/path")
        return w.task_id != "t3"  # t3 had nothing to do

    counts = gb.run_batch(items, run_item, gb.TokenReporter(sfn), heartbeat_s=60)

    # Then every item ran, in order; the crash failed t2 alone
    assert ran == ["t1", "t2", "t3"] and counts == {"completed": 2, "crashed": 1}
    settled = [(op, p["taskToken"]) for op, p in sfn.calls if op != "heartbeat"]
    assert settled == [("success", items[0].token), ("failure", items[1].token), ("success", items[2].token)]
    failure = next(p for op, p in sfn.calls if op == "failure")
    assert failure["error"] == gb.ERROR_CRASHED
    assert "RuntimeError" in failure["cause"] and "transcription" in failure["cause"]
    assert "/opt/secret" not in failure["cause"]  # the details stay in the job's log
    outputs = [json.loads(p["output"]) for op, p in sfn.calls if op == "success"]
    assert outputs == [{"status": "completed", "ran": True}, {"status": "completed", "ran": False}]


def test_heartbeats_go_to_the_items_still_waiting() -> None:
    sfn = FakeStepFunctions()
    beats = gb.Heartbeats(gb.TokenReporter(sfn), interval_s=60)
    beats.track(["x", "y", "z"])
    beats.done("x")
    beats.beat()
    assert sorted(p["taskToken"] for op, p in sfn.calls if op == "heartbeat") == ["y", "z"]
    # A failed beat does not stop the work (the next interval tries again)
    down = gb.Heartbeats(gb.TokenReporter(FakeStepFunctions(broken=True)), interval_s=60)
    down.track(["y"])
    down.beat()


def test_a_settled_token_is_ignored_and_an_outage_is_raised() -> None:
    item = work("a", "t1")
    gb.TokenReporter(FakeStepFunctions(settled={item.token})).succeed(item, {"status": "completed"})
    with pytest.raises(ClientError):
        gb.TokenReporter(FakeStepFunctions(broken=True)).succeed(item, {"status": "completed"})


def test_a_dead_jobs_tokens_are_all_failed_with_its_reason() -> None:
    items = [work("a", "t1"), work("a", "t2")]
    sfn = FakeStepFunctions(settled={items[0].token})  # t1 had finished before the job died
    assert gb.fail_batch(items, gb.TokenReporter(sfn), "Host EC2 terminated.") == 2
    assert [(op, p["taskToken"], p["error"], p["cause"]) for op, p in sfn.calls] == [
        ("failure", t.token, gb.ERROR_JOB_FAILED, "Host EC2 terminated.") for t in items
    ]


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:
        self.objects[Key] = Body


class FakeBatch:
    def __init__(self, fail: bool = False) -> None:
        self.jobs: list[dict[str, Any]] = []
        self.fail = fail

    def submit_job(self, **params: Any) -> dict[str, str]:
        if self.fail:
            raise ClientError({"Error": {"Code": "ClientException", "Message": "quota"}}, "SubmitJob")
        self.jobs.append(params)
        return {"jobId": f"job-{len(self.jobs)}"}


def test_the_batcher_writes_the_manifest_then_submits_one_job_shared_by_the_tenant() -> None:
    s3, batch, sfn = FakeS3(), FakeBatch(), FakeStepFunctions()
    target = gb.BatchTarget("arn:queue/gpu", "arn:job-definition/ml:3", 3600)
    items = [work("ten_a", "t1"), work("ten_a", "t2", "embedding")]

    job_id = gb.GpuBatcher(s3, batch, "media", target, sfn).submit(items)

    (job,) = batch.jobs
    assert job_id == "job-1" and job["shareIdentifier"] == "ten_a"
    key = gb.manifest_key_of(job["containerOverrides"]["command"])
    assert key is not None and gb.parse_manifest(s3.objects[key], GPU_STEPS) == items
    assert job["timeout"] == {"attemptDurationSeconds": 7200} and job["retryStrategy"] == {"attempts": 1}
    assert (job["jobQueue"], job["jobDefinition"]) == (target.queue_arn, target.job_definition_arn)
    # The states' heartbeat clocks restart once their job is queued
    assert sorted(p["taskToken"] for op, p in sfn.calls if op == "heartbeat") == sorted(
        w.token for w in items
    )
    # A batch of two tenants is refused; a refused SubmitJob raises (its messages come back)
    with pytest.raises(ValueError):
        gb.GpuBatcher(s3, batch, "media", target).submit([work("a", "t"), work("b", "t")])
    with pytest.raises(ClientError):
        gb.GpuBatcher(s3, FakeBatch(fail=True), "media", target).submit(items)


def test_a_failed_heartbeat_after_submit_does_not_send_the_batch_back() -> None:
    # A raise here would make SQS deliver the messages again: a second job for the same items.
    batch = FakeBatch()
    target = gb.BatchTarget("arn:queue/gpu", "arn:job-definition/ml:3", 3600)
    sfn = FakeStepFunctions(broken=True)
    assert gb.GpuBatcher(FakeS3(), batch, "media", target, sfn).submit([work("a", "t1")]) == "job-1"
    assert len(batch.jobs) == 1 and [op for op, _ in sfn.calls] == ["heartbeat"]
