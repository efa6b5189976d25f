"""The signed upload of an asset's original, and the control of a multipart upload.

Uploads are one shot: the signed PUT writes the original once (a used URL cannot replace it), and
takes exactly the declared `size_bytes`; each part URL takes exactly its part's length. Completing
a multipart upload first claims it on the asset (a versioned write of `upload.completed`): of
concurrent completions exactly one proceeds, the others are 409 `upload_already_completed`; a
completion that fails gives the claim back. Multipart uploads idle past the stale-upload threshold
are ended `failed` with `upload_expired` (`expire_upload`, called by the runtime's sweeper)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mediaindex.domain.errors import ConflictError, NotFoundError, ValidationError
from mediaindex.domain.models import (
    Asset,
    AssetStatus,
    ErrorInfo,
    FeatureState,
    FeatureStatus,
    UploadInfo,
    utcnow,
)
from mediaindex.ports.assets import AssetRepository
from mediaindex.ports.blobs import UPLOAD_ALREADY_COMPLETED, BlobStore, SignedRequest
from mediaindex.services.ingest import IngestService, Landing
from mediaindex.settings import Settings

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


class UploadService:
    def __init__(
        self, assets: AssetRepository, blobs: BlobStore, ingest: IngestService, settings: Settings
    ) -> None:
        self._assets = assets
        self._blobs = blobs
        self._ingest = ingest
        self._settings = settings

    def _get(self, tenant_id: str, asset_id: str) -> Asset:
        asset = self._assets.get(tenant_id, asset_id)
        if asset is None:
            raise NotFoundError(f"asset {asset_id} not found", code="asset_not_found")
        return asset

    def _multipart_asset(self, tenant_id: str, asset_id: str) -> tuple[Asset, UploadInfo, str]:
        asset = self._get(tenant_id, asset_id)
        up = asset.upload
        if up is None or up.multipart_upload_id is None:
            raise ConflictError("this asset's upload is not multipart", code="upload_not_multipart")
        if asset.status != AssetStatus.AWAITING_UPLOAD or up.completed:
            raise ConflictError("this asset's upload is already complete", code="upload_already_completed")
        return asset, up, up.multipart_upload_id

    def first_parts(self, asset: Asset) -> UploadPlan:
        """The plan a new multipart upload is created with: URLs for its first parts only."""
        assert asset.upload is not None
        count = _part_count(asset.upload) or 1
        return self._part_plan(asset, range(1, min(count, SIGNED_PARTS_PER_CALL) + 1))

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
            self._get(tenant_id, asset_id)  # asset_not_found when that is why
            raise ConflictError("the asset no longer awaits an upload", code="upload_not_accepted")
        return self._get(tenant_id, asset_id)

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


def _open_upload(asset: Asset, upload_id: str) -> UploadInfo:
    """The asset's multipart upload `upload_id` while nothing has completed or ended it; else 409
    `upload_already_completed` (what a completion or an abort that lost the race answers)."""
    up = asset.upload
    if (
        asset.status != AssetStatus.AWAITING_UPLOAD
        or up is None
        or up.multipart_upload_id != upload_id
        or up.completed
    ):
        raise ConflictError("this asset's upload is already complete", code=UPLOAD_ALREADY_COMPLETED)
    return up


def _claim_completion(upload_id: str) -> Callable[[Asset], Asset]:
    def claim(asset: Asset) -> Asset:
        up = _open_upload(asset, upload_id)
        up.completed = True
        asset.updated_at = utcnow()
        return asset

    return claim


def _abort(upload_id: str) -> Callable[[Asset], Asset]:
    def abort(asset: Asset) -> Asset:
        _open_upload(asset, upload_id)
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
