"""The entities every port stores. Pydantic models so that both metadata adapters can store them as
documents (`model_dump(mode="json")`) and the API can serve them without a second copy."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from mediaindex.domain.blob_keys import LAYOUT_TENANT_FIRST
from mediaindex.domain.keys import KeyScope


def utcnow() -> datetime:
    return datetime.now(UTC)


class Feature(StrEnum):
    PROXY = "proxy"
    PREVIEW = "preview"
    TRANSCRIPTION = "transcription"
    EMBEDDING = "embedding"


ALL_FEATURES: tuple[Feature, ...] = (Feature.PROXY, Feature.PREVIEW, Feature.TRANSCRIPTION, Feature.EMBEDDING)


class FeatureStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NA = "na"


ACTIVE_STATES = frozenset({FeatureStatus.QUEUED, FeatureStatus.PROCESSING})


class MediaType(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"
    IMAGE = "image"


class AssetStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class TaskKind(StrEnum):
    INGEST = "ingest"
    RERUN = "rerun"
    REINDEX = "reindex"  # rebuilds an asset's transcript and vectors for an index's next generation


class TaskState(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Entity(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=False)
    # Fields added since the first release, left out of a stored document while they hold their
    # default: rows that do not use them are written exactly as the previous release wrote them, so
    # a rollback reads them and the stored format stays pinned by the release fixtures.
    _omit_default: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _without_new_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if self._omit_default and isinstance(data, dict):
            fields = type(self).model_fields
            for name in self._omit_default:
                if getattr(self, name) == fields[name].get_default(call_default_factory=True):
                    data.pop(name, None)
        return data


class Tenant(Entity):
    id: str
    name: str
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(Entity):
    id: str
    tenant_id: str
    key_hash: str  # sha256 hex of the key; the key itself is never stored
    prefix: str  # first characters, to tell keys apart in listings
    created_at: datetime = Field(default_factory=utcnow)
    revoked: bool = False
    # Keys stored before scopes existed had full access: they read as admin (domain/keys.py).
    scope: KeyScope = KeyScope.ADMIN
    name: str | None = None
    last4: str | None = None  # the key's last characters (none on keys made before they were kept)
    expires_at: datetime | None = None  # a rotated key's is the end of its overlap
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    rotated_to: str | None = None  # the id of the key that replaced it


class IndexModels(Entity):
    """The models an index generation was built with. None: the deployment's default."""

    transcription: str | None = None  # a Whisper model name (ml/whisper_models)


class ReindexState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Reindex(Entity):
    """A re-index of an index into a new generation (services/reindex.py)."""

    id: str
    state: ReindexState = ReindexState.RUNNING
    models: IndexModels
    generation: int  # the generation being built; the index's own stays searchable until the swap
    total: int = 0  # assets found to rebuild so far
    done: int = 0
    failed: int = 0
    error: ErrorInfo | None = None
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    # Internal: the driver's place in the asset list, its tasks in flight, and its lease.
    cursor: str | None = None
    in_flight: dict[str, str] = Field(default_factory=dict)  # task id -> asset id
    lease_until: datetime | None = None
    swapped: bool = False
    passes: int = 0
    dirty: bool = False  # this pass started or waited on something: it cannot end the re-index


class Index(Entity):
    id: str
    tenant_id: str
    name: str
    description: str | None = None
    default_features: list[Feature] = Field(default_factory=lambda: list(ALL_FEATURES))
    is_sample: bool = False
    asset_count: int = 0
    deleting: bool = False
    # The searchable generation and its models; `generations` is the highest ever allotted (a
    # cancelled re-index's number is never reused, so nothing left of it can be mistaken for new).
    models: IndexModels = Field(default_factory=IndexModels)
    generation: int = 1
    generations: int = 1
    reindex: Reindex | None = None
    _omit_default = frozenset({"models", "generation", "generations", "reindex"})
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 0


class FeaturePart(Entity):
    """One modality of a feature that has several (embedding: `visual`, `transcription`)."""

    state: FeatureStatus
    reason: str | None = None


class FeatureState(Entity):
    state: FeatureStatus = FeatureStatus.QUEUED
    reason: str | None = None
    error: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    parts: dict[str, FeaturePart] | None = None

    @model_serializer(mode="wrap")
    def _without_empty_parts(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Rows without parts are written exactly as the previous release wrote them (rollback-safe).
        data = handler(self)
        if self.parts is None and isinstance(data, dict):
            data.pop("parts", None)
        return data


class ErrorInfo(Entity):
    code: str
    message: str


class UploadInfo(Entity):
    """How the original reaches storage: a single PUT, or an S3-style multipart upload."""

    key: str
    multipart_upload_id: str | None = None
    part_size: int | None = None
    expected_size: int | None = None
    completed: bool = False


class MediaFacts(Entity):
    """What `probe` learned; used by the later steps to decide what applies."""

    format_name: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    pix_fmt: str | None = None
    fps: float | None = None
    rotation: int = 0
    has_audio: bool = False
    has_video: bool = False
    bit_rate: int | None = None


class Asset(Entity):
    id: str
    tenant_id: str
    index_id: str
    name: str
    media_type: MediaType | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    status: AssetStatus = AssetStatus.AWAITING_UPLOAD
    error: ErrorInfo | None = None
    features: dict[Feature, FeatureState] = Field(default_factory=dict)
    save_original: bool = True
    user_metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Internal: never served.
    upload: UploadInfo | None = None
    source_url: str | None = None
    facts: MediaFacts | None = None
    etag: str | None = None
    # The index generation its search documents were last written to (None: before generations).
    search_generation: int | None = None
    # Where its objects are (domain/blob_keys.py): documents of the previous release lack it and
    # read as layout 1; every new asset is created with layout 2, so it is stored with it.
    key_layout: int = LAYOUT_TENANT_FIRST
    version: int = 0
    _omit_default = frozenset({"search_generation", "key_layout"})


class Task(Entity):
    id: str
    tenant_id: str
    asset_id: str
    index_id: str
    kind: TaskKind
    features: dict[Feature, FeatureState] = Field(default_factory=dict)
    state: TaskState = TaskState.QUEUED
    error: ErrorInfo | None = None
    # A re-index task builds this generation with these models; other tasks follow the index's own.
    generation: int | None = None
    models: IndexModels | None = None
    _omit_default = frozenset({"generation", "models"})
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 0


class Derivative(Entity):
    asset_id: str
    kind: str  # proxy | poster | thumbnail | storyboard | storyboard_vtt | transcript
    key: str  # blob key
    content_type: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    index: int = 0  # several thumbnails share a kind
    created_at: datetime = Field(default_factory=utcnow)


class Segment(Entity):
    id: str
    asset_id: str
    start: float
    end: float
    kind: str  # shot | window | image | speech
    text: str | None = None
    keyframe_key: str | None = None


class IdempotencyRecord(Entity):
    tenant_id: str
    key: str
    request_hash: str
    status_code: int
    body: Any
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


T = TypeVar("T")


# Generic[T] rather than PEP 695 `Page[T]`: the runtime is Python 3.11.
class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = None
