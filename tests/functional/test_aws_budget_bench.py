"""The per-asset AWS budget bench (bench/aws_budget.py), run for real on the smallest clip: one asset
through the AWS runtime under moto, the deployed state machine in aws-local-stepfunctions, the
steps in-process. Its numbers must be positive and agree with each other and with the spec."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from bench import aws_budget as ab
from mediaindex.domain.models import Feature
from mediaindex.pipeline.spec import steps_for

pytestmark = [pytest.mark.aws, pytest.mark.slow]


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    from tests import mediagen

    if not mediagen.have_tools():
        pytest.skip("ffmpeg, ffprobe and espeak-ng are needed (make deps installs them)")
    if shutil.which("node") is None or not (ab.ASL_RUN.parent / "node_modules").is_dir():
        pytest.skip("node and tests/asl/node_modules are needed (make deps-node)")
    text, out = ab.run([3.0])
    return {"text": text, **out}


def test_the_budget_of_one_asset_is_positive_and_consistent(result: dict[str, Any]) -> None:
    (asset,) = result["per_asset"]
    steps = steps_for(list(Feature), needs_fetch=False)

    assert asset["dynamodb_wru"] > 0 and asset["dynamodb_rru"] > 0
    assert asset["dynamodb_calls"].get("TransactWriteItems", 0) > 0
    assert asset["s3_requests"]["PUT"] >= 1 + len(list(Feature))  # the original, a derivative per feature
    assert asset["s3_bytes"]["PUT"] >= asset["clip"]["bytes"]  # the original went up whole
    # Every step that reads the original fetches it at least once (one GET per range).
    assert asset["phases_reading_original"] >= 1
    assert asset["original_gets"] >= asset["phases_reading_original"]
    assert asset["s3_bytes"]["GET"] >= asset["phases_reading_original"] * asset["clip"]["bytes"]
    # One execution; a Batch job of its own per CPU step, each GPU step an item of a shared batch
    # job; each Task is a state, plus the flow around them.
    assert asset["sfn_start"] == 1
    assert asset["batch_submit_job"] == asset["fargate_jobs"] == sum(1 for s in steps if s.compute == "cpu")
    assert asset["gpu_batched_steps"] == sum(1 for s in steps if s.compute == "gpu")
    assert asset["ml_steps"] == [s.name for s in steps if s.compute == "gpu"]
    tasks = asset["batch_submit_job"] + asset["gpu_batched_steps"]
    assert asset["sfn_transitions"] > tasks + asset["lambda"]["pipeline_events"]
    assert asset["lambda"]["pipeline_events"] >= 1  # task_finished, at least
    assert asset["lambda_invocations"] == sum(asset["lambda"].values())
    assert set(asset["step_cpu_s"]) == {s.name for s in steps}
    assert all(v > 0 for v in asset["step_cpu_s"].values())
    # The per-phase split adds up to the totals; every step shows up as its own phase.
    phases = asset["by_phase"]
    assert sum(p["wru"] for p in phases.values()) == pytest.approx(asset["dynamodb_wru"])
    assert sum(p["rru"] for p in phases.values()) == pytest.approx(asset["dynamodb_rru"])
    assert {f"batch: {s.name}" for s in steps} <= set(phases)
    # Every upload into the index writes some partition that existed before it (the hot one).
    assert asset["hot_partition"] is not None and asset["hot_partition_wru"] >= 1


def test_the_model_and_the_table_follow_from_the_measurement(result: dict[str, Any]) -> None:
    (asset,) = result["per_asset"]
    reference = result["reference"]
    model = result["model"]
    text = str(result["text"])

    assert reference["media_s"] == asset["media_s"]  # one clip: the model describes that clip
    assert reference["sfn_transitions"] == asset["sfn_transitions"]
    assert reference["s3_put_class"] > asset["s3_put_class"]  # its multipart upload added
    assert [m["uploads_per_min"] for m in model] == list(ab.RATES_PER_MIN)
    costs = [m["usd_per_media_hour"]["total_on_demand"] for m in model]
    assert all(c > 0 for c in costs)
    assert model[-1]["first_limit"] is not None  # 10,000 uploads a minute exceed some quota
    assert model[-1]["first_rate_limit"] in model[-1]["exceeded"]
    assert "| DynamoDB WRU |" in text and "| batch: transcription |" in text
    assert ", ".join(model[-1]["exceeded"]) in text
