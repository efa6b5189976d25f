"""`fetch`: downloads an asset_url into storage, through the SSRF guard, within the size limit and
the download budget (deadline, minimum rate). A download abandoned at shutdown raises
`net.budget.FetchAborted`, which is no failure of the asset: its job is resumed by the next start."""

from __future__ import annotations

from mediaindex.domain.errors import MediaError, MediaindexError
from mediaindex.domain.models import UploadInfo
from mediaindex.net.download import download
from mediaindex.pipeline.context import StepContext, StepResult


def run(ctx: StepContext) -> StepResult:
    asset, s = ctx.asset, ctx.settings
    assert asset.source_url is not None and asset.upload is not None
    dest = ctx.workdir / "download"
    try:
        # Connections pinned to the checked addresses; the whole download within its budget.
        size, ctype = download(
            asset.source_url,
            dest,
            max_bytes=s.max_asset_bytes,
            allow_private=s.allow_private_urls,
            timeout_s=s.fetch_timeout_s,
            max_redirects=s.fetch_max_redirects,
            deadline_s=s.fetch_deadline_s,
            min_rate_bytes_s=s.fetch_min_rate_bytes_s,
            rate_grace_s=s.fetch_rate_grace_s,
        )
    except MediaError:
        raise
    except MediaindexError as e:  # forbidden hop, too large: permanent, reported with its own code
        raise MediaError(e.message, code=e.code) from e
    content_type = asset.content_type or (ctype.split(";")[0] if ctype else "application/octet-stream")
    info = ctx.blobs.put_file(asset.upload.key, dest, content_type)
    upload = UploadInfo(key=asset.upload.key, completed=True, expected_size=size)
    return StepResult(asset_updates={"size_bytes": info.size, "etag": info.etag, "upload": upload})
