"""Rules of the contract that depend on nothing but the entities."""

from __future__ import annotations

import re
import unicodedata
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
MAX_INDEX_NAME_LEN = 200

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


# Names ----------------------------------------------------------------------------------------------
# The bidi embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069) make a name read
# otherwise than it is ("clip\u202e4pm.exe" shows as "clipexe.mp4"): refused with the controls.
_BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def unsafe_name_character(name: str) -> str | None:
    """The first character a name may not hold, else None: C0 and C1 controls (NUL, newline,
    escape...), DEL, the bidi controls above, and lone surrogates (which no storage can encode)."""
    for c in name:
        o = ord(c)
        if o < 32 or 127 <= o <= 159 or c in _BIDI_CONTROLS or 0xD800 <= o <= 0xDFFF:
            return c
    return None


def validate_asset_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name is required", field="name")
    if len(name) > MAX_NAME_LEN:
        raise ValidationError(f"name is longer than {MAX_NAME_LEN} characters", field="name")
    bad = unsafe_name_character(name)
    if bad is not None:
        raise ValidationError(
            f"name holds a control or bidi character (U+{ord(bad):04X})",
            code="asset_name_invalid",
            field="name",
        )
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


def validate_index_name(name: str) -> str:
    """The name as stored: NFC, checked. Control and bidi characters are 400 index_name_invalid."""
    bad = unsafe_name_character(name)
    if bad is not None:
        raise ValidationError(
            f"name holds a control or bidi character (U+{ord(bad):04X})",
            code="index_name_invalid",
            field="name",
        )
    nfc = unicodedata.normalize("NFC", name)
    if not nfc.strip():
        raise ValidationError("name cannot be blank", code="index_name_invalid", field="name")
    if len(nfc) > MAX_INDEX_NAME_LEN:
        raise ValidationError(f"name is longer than {MAX_INDEX_NAME_LEN} characters", field="name")
    return nfc


def index_name_key(name: str) -> str:
    """What index names are unique by in a tenant: Unicode caseless matching over compatibility
    forms (NFKC, case-folded), so "Clips", "CLIPS", "clips" in fullwidth letters and "clips" are one
    name, as are
    "Café" written with a composed or a combining accent."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


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


# Content types --------------------------------------------------------------------------------------
# What a new asset's bytes are sent and served as: the media types of the extensions above (and
# their common aliases), or application/octet-stream. Never text/html, SVG or anything a browser
# would run: a signed download URL must not serve a page.
CONTENT_TYPES = {
    "mp4": "video/mp4", "mov": "video/quicktime", "m4v": "video/x-m4v", "mkv": "video/x-matroska",
    "webm": "video/webm", "avi": "video/x-msvideo", "mpg": "video/mpeg", "mpeg": "video/mpeg",
    "ts": "video/mp2t", "mts": "video/mp2t", "m2ts": "video/mp2t", "3gp": "video/3gpp",
    "wmv": "video/x-ms-wmv", "flv": "video/x-flv",
    "mp3": "audio/mpeg", "wav": "audio/wav", "m4a": "audio/mp4", "aac": "audio/aac", "flac": "audio/flac",
    "ogg": "audio/ogg", "oga": "audio/ogg", "opus": "audio/opus", "wma": "audio/x-ms-wma",
    "aiff": "audio/aiff", "aif": "audio/aiff",
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
    "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff", "heic": "image/heic",
    "heif": "image/heif", "avif": "image/avif",
}  # fmt: skip
OCTET_STREAM = "application/octet-stream"
ALLOWED_CONTENT_TYPES = frozenset(
    {
        *CONTENT_TYPES.values(),
        OCTET_STREAM,
        *(
            "video/avi",
            "video/msvideo",
            "video/3gpp2",
            "video/ogg",
            "video/x-ms-asf",
            "video/vnd.dlna.mpeg-tts",
        ),
        *("audio/mp3", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/x-m4a", "audio/m4a"),
        *("audio/x-aac", "audio/aacp", "audio/x-flac", "audio/webm", "audio/3gpp", "audio/3gpp2"),
        *("audio/x-aiff", "audio/vnd.dlna.adts"),
        *("image/pjpeg", "image/x-ms-bmp", "image/x-bmp", "image/heic-sequence", "image/heif-sequence"),
    }
)
# RFC 9110: type "/" subtype *( OWS ";" OWS parameter ), tokens and quoted strings in ASCII only.
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # an RFC 9110 token
_QUOTED = r'"[ !#-\[\]-~]*"'
_CONTENT_TYPE = re.compile(
    rf"(?P<type>{_TCHARS}/{_TCHARS})(?:[ \t]*;[ \t]*{_TCHARS}=(?:{_TCHARS}|{_QUOTED}))*", re.ASCII
)


def validate_content_type(value: str, *, field: str = "content_type") -> str:
    """A media type of the allow-list, in strict syntax (no CR, LF or non-ASCII: it travels in
    HTTP headers and signatures); else 400 content_type_invalid."""
    m = _CONTENT_TYPE.fullmatch(value)
    if m is None:
        raise ValidationError(
            "content_type must be a media type such as video/mp4 (ASCII, no line breaks)",
            code="content_type_invalid",
            field=field,
        )
    if m.group("type").lower() not in ALLOWED_CONTENT_TYPES:
        raise ValidationError(
            f"content_type {m.group('type')!r} is not a video, audio or image type this service takes "
            f"(or {OCTET_STREAM})",
            code="content_type_invalid",
            field=field,
        )
    return value


def guess_content_type(name: str) -> str:
    return CONTENT_TYPES.get(extension(name), OCTET_STREAM)


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
