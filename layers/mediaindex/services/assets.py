"""Assets: create (signed upload, form file, URL), read, change, delete. The signed upload itself,
single PUT or multipart, is planned and controlled by mediaindex.services.uploads."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mediaindex.domain.blob_keys import NEW_KEY_LAYOUT, original_key
from mediaindex.domain.errors import NotFoundError, PayloadTooLargeError, ValidationError
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import (
    Asset,
    AssetStatus,
    Feature,
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
from mediaindex.ports.blobs import BlobStore
from mediaindex.services.cleanup import CleanupService
from mediaindex.services.indexes import IndexService
from mediaindex.services.ingest import IngestService
from mediaindex.services.uploads import UploadPlan, UploadService
from mediaindex.settings import Settings

UrlChecker = Callable[[str], None]


class AssetService:
    def __init__(
        self,
        assets: AssetRepository,
        blobs: BlobStore,
        indexes: IndexService,
        ingest: IngestService,
        cleanup: CleanupService,
        uploads: UploadService,
        settings: Settings,
        check_url: UrlChecker,
    ) -> None:
        self._uploads = uploads
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
            key_layout=NEW_KEY_LAYOUT,
            upload=UploadInfo(
                key=original_key(tenant_id, asset_id, extension(name), NEW_KEY_LAYOUT),
                expected_size=size_bytes,
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
            return asset, self._uploads.first_parts(asset)
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
                # The merged whole is what is stored: checked before the write, which raising here stops.
                self.validate_user_metadata(asset.user_metadata)
            asset.updated_at = utcnow()
            return asset

        return self._assets.mutate(tenant_id, asset_id, apply)

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
