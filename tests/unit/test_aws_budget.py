"""The per-asset AWS budget's counting (bench/aws_budget.py) on recorded calls, and the scale model
(bench/aws_prices.py) on a budget made up here."""

from __future__ import annotations

import io
import math
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bench import aws_budget as ab
from bench import aws_prices as prices

GSI = {"gsi1": "gsi1pk"}


def item(pk: str, filler: int = 0, **extra: str) -> dict[str, Any]:
    """An item of known size: pk, sk and a `doc` of `filler` characters."""
    out: dict[str, Any] = {"pk": {"S": pk}, "sk": {"S": "A"}, "doc": {"S": "x" * filler}}
    out.update({k: {"S": v} for k, v in extra.items()})
    return out


def size_of(pk: str, filler: int) -> int:
    return 2 + len(pk) + 2 + 1 + 3 + filler  # "pk" + value, "sk" + "A", "doc" + filler


def test_item_size_follows_dynamodb_rules() -> None:
    assert ab.item_size(item("T#1", 10)) == size_of("T#1", 10)
    assert ab.attribute_size({"N": "12345"}) == 1 + 3  # 5 significant digits: 3 bytes, plus 1
    assert ab.attribute_size({"N": "-0.50"}) == 1 + 1
    assert ab.attribute_size({"BOOL": True}) == 1
    assert ab.attribute_size({"L": [{"S": "ab"}, {"NULL": True}]}) == 3 + (1 + 2) + (1 + 1)
    assert ab.attribute_size({"M": {"k": {"S": "abc"}}}) == 3 + 1 + 1 + 3
    assert ab.attribute_size({"SS": ["a", "bc"]}) == 3
    assert ab.item_size(None) == 0


def test_an_unknown_attribute_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown DynamoDB attribute type"):
        ab.attribute_size({"X": "?"})


def test_put_costs_one_wru_per_started_kb_and_again_for_each_gsi_the_item_is_in() -> None:
    small = ab.Call("dynamodb", "PutItem", {"TableName": "t", "Item": item("T#1", 100)}, before=[None])
    big = ab.Call("dynamodb", "PutItem", {"TableName": "t", "Item": item("T#1", 1500)}, before=[None])
    indexed = ab.Call(
        "dynamodb", "PutItem", {"TableName": "t", "Item": item("T#1", 1500, gsi1pk="IDX#1")}, before=[None]
    )

    assert ab.dynamo_capacity(small, GSI).wru == 1
    assert ab.dynamo_capacity(big, GSI).wru == 2
    cap = ab.dynamo_capacity(indexed, GSI)
    assert cap.wru == 4  # the table's copy and the GSI's
    assert cap.partitions == {"table/T#1": 2, "gsi1/IDX#1": 2}


def test_a_write_costs_the_larger_of_the_item_before_and_after() -> None:
    put_over_big = ab.Call(
        "dynamodb", "PutItem", {"TableName": "t", "Item": item("T#1", 10)}, before=[item("T#1", 3000)]
    )
    update = ab.Call(
        "dynamodb",
        "UpdateItem",
        {"TableName": "t", "Key": {"pk": {"S": "T#1"}, "sk": {"S": "A"}}},
        before=[item("T#1", 100)],
        after=[item("T#1", 2100)],
    )
    delete = ab.Call(
        "dynamodb",
        "DeleteItem",
        {"TableName": "t", "Key": {"pk": {"S": "T#1"}, "sk": {"S": "A"}}},
        before=[item("T#1", 1100)],
        after=[None],
    )
    delete_missing = ab.Call(
        "dynamodb", "DeleteItem", {"TableName": "t", "Key": {}}, before=[None], after=[None]
    )

    assert ab.dynamo_capacity(put_over_big, GSI).wru == 3
    assert ab.dynamo_capacity(update, GSI).wru == 3
    assert ab.dynamo_capacity(delete, GSI).wru == 2
    assert ab.dynamo_capacity(delete_missing, GSI).wru == 1  # a write is never free


def test_transactions_count_double_and_a_gsi_key_change_writes_both_gsi_partitions() -> None:
    moved = ab.Call(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "t", "Item": item("A#1", 100)}},
                {"Update": {"TableName": "t", "Key": {"pk": {"S": "A#2"}, "sk": {"S": "A"}}}},
                {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "I#1"}, "sk": {"S": "A"}}}},
            ]
        },
        before=[None, item("A#2", 10, gsi1pk="old"), item("I#1", 5000)],
        after=[None, item("A#2", 10, gsi1pk="new"), item("I#1", 5000)],
    )

    cap = ab.dynamo_capacity(moved, GSI)

    # put 2x1; update 2x1 on the table and on both GSI partitions; condition check 2x5 (its size).
    assert cap.wru == 2 + 2 * 3 + 10
    assert cap.partitions == {"table/A#1": 2, "table/A#2": 2, "gsi1/old": 2, "gsi1/new": 2, "table/I#1": 10}


