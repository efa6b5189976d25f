"""What an asset's pipeline made, as clients fetch it: the original's download, derivatives with
signed URLs, the transcript and the segments. Every read first finds the asset in the tenant."""

from __future__ import annotations

from dataclasses import dataclass

from mediaindex.domain.errors import ConflictError, NotFoundError
from mediaindex.domain.models import AssetStatus, Derivative, Page, Segment
from mediaindex.ports.blobs import BlobStore, SignedRequest
from mediaindex.ports.outputs import OutputRepository
from mediaindex.services.assets import AssetService
from mediaindex.settings import Settings

# Served derivative kinds; keyframes and the transcript have routes of their own.
SERVED_KINDS = ("proxy", "poster", "thumbnail", "storyboard", "storyboard_vtt")


@dataclass(frozen=True)
class DerivativeView:
    derivative: Derivative
    url: str


class AssetOutputService:
    def __init__(
        self, assets: AssetService, outputs: OutputRepository, blobs: BlobStore, settings: Settings
    ) -> None:
        self._assets = assets
        self._outputs = outputs
        self._blobs = blobs
        self._settings = settings

    def download(self, tenant_id: str, asset_id: str) -> SignedRequest:
        asset = self._assets.get(tenant_id, asset_id)
        if not asset.save_original:
            raise ConflictError(
                "the original of this asset was not kept (save_original=false)", code="original_not_saved"
            )
        if (
            asset.upload is None
            or asset.status == AssetStatus.AWAITING_UPLOAD
            or self._blobs.head(asset.upload.key) is None
        ):
            raise ConflictError("the original has not been uploaded yet", code="original_not_available")
        return self._blobs.presign_get(
            asset.upload.key,
            self._settings.download_url_ttl_s,
            filename=asset.name,
            content_type=asset.content_type,
        )

    def derivatives(self, tenant_id: str, asset_id: str) -> list[DerivativeView]:
        self._assets.get(tenant_id, asset_id)
        ttl = self._settings.download_url_ttl_s
        return [
            DerivativeView(d, self._blobs.presign_get(d.key, ttl, content_type=d.content_type).url)
            for d in sorted(
                self._outputs.list_derivatives(tenant_id, asset_id), key=lambda d: (d.kind, d.index)
            )
            if d.kind in SERVED_KINDS
        ]

    def transcript(self, tenant_id: str, asset_id: str) -> bytes:
        """The stored transcript JSON."""
        self._assets.get(tenant_id, asset_id)
        for d in self._outputs.list_derivatives(tenant_id, asset_id):
            if d.kind == "transcript":
                return self._blobs.get_bytes(d.key)
        raise NotFoundError("this asset has no transcript", code="transcript_not_found")

    def segments(
        self, tenant_id: str, asset_id: str, *, limit: int, cursor: str | None
    ) -> tuple[Page[Segment], dict[str, str]]:
        """The segments page and a presigned keyframe URL per segment id."""
        self._assets.get(tenant_id, asset_id)
        page = self._outputs.list_segments(tenant_id, asset_id, limit=limit, cursor=cursor)
        ttl = self._settings.download_url_ttl_s
        urls = {
            s.id: self._blobs.presign_get(s.keyframe_key, ttl, content_type="image/jpeg").url
            for s in page.data
            if s.keyframe_key
        }
        return page, urls
