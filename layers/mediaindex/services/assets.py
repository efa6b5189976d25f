"""Assets: create (signed upload, form file, URL), multipart upload control, read, change, delete.

Uploads are one shot: the signed PUT writes the original once (a used URL cannot replace it), and
takes exactly the declared `size_bytes`; each part URL takes exactly its part's length. Completing
a multipart upload first claims it on the asset (a versioned write of `upload.completed`): of
concurrent completions exactly one proceeds, the others are 409 `upload_already_completed`; a
completion that fails gives the claim back. Multipart uploads idle past the stale-upload threshold
are ended `failed` with `upload_expired` (`expire_upload`, called by the runtime's sweeper)."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mediaindex.domain.blob_keys import original_key
from mediaindex.domain.errors import ConflictError, NotFoundError, PayloadTooLargeError, ValidationError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import (
    Asset,
    AssetStatus,
    ErrorInfo,
    Feature,
    FeatureState,
    FeatureStatus,
    MediaType,
    Page,
    Task,
    UploadInfo,
    utcnow,
)
from mediaindex.domain.rules import (
    extension,
    guess_content_type,
    initial_feature_states,
    media_type_for_name,
    merge_features,
    validate_asset_name,
)
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.blobs import UPLOAD_ALREADY_COMPLETED, BlobStore, SignedRequest
from mediaindex.services.cleanup import CleanupService
from mediaindex.services.indexes import IndexService
from mediaindex.services.ingest import IngestService, Landing
from mediaindex.settings import Settings

UrlChecker = Callable[[str], None]
# Part URLs are signed on demand (POST .../upload/parts), a batch at a time: presigning all of a
# 50 GiB upload's parts up front made a ~5.5 MB answer (API Gateway's cap is 6 MB) of URLs that
# expire before the last parts are sent.
SIGNED_PARTS_PER_CALL = 100
MAX_PARTS = 10_000  # S3's limit
# A completion claim this old whose ingest never started belongs to a completion that died (its
# object may have landed): a retry finishes it. A younger one is still at work: left alone.
STRANDED_CLAIM_S = 300


@dataclass(frozen=True)
class PartUrl:
    part_number: int
    url: str


@dataclass(frozen=True)
class UploadPlan:
    """What the client needs to send the bytes straight to storage."""

    expires_at: datetime
    single: SignedRequest | None = None
    upload_id: str | None = None
    part_size: int | None = None
    part_count: int | None = None
    parts: tuple[PartUrl, ...] = ()


class AssetService:
    def __init__(
        self,
        assets: AssetRepository,
        blobs: BlobStore,
        indexes: IndexService,
        ingest: IngestService,
        cleanup: CleanupService,
        settings: Settings,
        check_url: UrlChecker,
    ) -> None:
        self._assets = assets
        self._blobs = blobs
        self._indexes = indexes
        self._ingest = ingest
        self._cleanup = cleanup
        self._settings = settings
        self._check_url = check_url

    # ---- create -------------------------------------------------------------------------------
    def _new_asset(
        self,
        tenant_id: str,
        *,
        index_id: str,
        name: str,
        features: list[Feature],
        save_original: bool,
        user_metadata: dict[str, Any] | None,
        content_type: str | None,
        size_bytes: int | None,
    ) -> Asset:
        index = self._indexes.get(tenant_id, index_id)
        validate_asset_name(name)
        self.validate_user_metadata(user_metadata)
        if size_bytes is not None:
            if size_bytes < 1:
                raise ValidationError("size_bytes must be at least 1", field="size_bytes")
            if size_bytes > self._settings.max_asset_bytes:
                raise PayloadTooLargeError(
                    f"size_bytes is over the limit of {self._settings.max_asset_bytes} bytes",
                    code="asset_file_too_large",
                    field="size_bytes",
                )
        asset_id = new_id("ast")
        merged = merge_features(index.default_features, features)
        return Asset(
            id=asset_id,
            tenant_id=tenant_id,
            index_id=index.id,
            name=name,
            media_type=media_type_for_name(name),
            content_type=content_type or guess_content_type(name),
            size_bytes=size_bytes,
            features=initial_feature_states(merged),
            save_original=save_original,
            user_metadata=user_metadata or {},
            upload=UploadInfo(
                key=original_key(tenant_id, asset_id, extension(name)), expected_size=size_bytes
            ),
        )

    def validate_user_metadata(self, user_metadata: dict[str, Any] | None) -> None:
        if user_metadata is None:
            return
        if not isinstance(user_metadata, dict):
            raise ValidationError("user_metadata must be an object", field="user_metadata")
        size = len(json.dumps(user_metadata, separators=(",", ":")).encode())
        if size > self._settings.max_user_metadata_bytes:
            raise ValidationError(
                f"user_metadata is {size} bytes; the limit is {self._settings.max_user_metadata_bytes}",
                code="user_metadata_too_large",
                field="user_metadata",
            )
        for k, v in user_metadata.items():
            if not isinstance(v, str | int | float | bool) and v is not None:
                raise ValidationError(
                    f"user_metadata.{k} must be a string, number, boolean or null", field=f"user_metadata.{k}"
                )

    def create_for_upload(self, tenant_id: str, **fields: Any) -> tuple[Asset, UploadPlan]:
        asset = self._new_asset(tenant_id, **fields)
        upload = asset.upload
        assert upload is not None
        size = asset.size_bytes
        ct = asset.content_type or "application/octet-stream"
        if size is not None and size >= self._settings.multipart_threshold_bytes:
            part_size = max(self._settings.part_size_bytes, math.ceil(size / 10_000))
            upload_id = self._blobs.create_multipart(upload.key, ct)
            upload.multipart_upload_id = upload_id
            upload.part_size = part_size
            asset = self._assets.create(asset)
            first = min(math.ceil(size / part_size), SIGNED_PARTS_PER_CALL)
            return asset, self._part_plan(asset, range(1, first + 1))
        key = upload.key
        asset = self._assets.create(asset)
        signed = self._blobs.presign_put(
            key, ct, self._settings.upload_url_ttl_s, expected_size=size, one_shot=True
        )
        return asset, UploadPlan(expires_at=signed.expires_at, single=signed)

    def create_from_url(self, tenant_id: str, *, asset_url: str, **fields: Any) -> tuple[Asset, Task]:
        self._check_url(asset_url)
        asset = self._new_asset(tenant_id, **fields)
        asset.source_url = asset_url
        asset = self._assets.create(asset)
        return asset, self._ingest.start_url_fetch(asset)

    def create_from_file(self, tenant_id: str, *, path: Path, **fields: Any) -> tuple[Asset, Task]:
        """A small file sent through the API (multipart/form-data): stored, then ingested."""
        size = path.stat().st_size
        if size > self._settings.max_form_upload_bytes:
            raise PayloadTooLargeError(
                f"asset_file is over the {self._settings.max_form_upload_bytes} byte limit of form uploads; "
                "use a signed upload URL instead",
                code="asset_file_too_large",
                field="asset_file",
            )
        asset = self._new_asset(tenant_id, size_bytes=None, **fields)
        assert asset.upload is not None
        key = asset.upload.key
        asset = self._assets.create(asset)
        try:
            info = self._blobs.put_file(key, path, asset.content_type or "application/octet-stream")
            task = self._ingest.original_uploaded(tenant_id, asset.id, size=info.size, etag=info.etag)
        except Exception:
            self._cleanup.purge_asset(asset)  # nothing half-made stays behind
            raise
        assert task is not None
        refreshed = self._assets.get(tenant_id, asset.id)
        return (refreshed or asset), task

    # ---- multipart upload control --------------------------------------------------------------
    def _multipart_asset(self, tenant_id: str, asset_id: str) -> tuple[Asset, UploadInfo, str]:
        asset = self.get(tenant_id, asset_id)
        up = asset.upload
        if up is None or up.multipart_upload_id is None:
            raise ConflictError("this asset's upload is not multipart", code="upload_not_multipart")
        if asset.status != AssetStatus.AWAITING_UPLOAD or up.completed:
            raise ConflictError("this asset's upload is already complete", code="upload_already_completed")
        return asset, up, up.multipart_upload_id

    def _part_plan(self, asset: Asset, part_numbers: Any) -> UploadPlan:
        assert asset.upload is not None and asset.upload.multipart_upload_id is not None
        ttl = self._settings.upload_url_ttl_s
        up, upload_id = asset.upload, asset.upload.multipart_upload_id
        parts = tuple(
            PartUrl(
                n, self._blobs.presign_part(up.key, upload_id, n, ttl, expected_size=_part_length(up, n)).url
            )
            for n in part_numbers
        )
        return UploadPlan(
            expires_at=utcnow() + timedelta(seconds=ttl),
            upload_id=asset.upload.multipart_upload_id,
            part_size=asset.upload.part_size,
            part_count=_part_count(asset.upload),
            parts=parts,
        )

    def sign_parts(self, tenant_id: str, asset_id: str, part_numbers: list[int]) -> UploadPlan:
        asset, up, _ = self._multipart_asset(tenant_id, asset_id)
        wanted = sorted(set(part_numbers))
        last = _part_count(up) or 10_000
        if not wanted or wanted[0] < 1 or wanted[-1] > last:
            raise ValidationError(f"part_numbers must be between 1 and {last}", field="part_numbers")
        if len(wanted) > SIGNED_PARTS_PER_CALL:
            raise ValidationError(
                f"sign at most {SIGNED_PARTS_PER_CALL} parts per call", field="part_numbers"
            )
        return self._part_plan(asset, wanted)

    def complete_upload(self, tenant_id: str, asset_id: str, parts: list[tuple[int, str]]) -> Asset:
        try:
            asset, up, upload_id = self._multipart_asset(tenant_id, asset_id)
            if not parts:
                raise ValidationError("parts must not be empty", field="parts")
            last = _part_count(up) or MAX_PARTS
            if any(not 1 <= n <= last for n, _ in parts):
                raise ValidationError(
                    f"part numbers must be between 1 and {last}", code="upload_parts_invalid", field="parts"
                )
            # The claim: of concurrent completions, one passes; the others are 409 here.
            self._assets.mutate(tenant_id, asset_id, _claim_completion(upload_id))
        except ConflictError as e:
            if e.code == UPLOAD_ALREADY_COMPLETED:
                self._finish_stranded(tenant_id, asset_id)  # recovers a completion that died half-way
            raise
        try:
            info = self._blobs.complete_multipart(
                up.key, upload_id, sorted(parts), expected_size=up.expected_size, one_shot=True
            )
        except ConflictError as e:
            # The store has (or is joining) this upload's object already: a completion that died
            # part-way. The claim stays, for the stranded-claim recovery (a later retry, the sweep).
            if e.code != UPLOAD_ALREADY_COMPLETED:
                self._release_claim(tenant_id, asset_id, upload_id)
            raise
        except BaseException:
            self._release_claim(tenant_id, asset_id, upload_id)
            raise
        landing, _ = self._ingest.original_landed(tenant_id, asset.id, size=info.size, etag=info.etag)
        if landing == Landing.UNWANTED:
            self._blobs.delete(up.key)  # deleted while its parts were being joined: keep nothing
            self.get(tenant_id, asset_id)  # asset_not_found when that is why
            raise ConflictError("the asset no longer awaits an upload", code="upload_not_accepted")
        return self.get(tenant_id, asset_id)

    def abort_upload(self, tenant_id: str, asset_id: str) -> None:
        asset, up, upload_id = self._multipart_asset(tenant_id, asset_id)
        # The asset first, versioned: an abort loses to a completion that claimed the upload.
        self._assets.mutate(tenant_id, asset.id, _abort(upload_id))
        self._blobs.abort_multipart(up.key, upload_id)

    def expire_upload(self, tenant_id: str, asset_id: str, upload_id: str) -> bool:
        """A multipart upload left idle past the stale-upload threshold: its asset ends `failed`
        with `upload_expired` and the upload is aborted. An asset that moved on (completed,
        aborted, deleted, another upload) is left alone; a completion that stopped after its
        object landed is finished instead. Returns whether the asset was expired."""
        asset = self._assets.get(tenant_id, asset_id)
        up = asset.upload if asset else None
        if asset is None or up is None or up.multipart_upload_id != upload_id:
            return False
        if up.completed and (
            self._finish_stranded(tenant_id, asset_id)
            or utcnow() - asset.updated_at < timedelta(seconds=STRANDED_CLAIM_S)
        ):
            return False  # landed and now ingesting, or a completion still at work
        try:
            self._assets.mutate(tenant_id, asset_id, _expire(upload_id))
        except (_Unchanged, NotFoundError):
            return False
        self._blobs.abort_multipart(up.key, upload_id)
        return True

    def _release_claim(self, tenant_id: str, asset_id: str, upload_id: str) -> None:
        """Gives a failed completion's claim back, so the client can fix its parts and retry."""

        def release(asset: Asset) -> Asset:
            up = asset.upload
            if (
                asset.status != AssetStatus.AWAITING_UPLOAD
                or up is None
                or up.multipart_upload_id != upload_id
            ):
                raise _Unchanged
            up.completed = False
            asset.updated_at = utcnow()
            return asset

        with contextlib.suppress(_Unchanged, NotFoundError):
            self._assets.mutate(tenant_id, asset_id, release)

    def _finish_stranded(self, tenant_id: str, asset_id: str) -> bool:
        """A claimed completion whose object landed but whose ingest never started (its process
        died between the two) is finished now. Returns whether the object is there."""
        asset = self._assets.get(tenant_id, asset_id)
        up = asset.upload if asset else None
        if asset is None or up is None or asset.status != AssetStatus.AWAITING_UPLOAD or not up.completed:
            return False
        if utcnow() - asset.updated_at < timedelta(seconds=STRANDED_CLAIM_S):
            return False  # a completion still at work: it starts the ingest itself
        info = self._blobs.head(up.key)
        if info is None or (up.expected_size is not None and info.size != up.expected_size):
            return False  # not landed (yet), or a store still checking its size
        self._ingest.original_landed(tenant_id, asset_id, size=info.size, etag=info.etag)
        return True

    # ---- read, change, delete ------------------------------------------------------------------
    def get(self, tenant_id: str, asset_id: str) -> Asset:
        asset = self._assets.get(tenant_id, asset_id)
        if asset is None:
            raise NotFoundError(f"asset {asset_id} not found", code="asset_not_found")
        return asset

    def list_assets(
        self,
        tenant_id: str,
        *,
        index_id: str | None,
        status: AssetStatus | None,
        media_type: MediaType | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Asset]:
        if index_id is not None:
            self._indexes.get(tenant_id, index_id)
        return self._assets.list(
            tenant_id, index_id=index_id, status=status, media_type=media_type, limit=limit, cursor=cursor
        )

    def batch_get(self, tenant_id: str, ids: list[str]) -> tuple[list[Asset], list[str]]:
        found: list[Asset] = []
        missing: list[str] = []
        for asset_id in dict.fromkeys(ids):
            asset = self._assets.get(tenant_id, asset_id)
            if asset is None:
                missing.append(asset_id)
            else:
                found.append(asset)
        return found, missing

    def patch(self, tenant_id: str, asset_id: str, changes: dict[str, Any]) -> Asset:
        self.get(tenant_id, asset_id)
        if "name" in changes:
            validate_asset_name(changes["name"])
        if "user_metadata" in changes:
            self.validate_user_metadata(changes["user_metadata"])

        def apply(asset: Asset) -> Asset:
            if "name" in changes:
                asset.name = changes["name"]
            if "user_metadata" in changes:
                merged = {**asset.user_metadata, **(changes["user_metadata"] or {})}
                # JSON merge-patch: a null value removes the key.
                asset.user_metadata = {k: v for k, v in merged.items() if v is not None}
            asset.updated_at = utcnow()
            return asset

        updated = self._assets.mutate(tenant_id, asset_id, apply)
        self.validate_user_metadata(updated.user_metadata)
        return updated

    def delete(self, tenant_id: str, asset_id: str) -> None:
        self._cleanup.purge_asset(self.get(tenant_id, asset_id))

    def batch_delete(self, tenant_id: str, ids: list[str]) -> tuple[int, list[str]]:
        deleted, missing = 0, list[str]()
        for asset_id in dict.fromkeys(ids):
            asset = self._assets.get(tenant_id, asset_id)
            if asset is None:
                missing.append(asset_id)
                continue
            self._cleanup.purge_asset(asset)
            deleted += 1
        return deleted, missing


