"""The Batch job entrypoint on the AWS runtime (moto): exit 0 when bad media is recorded, 1 for a retry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from mediaindex.container import Services
from mediaindex.pipeline import entrypoint
from tests.aws_runtime import build_aws_test_services, deliver_upload_event

pytestmark = pytest.mark.aws


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    # The entrypoint makes its own clients from the environment, as in a Batch container.
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():  # outlives the services' own (nested) mock, so the entrypoint sees the same data
        svc = build_aws_test_services(tmp_path)
        yield svc
        svc.close()


def ingest(services: Services, data: bytes) -> tuple[str, str, str]:
    """(task id, asset id, original key) of an asset whose original landed and whose task started."""
    tenant, _, _ = services.keys.create_key("acme")
    index = services.indexes.create(
        tenant.id, name="clips", description=None, default_features=None, is_sample=False
    )
    asset, _ = services.assets.create_for_upload(
        tenant.id, index_id=index.id, name="clip.mp4", features=[], save_original=True, user_metadata=None,
        content_type="video/mp4", size_bytes=max(len(data), 1),
    )  # fmt: skip
    assert asset.upload is not None
    services.blobs.put_bytes(asset.upload.key, data, "video/mp4")
    started = deliver_upload_event(services, asset.upload.key)
    return str(started["task_id"]), asset.id, asset.upload.key


def test_bad_media_is_recorded_and_the_job_succeeds(services: Services) -> None:
    # Given an ingest whose original is an empty file
    task_id, asset_id, _ = ingest(services, b"")
    # When the Batch job runs the probe step
    code = entrypoint.run(task_id, "probe", services.settings)
    # Then it exits 0 (no retry can help) and the asset carries the exact media error
    assert code == entrypoint.EXIT_OK
    asset = services.metadata.get_asset(asset_id)
    assert asset is not None and asset.status == "failed"
    assert asset.error is not None and asset.error.code == "asset_file_empty"
    task = services.metadata.get_task(task_id)
    assert task is not None and {fs.state for fs in task.features.values()} == {"failed"}


def test_a_crash_exits_1_for_a_retry_and_records_nothing(services: Services) -> None:
    # Given an ingest whose original vanished from S3 before the job ran
    task_id, _, key = ingest(services, b"not really a video")
    services.blobs.delete(key)
    # When the probe job runs
    code = entrypoint.run(task_id, "probe", services.settings)
    # Then it asks Batch/Step Functions for a retry and leaves the features to the state machine
    assert code == entrypoint.EXIT_RETRY
    task = services.metadata.get_task(task_id)
    assert task is not None and "failed" not in {fs.state for fs in task.features.values()}


def test_a_cancelled_task_has_nothing_to_do(services: Services) -> None:
    task_id, _, _ = ingest(services, b"")
    task = services.metadata.get_task(task_id)
    assert task is not None
    services.tasks.cancel(task.tenant_id, task_id)
    assert entrypoint.run(task_id, "probe", services.settings) == entrypoint.EXIT_OK
    after = services.metadata.get_task(task_id)
    assert after is not None and after.state == "cancelled"