def test_reads_cost_one_rru_per_4_kb_strongly_consistent_half_otherwise() -> None:
    got = {"Item": item("T#1", 5000)}
    strong = ab.Call("dynamodb", "GetItem", {"ConsistentRead": True}, response=got)
    weak = ab.Call("dynamodb", "GetItem", {}, response=got)
    missing = ab.Call("dynamodb", "GetItem", {"ConsistentRead": True}, response={})
    query = ab.Call(
        "dynamodb", "Query", {"ConsistentRead": True}, response={"Items": [item("T#1", 3000)] * 3}
    )
    on_gsi = ab.Call("dynamodb", "Query", {"IndexName": "gsi1"}, response={"Items": [item("T#1", 3000)] * 3})
    tx = ab.Call("dynamodb", "TransactGetItems", {}, response={"Responses": [got, {"Item": item("T#1", 1)}]})

    assert ab.dynamo_capacity(strong, GSI).rru == 2
    assert ab.dynamo_capacity(weak, GSI).rru == 1
    assert ab.dynamo_capacity(missing, GSI).rru == 1
    assert ab.dynamo_capacity(query, GSI).rru == 3  # ~9 KB summed, then rounded once
    assert ab.dynamo_capacity(on_gsi, GSI).rru == 1.5  # GSI reads are eventually consistent
    assert ab.dynamo_capacity(tx, GSI).rru == 2 * 2 + 2 * 1
    for call in (strong, query):
        assert ab.dynamo_capacity(call, GSI).wru == 0


def test_batch_writes_count_each_request() -> None:
    call = ab.Call(
        "dynamodb",
        "BatchWriteItem",
        {"RequestItems": {"t": [
            {"PutRequest": {"Item": item("S#1", 2000)}},
            {"DeleteRequest": {"Key": {"pk": {"S": "S#2"}, "sk": {"S": "A"}}}},
        ]}},
        before=[None, item("S#2", 10)],
        after=[None, None],
    )  # fmt: skip

    assert ab.dynamo_capacity(call, GSI).wru == 2 + 1
    assert ab.write_keys(call, ("pk", "sk")) == [
        ("t", {"pk": {"S": "S#1"}, "sk": {"S": "A"}}),
        ("t", {"pk": {"S": "S#2"}, "sk": {"S": "A"}}),
    ]


def test_s3_requests_are_sorted_by_how_s3_bills_them() -> None:
    def kind(op: str, **kw: Any) -> tuple[str, int]:
        return ab.s3_request(ab.Call("s3", op, {}, **kw))

    assert kind("PutObject", sent_bytes=10) == ("PUT", 10)
    assert kind("UploadPart", sent_bytes=7) == ("PUT_PART", 7)
    assert kind("CreateMultipartUpload") == ("PUT", 0)
    assert kind("GetObject", response={"ContentLength": 42}) == ("GET", 42)
    assert kind("HeadObject", response={"ContentLength": 42}) == ("HEAD", 0)
    assert kind("ListObjectsV2") == ("LIST", 0)
    assert kind("DeleteObjects") == ("DELETE", 0)
    assert kind("GetBucketCors") == ("OTHER", 0)


def test_totals_and_the_hot_shared_partition() -> None:
    calls = [
        ab.Call("dynamodb", "PutItem", {"Item": item("IDX#1", 10)}, before=[item("IDX#1", 10)]),
        ab.Call("dynamodb", "PutItem", {"Item": item("IDX#1", 10)}, before=[item("IDX#1", 10)]),
        ab.Call("dynamodb", "PutItem", {"Item": item("AST#9", 3000)}, before=[None]),
        ab.Call("s3", "PutObject", {}, sent_bytes=5),
        ab.Call("s3", "GetObject", {}, response={"ContentLength": 9}),
        ab.Call("sfn", "StartExecution", {}),
    ]

    t = ab.totals(calls, GSI)

    assert (t.wru, t.rru) == (1 + 1 + 3, 0)
    assert t.s3_requests == {"PUT": 1, "GET": 1} and t.s3_bytes == {"PUT": 5, "GET": 9}
    assert t.other_calls == {"sfn:StartExecution": 1}
    # The asset's own partition is written most, but only the index's is shared by every upload.
    assert ab.hot_partition(t.partitions, {"table/IDX#1"}) == ("table/IDX#1", 2)
    assert ab.hot_partition(t.partitions, set()) == (None, 0.0)


