"""The Batch job entrypoint on the AWS runtime (moto): exit 0 when bad media is recorded, 1 for a retry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from functions.batch_step import main as entrypoint
from mediaindex.bootstrap import Runtime
from tests.aws_runtime import build_aws_test_services, deliver_upload_event

pytestmark = pytest.mark.aws


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    # The entrypoint makes its own clients from the environment, as in a Batch container.
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():  # outlives the runtime' own (nested) mock, so the entrypoint sees the same data
        runtime = build_aws_test_services(tmp_path)
        yield runtime
        runtime.close()


def ingest(runtime: Runtime, data: bytes, tenant_name: str = "acme") -> tuple[str, str, str, str]:
    """(tenant, task, asset, original key) of an asset whose original landed and whose task started."""
    tenant, _, _ = runtime.services.keys.create_key(tenant_name)
    index = runtime.services.indexes.create(
        tenant.id, name="clips", description=None, default_features=None, is_sample=False
    )
    asset, _ = runtime.services.assets.create_for_upload(
        tenant.id, index_id=index.id, name="clip.mp4", features=[], save_original=True, user_metadata=None,
        content_type="video/mp4", size_bytes=max(len(data), 1),
    )  # fmt: skip
    assert asset.upload is not None
    runtime.blobs.put_bytes(asset.upload.key, data, "video/mp4")
    started = deliver_upload_event(runtime, asset.upload.key)
    return tenant.id, str(started["task_id"]), asset.id, asset.upload.key


def test_bad_media_is_recorded_and_the_job_succeeds(runtime: Runtime) -> None:
    # Given an ingest whose original is an empty file
    tenant_id, task_id, asset_id, _ = ingest(runtime, b"")
    # When the Batch job runs the probe step
    code = entrypoint.run(tenant_id, task_id, "probe", runtime.settings)
    # Then it exits 0 (no retry can help) and the asset carries the exact media error
    assert code == entrypoint.EXIT_OK
    asset = runtime.stores.assets.get(tenant_id, asset_id)
    assert asset is not None and asset.status == "failed"
    assert asset.error is not None and asset.error.code == "asset_file_empty"
    task = runtime.stores.tasks.get(tenant_id, task_id)
    assert task is not None and {fs.state for fs in task.features.values()} == {"failed"}


def test_a_crash_exits_1_for_a_retry_and_records_nothing(runtime: Runtime) -> None:
    # Given an ingest whose original vanished from S3 before the job ran
    tenant_id, task_id, _, key = ingest(runtime, b"not really a video")
    runtime.blobs.delete(key)
    # When the probe job runs
    code = entrypoint.run(tenant_id, task_id, "probe", runtime.settings)
    # Then it asks Batch/Step Functions for a retry and leaves the features to the state machine
    assert code == entrypoint.EXIT_RETRY
    task = runtime.stores.tasks.get(tenant_id, task_id)
    assert task is not None and "failed" not in {fs.state for fs in task.features.values()}


def test_a_cancelled_task_has_nothing_to_do(runtime: Runtime) -> None:
    tenant_id, task_id, _, _ = ingest(runtime, b"")
    runtime.services.tasks.cancel(tenant_id, task_id)
    assert entrypoint.run(tenant_id, task_id, "probe", runtime.settings) == entrypoint.EXIT_OK
    after = runtime.stores.tasks.get(tenant_id, task_id)
    assert after is not None and after.state == "cancelled"


class TokenCalls:
    """Step Functions' token API, recorded (moto's tokens belong to its own executions)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def send_task_success(self, *, taskToken: str, output: str) -> None:
        self.calls.append(("success", taskToken, output))

    def send_task_failure(self, *, taskToken: str, error: str, cause: str) -> None:
        self.calls.append(("failure", taskToken, error))

    def send_task_heartbeat(self, *, taskToken: str) -> None:
        self.calls.append(("heartbeat", taskToken, ""))


def test_a_gpu_batch_runs_each_item_of_its_manifest_and_settles_each_token(runtime: Runtime) -> None:
    # Given two tasks, one cancelled, and a manifest naming a step of each
    from mediaindex.adapters.aws import gpu_batches
    from mediaindex.adapters.aws.clients import AwsClients

    tenant_id, cancelled, _, _ = ingest(runtime, b"")
    runtime.services.tasks.cancel(tenant_id, cancelled)
    other, bad_media, asset_id, _ = ingest(runtime, b"", "other")
    items = [
        gpu_batches.GpuWork(tenant_id, cancelled, "transcription", "tok-1"),
        gpu_batches.GpuWork(other, bad_media, "probe", "tok-2"),
    ]
    key = f"{gpu_batches.MANIFEST_PREFIX}b1.json"
    runtime.blobs.put_bytes(key, gpu_batches.manifest_body(items), "application/json")
    clients = AwsClients(region=runtime.settings.aws_region)
    clients.made["stepfunctions"] = tokens = TokenCalls()

    # When the batch job runs it
    code = entrypoint.run_batch(key, runtime.settings, clients)

    # Then both tokens succeeded, in order: nothing to do for one, bad media recorded for the other
    assert code == entrypoint.EXIT_OK
    assert [(op, tok) for op, tok, _ in tokens.calls if op != "heartbeat"] == [
        ("success", "tok-1"),
        ("success", "tok-2"),
    ]
    asset = runtime.stores.assets.get(other, asset_id)
    assert asset is not None and asset.error is not None and asset.error.code == "asset_file_empty"


def test_a_gpu_batch_whose_manifest_cannot_be_read_fails_the_job(runtime: Runtime) -> None:
    from mediaindex.adapters.aws import gpu_batches

    key = f"{gpu_batches.MANIFEST_PREFIX}broken.json"
    runtime.blobs.put_bytes(key, b'{"version": 42}', "application/json")
    assert entrypoint.run_batch(key, runtime.settings) == entrypoint.EXIT_RETRY
    assert entrypoint.run_batch(f"{gpu_batches.MANIFEST_PREFIX}missing.json", runtime.settings) == 1
    local = runtime.settings.model_copy(update={"runtime": "local"})
    assert entrypoint.run_batch(key, local) == entrypoint.EXIT_RETRY


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--tenant-id", "t", "--task-id", "x"],
        ["--batch-manifest", "k", "--step", "probe"],
        ["--batch-manifest", "k", "--tenant-id", "t", "--task-id", "x", "--step", "probe"],
    ],
)
def test_the_entrypoint_wants_one_step_or_one_manifest(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        entrypoint.main(argv)
    assert exit_.value.code == 2