def _part_count(upload: UploadInfo) -> int | None:
    if upload.expected_size is None or not upload.part_size:
        return None
    return math.ceil(upload.expected_size / upload.part_size)


def _part_length(upload: UploadInfo, part_number: int) -> int | None:
    """The exact length part `part_number` must have (signed into its URL), when the size is known."""
    count = _part_count(upload)
    if count is None or upload.expected_size is None or upload.part_size is None:
        return None
    if part_number < count:
        return upload.part_size
    return upload.expected_size - upload.part_size * (count - 1)


class _Unchanged(Exception):
    """Raised inside a versioned write to leave the asset as it is."""


def _claim_completion(upload_id: str) -> Callable[[Asset], Asset]:
    def claim(asset: Asset) -> Asset:
        up = asset.upload
        if (
            asset.status != AssetStatus.AWAITING_UPLOAD
            or up is None
            or up.multipart_upload_id != upload_id
            or up.completed
        ):
            raise ConflictError("this asset's upload is already complete", code=UPLOAD_ALREADY_COMPLETED)
        up.completed = True
        asset.updated_at = utcnow()
        return asset

    return claim


def _abort(upload_id: str) -> Callable[[Asset], Asset]:
    def abort(asset: Asset) -> Asset:
        up = asset.upload
        if (
            asset.status != AssetStatus.AWAITING_UPLOAD
            or up is None
            or up.multipart_upload_id != upload_id
            or up.completed
        ):
            raise ConflictError("this asset's upload is already complete", code=UPLOAD_ALREADY_COMPLETED)
        return _mark_aborted(asset)

    return abort


def _expire(upload_id: str) -> Callable[[Asset], Asset]:
    def expire(asset: Asset) -> Asset:
        up = asset.upload
        if asset.status != AssetStatus.AWAITING_UPLOAD or up is None or up.multipart_upload_id != upload_id:
            raise _Unchanged
        return _mark_ended(
            asset, "upload_expired", "no part of the upload arrived for too long", "upload expired"
        )

    return expire


def _mark_aborted(asset: Asset) -> Asset:
    """An aborted upload ends the asset: it can never receive bytes, so it is `failed`, not stuck."""
    return _mark_ended(asset, "upload_aborted", "the upload was aborted by the client", "upload aborted")


def _mark_ended(asset: Asset, code: str, message: str, reason: str) -> Asset:
    now = datetime.now(UTC)
    if asset.upload:
        asset.upload.multipart_upload_id = None
        asset.upload.completed = False
    asset.status = AssetStatus.FAILED
    asset.error = ErrorInfo(code=code, message=message)
    asset.features = {
        f: FeatureState(state=FeatureStatus.CANCELLED, reason=reason, updated_at=now) for f in asset.features
    }
    asset.updated_at = now
    return asset
