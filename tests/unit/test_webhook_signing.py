"""The pure parts of webhooks: signatures, the retry schedule, what a settled task notifies, and
the secrets sealed at rest (AES-GCM locally, KMS under moto)."""

from __future__ import annotations

import random
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mediaindex.adapters.aws.kms_secret_box import KmsSecretBox
from mediaindex.adapters.local.secret_box import AesGcmSecretBox, load_or_create_key, parse_key
from mediaindex.domain.models import (
    Asset,
    AssetStatus,
    ErrorInfo,
    Feature,
    FeatureState,
    FeatureStatus,
    MediaType,
    Task,
    TaskKind,
    TaskState,
)
from mediaindex.domain.webhooks import WebhookEvent, delivery_id, retry_delay_s, settled_events, sign, verify
from mediaindex.services.webhooks import WebhookSettings


def test_a_signature_verifies_only_with_its_secret_body_and_time() -> None:
    header = sign("whsec_a", 1_700_000_000, b'{"x":1}')
    assert header.startswith("t=1700000000,v1=")
    assert verify("whsec_a", header, b'{"x":1}', now=1_700_000_100)
    assert not verify("whsec_b", header, b'{"x":1}', now=1_700_000_100)
    assert not verify("whsec_a", header, b'{"x":2}', now=1_700_000_100)
    assert not verify("whsec_a", header, b'{"x":1}', now=1_700_000_301)  # replayed after 5 minutes
    assert not verify("whsec_a", "v1=" + header.split("v1=")[1], b'{"x":1}', now=1_700_000_000)
    assert not verify("whsec_a", "t=abc," + header.split(",")[1], b'{"x":1}', now=1_700_000_000)
    rotated = header + ",v1=" + "0" * 64
    assert verify("whsec_a", rotated, b'{"x":1}', now=1_700_000_000)


def test_the_retry_schedule_steps_then_repeats_its_last_delay_within_the_jitter() -> None:
    delays = [30.0, 120.0, 600.0, 3600.0]
    assert [retry_delay_s(n, delays, jitter=0) for n in range(1, 7)] == [30, 120, 600, 3600, 3600, 3600]
    rng = random.Random(7)
    spread = [retry_delay_s(1, delays, jitter=0.1, rng=rng) for _ in range(200)]
    assert 27 <= min(spread) < max(spread) <= 33
    # 30 s + 2 min + 10 min + 1 h, then hourly within 24 h: 27 attempts.
    assert WebhookSettings().max_attempts() == 27
    assert WebhookSettings(retry_delays_s=[10], retry_window_s=25).max_attempts() == 3


def test_the_delivery_id_is_the_same_for_the_same_webhook_event_and_subject() -> None:
    a = delivery_id("whk_1", WebhookEvent.ASSET_READY, "ast_1/tsk_1")
    assert a == delivery_id("whk_1", WebhookEvent.ASSET_READY, "ast_1/tsk_1")
    assert len({a, delivery_id("whk_2", WebhookEvent.ASSET_READY, "ast_1/tsk_1"),
                delivery_id("whk_1", WebhookEvent.ASSET_FAILED, "ast_1/tsk_1"),
                delivery_id("whk_1", WebhookEvent.ASSET_READY, "ast_1/tsk_2")}) == 4  # fmt: skip


def settled(task_state: TaskState, asset_status: AssetStatus) -> tuple[Task, Asset]:
    fs = FeatureState(state=FeatureStatus.COMPLETED)
    task = Task(
        id="tsk_1",
        tenant_id="ten_a",
        asset_id="ast_1",
        index_id="idx_1",
        kind=TaskKind.INGEST,
        features={Feature.PROXY: fs},
        state=task_state,
    )
    asset = Asset(
        id="ast_1",
        tenant_id="ten_a",
        index_id="idx_1",
        name="a.mp4",
        status=asset_status,
        features={Feature.PROXY: fs},
        media_type=MediaType.VIDEO,
    )
    return task, asset


def test_a_settled_task_notifies_its_own_end_and_its_assets() -> None:
    events = settled_events(*settled(TaskState.COMPLETED, AssetStatus.READY))
    assert [(e, s) for e, s, _ in events] == [
        (WebhookEvent.TASK_COMPLETED, "tsk_1"),
        (WebhookEvent.ASSET_READY, "ast_1/tsk_1"),
    ]
    task, asset = settled(TaskState.FAILED, AssetStatus.FAILED)
    task.error = asset.error = ErrorInfo(code="media_corrupt", message="no streams")
    (t, data), (a, adata) = [(e, d) for e, _, d in settled_events(task, asset)]
    assert (t, data["error"]["code"]) == (WebhookEvent.TASK_FAILED, "media_corrupt")
    assert (a, adata["status"]) == (WebhookEvent.ASSET_FAILED, "failed")
    assert [e for e, _, _ in settled_events(*settled(TaskState.COMPLETED, AssetStatus.PROCESSING))] == [
        WebhookEvent.TASK_COMPLETED
    ]
    assert settled_events(*settled(TaskState.CANCELLED, AssetStatus.READY)) == []
    assert settled_events(*settled(TaskState.PROCESSING, AssetStatus.PROCESSING)) == []


def test_the_local_box_opens_only_for_its_owner_and_key(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path)
    assert load_or_create_key(tmp_path) == key  # made once, then read
    assert (tmp_path / "webhook-secrets.key").stat().st_mode & 0o777 == 0o600
    box = AesGcmSecretBox(key)
    sealed = box.seal("whsec_abc", context="ten_a/whk_1")
    assert "whsec_abc" not in sealed and sealed != box.seal("whsec_abc", context="ten_a/whk_1")
    assert box.open(sealed, context="ten_a/whk_1") == "whsec_abc"
    with pytest.raises(ValueError, match="does not open"):
        box.open(sealed, context="ten_b/whk_1")
    with pytest.raises(ValueError, match="does not open"):
        AesGcmSecretBox(bytes(32)).open(sealed, context="ten_a/whk_1")
    with pytest.raises(ValueError, match="version"):
        box.open("v9:" + sealed.split(":", 1)[1], context="ten_a/whk_1")
    with pytest.raises(ValueError, match="64 hex"):
        parse_key("abcd")
    with pytest.raises(ValueError, match="64 hex"):
        parse_key("zz" * 32)


def test_the_kms_box_binds_the_secret_to_its_owner() -> None:
    with mock_aws():
        kms = boto3.client(
            "kms", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        key_id = kms.create_key()["KeyMetadata"]["Arn"]
        box = KmsSecretBox(key_id, kms)
        sealed = box.seal("whsec_abc", context="ten_a/whk_1")
        assert sealed.startswith("kms:") and "whsec_abc" not in sealed
        assert box.open(sealed, context="ten_a/whk_1") == "whsec_abc"
        with pytest.raises(kms.exceptions.InvalidCiphertextException):
            box.open(sealed, context="ten_b/whk_1")
        with pytest.raises(ValueError, match="not a KMS"):
            box.open("v1:abc", context="ten_a/whk_1")