def test_body_size_of_what_botocore_is_given() -> None:
    stream = io.BytesIO(b"abcdef")
    stream.seek(2)
    assert ab.body_size(stream) == 4 and stream.tell() == 2
    assert ab.body_size(b"abc") == 3
    assert ab.body_size("é") == 2
    assert ab.body_size(None) == 0


def test_the_recorder_sees_requests_responses_and_items_before_and_after() -> None:
    client = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1").client(
        "dynamodb"
    )
    looked_up: list[tuple[str, str]] = []
    states = iter([item("T#1", 10), item("T#1", 2000)])  # the update's item before, then after

    def lookup(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        looked_up.append((table, key["pk"]["S"]))
        return next(states)

    recorder = ab.Recorder(lookup)
    recorder.attach(client)
    key = {"pk": {"S": "T#1"}, "sk": {"S": "A"}}
    with Stubber(client) as stub:
        stub.add_response("get_item", {"Item": item("T#1", 10)}, {"TableName": "t", "Key": key})
        stub.add_response("update_item", {}, {"TableName": "t", "Key": key, "UpdateExpression": "SET a = :a"})
        with recorder.phase("one"):
            client.get_item(TableName="t", Key=key)
        client.update_item(TableName="t", Key=key, UpdateExpression="SET a = :a")
    recorder.detach()
    with Stubber(client) as stub:
        stub.add_response("get_item", {}, {"TableName": "t", "Key": key})
        client.get_item(TableName="t", Key=key)  # after detach: not recorded

    get, update = recorder.calls
    assert (get.service, get.operation, get.phase, get.status) == ("dynamodb", "GetItem", "one", 200)
    assert get.response["Item"] == item("T#1", 10)
    assert update.phase == ""
    assert update.before == [item("T#1", 10)] and update.after == [item("T#1", 2000)]
    assert looked_up == [("t", "T#1"), ("t", "T#1")]  # writes only, before and after
    assert ab.dynamo_capacity(update, GSI).wru == 2
    assert not recorder.is_attached(client)


def test_the_run_checks_refuse_what_would_make_the_budget_wrong() -> None:
    start = ab.Call("sfn", "StartExecution", {"input": '{"task_id": "tsk_1"}'})
    assert ab.started_input([start]) == {"task_id": "tsk_1"}
    with pytest.raises(RuntimeError, match="expected one StartExecution, saw 2"):
        ab.started_input([start, start])
    with pytest.raises(RuntimeError, match="saw 0"):
        ab.started_input([])

    recorder = ab.Recorder(lambda t, k: None)
    with pytest.raises(RuntimeError, match=r"not recorded: \['lambda'\]"):
        ab.require_recorded({"lambda": object()}, recorder)
    ab.require_recorded({}, recorder)

    ab.require_ready({"status": "ready"})
    with pytest.raises(RuntimeError, match="the asset ended failed"):
        ab.require_ready({"status": "failed", "features": {}})


def test_the_fit_splits_fixed_and_per_minute_parts() -> None:
    short = {"media_s": 20.0, "wru": 100.0, "transitions": 20.0, "noisy": 10.0}
    long = {"media_s": 60.0, "wru": 140.0, "transitions": 20.0, "noisy": 9.0}

    out = ab.fit(short, long, 600.0)

    assert out["wru"] == {"short": 100, "long": 140, "fixed": 80, "per_media_min": 60, "reference": 680}
    assert out["transitions"]["per_media_min"] == 0 and out["transitions"]["reference"] == 20
    assert out["noisy"]["per_media_min"] == 0 and out["noisy"]["reference"] == 9  # never extrapolated down


def test_multipart_upload_adds_parts_create_complete_and_the_complete_request() -> None:
    mp = ab.multipart_upload(100 * 2**20 + 1, 16 * 2**20)
    assert mp == {"s3_put_class": 8, "api_requests": 1, "lambda_invocations": 1, "parts": 7}


def test_the_document_keeps_its_prose_and_refuses_broken_markers() -> None:
    doc = f"intro\n{ab.BEGIN_MARKER}\nold\n{ab.END_MARKER}\noutro\n"
    assert ab.update_document(doc, "new\n") == f"intro\n{ab.BEGIN_MARKER}\n\nnew\n\n{ab.END_MARKER}\noutro\n"
    assert ab.update_document("intro\n", "new\n").endswith(f"{ab.BEGIN_MARKER}\n\nnew\n\n{ab.END_MARKER}\n")
    for broken in (
        f"{ab.END_MARKER}\n{ab.BEGIN_MARKER}",
        f"{ab.BEGIN_MARKER}",
        f"{ab.BEGIN_MARKER}{ab.BEGIN_MARKER}{ab.END_MARKER}",
    ):
        with pytest.raises(ValueError, match="each once"):
            ab.update_document(broken, "new\n")


def budget(**kw: float) -> prices.Budget:
    values = dict(
        media_s=600.0, dynamodb_wru=500.0, dynamodb_rru=200.0, hot_partition_wru=4.0, s3_put_class=60.0,
        s3_get_class=400.0, s3_prefix_puts=60.0, sfn_start=1.0, sfn_transitions=20.0, batch_jobs=5.0,
        fargate_jobs=3.0, lambda_invocations=7.0, api_requests=4.0, fargate_s=450.0, gpu_work_s=90.0,
    )  # fmt: skip
    return prices.Budget(**{**values, **kw})


def test_the_model_names_the_first_quota_each_rate_exceeds() -> None:
    b = budget()
    ceilings = prices.max_rate_per_min(b)
    assert ceilings["batch_submit_job"] == pytest.approx(50 * 60 / 5)
    assert ceilings["fargate_launch"] == pytest.approx(20 * 60 / 3)

    low, high = prices.scale(b, 1), prices.scale(b, 10_000)

    assert low["first_limit"] is None and low["closest_utilisation"] < 1
    exceeded = [k for k, v in high["utilisation"].items() if v > 1]
    assert high["first_limit"] == min(exceeded, key=lambda k: ceilings[k])
    assert high["exceeded"] == sorted(exceeded, key=lambda k: ceilings[k]) and low["exceeded"] == []
    rate_quotas = [k for k in high["exceeded"] if not prices.QUOTAS[k].assumed]
    assert (
        high["first_limit"] == "gpu_vcpus" and high["first_rate_limit"] == rate_quotas[0] == "fargate_launch"
    )
    assert low["first_rate_limit"] is None
    assert high["first_limit_at_per_min"] == pytest.approx(ceilings[high["first_limit"]], abs=0.1)
    assert high["gpu_instances"] == math.ceil(10_000 / 60 * 90)


def test_batched_gpu_steps_share_job_starts_as_the_rate_fills_the_batches() -> None:
    # Two GPU steps per asset, 60 GPU s of work, three jobs of its own
    b = budget(gpu_work_s=60.0, gpu_items=2.0, batch_jobs=3.0)
    # At a trickle each batch holds one step: a job start per step, as without batching
    assert prices.gpu_batch_fill(b, 1) == 1
    assert prices.gpu_s(b, 1) == 60 + 2 * prices.JOB_START_S
    # At scale a window fills a whole batch: one start per GPU_BATCH_MAX_ITEMS steps
    full = prices.GPU_BATCH_MAX_ITEMS
    assert prices.gpu_batch_fill(b, 10_000) == full
    assert prices.gpu_s(b, 10_000) == pytest.approx(60 + 2 * prices.JOB_START_S / full)
    assert prices.loads(b, 10_000)["batch_submit_job"] == pytest.approx(10_000 / 60 * (3 + 2 / full))
    # and the ceilings, found by bisection, are where the load meets the quota
    ceilings = prices.max_rate_per_min(b)
    for k in ("batch_submit_job", "gpu_vcpus"):
        assert prices.loads(b, ceilings[k])[k] == pytest.approx(prices.QUOTAS[k].per_s, rel=1e-6)
    # and the GPU cost per media hour falls below the unbatched one at scale
    unbatched = budget(gpu_work_s=60.0 + 2 * prices.JOB_START_S, gpu_items=0.0, batch_jobs=5.0)
    batched_cost = prices.scale(b, 10_000)["usd_per_media_hour"]["gpu_on_demand"]
    assert batched_cost < 0.6 * prices.scale(unbatched, 10_000)["usd_per_media_hour"]["gpu_on_demand"]


def test_the_cost_per_media_hour_adds_up_and_gpu_dominates_a_trickle() -> None:
    b = budget()
    one = prices.scale(b, 1)
    cost = one["usd_per_media_hour"]
    media_h = 60 * 600 / 3600
    assert one["media_hours_per_hour"] == media_h
    held = math.ceil(1 / 60 * 90)  # Little's law: 1.5 instances busy on average, 2 held
    assert one["gpu_instances"] == held
    assert cost["gpu_on_demand"] == pytest.approx(held * prices.PRICES["g5_xlarge_h"].usd / media_h, abs=1e-4)
    parts = [v for k, v in cost.items() if not k.startswith(("total", "gpu"))]
    assert cost["total_on_demand"] == pytest.approx(sum(parts) + cost["gpu_on_demand"], abs=1e-3)
    assert cost["total_spot"] < cost["total_on_demand"]
    # At a trickle one instance idles between uploads; at scale it is shared.
    assert prices.scale(b, 100)["usd_per_media_hour"]["gpu_on_demand"] < cost["gpu_on_demand"]
    assert prices.request_costs(budget(dynamodb_wru=0, dynamodb_rru=0))["dynamodb"] == 0


def test_the_state_machine_run_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("node") is not None and (ab.ASL_RUN.parent / "node_modules").is_dir():
        # An input without asset_id: a JSONPath read of a missing value, as Step Functions refuses it.
        with pytest.raises(RuntimeError, match=r"did not succeed: .*States\.Runtime"):
            ab.state_machine_run({"tenant_id": "t", "task_id": "x"})
        good = ab.state_machine_run(
            {"tenant_id": "t", "task_id": "x", "asset_id": "a", "features": ["proxy"]}
        )
        assert [c.get("step") for c in good["calls"] if c["kind"] == "batch"] == ["probe", "render"]
        assert len(good["states"]) > len(good["calls"])
    monkeypatch.setattr(ab.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="make deps-node"):
        ab.state_machine_run({})


def test_prices_and_quotas_name_their_source() -> None:
    assert prices.CHECKED == "2026-11"
    sources = [p.source for p in prices.PRICES.values()] + [q.source for q in prices.QUOTAS.values()]
    assert all(s and not s.startswith("http") for s in sources)
    assert Path(ab.DOC).name == "scale.md"


def recorded(media_s: float, gets_per_step: int) -> dict[str, Any]:
    """What `measure` returns, made up: an upload, two steps each reading the original in ranges."""
    calls = [
        ab.Call("s3", "PutObject", {"Key": "orig"}, phase="client PUT", sent_bytes=int(media_s * 1000)),
        ab.Call(
            "dynamodb", "PutItem", {"Item": item("AST#a1", 10, gsi1pk="T#1")}, phase="api", before=[None]
        ),
    ]
    for step in ("probe", "transcription"):
        calls += [
            ab.Call("s3", "GetObject", {"Key": "orig"}, {"ContentLength": 1000}, phase=f"batch: {step}")
        ] * gets_per_step
    return {
        "media_s": media_s, "clip": {"size": "1920x1080", "bytes": int(media_s * 1000)},
        "upload_key": "orig", "calls": calls, "gsi_keys": GSI, "own_ids": ("a1", "tsk_1"),
        "transitions": 20, "batch_steps": ["probe"], "gpu_batched_steps": ["transcription"],
        "fargate_jobs": 1,
        "lambda": {"api": 3, "upload_event": 1, "pipeline_events": 1, "query_encoder": 1},
        "step_cpu_s": {"probe": media_s / 10, "transcription": media_s / 5}, "model_load_cpu_s": 5.0,
        "ml_steps": ["transcription"],
    }  # fmt: skip


def test_two_clips_make_the_reference_budget_and_the_table() -> None:
    short, long = ab.summarize(recorded(20, 2)), ab.summarize(recorded(60, 6))
    assert (long["original_gets"], long["phases_reading_original"]) == (12, 2)
    assert long["hot_partition"] == "gsi1/T#1"  # the asset's own table partition is not shared

    fitted = ab.fit(ab.flat(short), ab.flat(long), ab.REFERENCE_S)
    budget = ab.reference_budget(fitted)
    model = [prices.scale(budget, r) for r in ab.RATES_PER_MIN]
    text = ab.render([short, long], fitted, budget, model)

    assert fitted["original_gets"]["per_media_min"] == 12 and fitted["original_gets"]["reference"] == 120
    mp = ab.multipart_upload(600 * 1000, 16 * 2**20)  # 600 kB: one part
    assert budget.s3_put_class == 1 + mp["s3_put_class"]
    assert budget.lambda_invocations == 6 + 1 and budget.api_requests == 3 + 1
    rtf = prices.TASK_RTF
    # The GPU step is an item of a shared batch job: its work here, its job start priced per rate.
    assert budget.gpu_work_s == rtf["transcription"] * 600 and budget.gpu_items == 1
    assert budget.batch_jobs == 1
    assert budget.fargate_s == rtf["probe"] * 600 + prices.JOB_START_S
    assert "| S3 GETs of the original | 4 | 12 | 0 | 12 | 120 |" in text
    assert "| batch: transcription | 0 | 0 | GET 6 | - |" in text
    assert "- 1 uploads/min: no quota is reached" in text
    assert text.count("\n| 10,000 |") == 1
