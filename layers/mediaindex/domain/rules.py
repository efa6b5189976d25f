"""Rules of the contract that depend on nothing but the entities."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from pathlib import PurePosixPath

from mediaindex.domain.errors import ValidationError
from mediaindex.domain.models import (
    ACTIVE_STATES,
    Asset,
    AssetStatus,
    Feature,
    FeatureState,
    FeatureStatus,
    MediaType,
    Task,
    TaskState,
    utcnow,
)

FEATURE_ALIASES = {"visual": Feature.EMBEDDING}
RERUNNABLE = frozenset({Feature.TRANSCRIPTION, Feature.EMBEDDING})
MAX_NAME_LEN = 255

VIDEO_EXT = {
    "mp4",
    "mov",
    "m4v",
    "mkv",
    "webm",
    "avi",
    "mpg",
    "mpeg",
    "ts",
    "mts",
    "m2ts",
    "3gp",
    "wmv",
    "flv",
}
AUDIO_EXT = {"mp3", "wav", "m4a", "aac", "flac", "ogg", "oga", "opus", "wma", "aiff", "aif"}
IMAGE_EXT = {"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "heic", "heif", "avif"}


def parse_feature(value: str, *, field: str = "features") -> Feature:
    v = value.strip().lower()
    if v in FEATURE_ALIASES:
        return FEATURE_ALIASES[v]
    try:
        return Feature(v)
    except ValueError:
        allowed = ", ".join([*(f.value for f in Feature), *FEATURE_ALIASES])
        raise ValidationError(f"unknown feature {value!r}; expected one of {allowed}", field=field) from None


def parse_features(values: Iterable[str], *, field: str = "features") -> list[Feature]:
    out: list[Feature] = []
    for v in values:
        f = parse_feature(v, field=field)
        if f not in out:
            out.append(f)
    return out


def merge_features(defaults: Iterable[Feature], extra: Iterable[Feature]) -> list[Feature]:
    """The index's defaults plus what the request adds, in canonical order."""
    wanted = set(defaults) | set(extra)
    return [f for f in Feature if f in wanted]


def validate_asset_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name is required", field="name")
    if len(name) > MAX_NAME_LEN:
        raise ValidationError(f"name is longer than {MAX_NAME_LEN} characters", field="name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValidationError("name contains control characters", field="name")
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise ValidationError("name must be a file name, not a path", field="name")
    suffix = PurePosixPath(name).suffix
    if not suffix or suffix == "." or (name.startswith(".") and name.count(".") == 1):
        raise ValidationError(
            "name must carry a file extension, such as clip.mp4",
            code="asset_name_extension_required",
            field="name",
        )
    return name


def extension(name: str) -> str:
    return PurePosixPath(name).suffix.lower().lstrip(".")


def media_type_for_name(name: str) -> MediaType | None:
    ext = extension(name)
    if ext in VIDEO_EXT:
        return MediaType.VIDEO
    if ext in AUDIO_EXT:
        return MediaType.AUDIO
    if ext in IMAGE_EXT:
        return MediaType.IMAGE
    return None


def guess_content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def initial_feature_states(features: Iterable[Feature]) -> dict[Feature, FeatureState]:
    now = utcnow()
    return {f: FeatureState(state=FeatureStatus.QUEUED, updated_at=now) for f in features}


def derive_asset_status(asset: Asset) -> AssetStatus:
    """`ready` when nothing is queued or processing and at least one feature completed."""
    if asset.status == AssetStatus.AWAITING_UPLOAD:
        return AssetStatus.AWAITING_UPLOAD
    states = [fs.state for fs in asset.features.values()]
    if any(s in ACTIVE_STATES for s in states):
        return AssetStatus.PROCESSING
    if asset.error is not None:
        return AssetStatus.FAILED
    if any(s == FeatureStatus.COMPLETED for s in states):
        return AssetStatus.READY
    if states and all(s in (FeatureStatus.NA, FeatureStatus.CANCELLED) for s in states):
        return AssetStatus.READY if any(s == FeatureStatus.NA for s in states) else AssetStatus.FAILED
    return AssetStatus.FAILED


def derive_task_state(task: Task) -> TaskState:
    if task.state == TaskState.CANCELLED:
        return TaskState.CANCELLED
    states = [fs.state for fs in task.features.values()]
    if not states:
        return TaskState.COMPLETED
    if all(s == FeatureStatus.QUEUED for s in states):
        return TaskState.QUEUED
    if any(s in ACTIVE_STATES for s in states):
        return TaskState.PROCESSING
    if all(s in (FeatureStatus.FAILED, FeatureStatus.CANCELLED) for s in states):
        return TaskState.FAILED if any(s == FeatureStatus.FAILED for s in states) else TaskState.CANCELLED
    return TaskState.COMPLETED
