"""The `probe` step: what the original is, whether it is usable, and what applies to it."""

from __future__ import annotations

from mediaindex.domain.errors import MediaError
from mediaindex.domain.models import Feature, FeatureState, FeatureStatus, MediaType
from mediaindex.media import probe
from mediaindex.media.hashing import sha256_file
from mediaindex.pipeline.context import StepContext, StepResult
from mediaindex.pipeline.spec import STEP_BY_NAME


def run(ctx: StepContext) -> StepResult:
    path = ctx.original_path()
    size = path.stat().st_size
    if size == 0:
        raise MediaError("the uploaded file is empty", code="asset_file_empty")
    declared = probe.declared_image_size(path)
    if declared and declared[0] * declared[1] > ctx.settings.max_pixels:
        raise MediaError(
            f"the image claims {declared[0]}x{declared[1]} pixels; the limit is {ctx.settings.max_pixels}",
            code="media_too_large",
        )
    timeout_s = float(STEP_BY_NAME["probe"].timeout_s)
    max_s = ctx.settings.max_duration_s
    pf = probe.describe(path, timeout_s=timeout_s / 4, max_duration_s=max_s)
    # Limits before decoding anything: a bomb is refused, not processed. What the header claims is
    # checked here; every later decode is capped at the limit too, in case the header lies.
    probe.check_limits(pf, max_pixels=ctx.settings.max_pixels, max_duration_s=max_s)
    probe.check_decodes(path, pf, timeout_s=timeout_s / 2, max_duration_s=max_s)

    updates: dict[str, object] = {
        "media_type": pf.media_type,
        "duration_s": pf.duration_s,
        "width": pf.width,
        "height": pf.height,
        "sha256": sha256_file(path),
        "size_bytes": size,
        "facts": pf.facts,
    }
    if not ctx.asset.content_type:
        updates["content_type"] = pf.content_type

    # Probe serves no feature itself; the runner applies these only to features the task has.
    states: dict[Feature, FeatureState] = {}
    if pf.media_type == MediaType.IMAGE:
        states[Feature.TRANSCRIPTION] = FeatureState(state=FeatureStatus.NA, reason="images have no audio")
    elif not pf.facts.has_audio:
        states[Feature.TRANSCRIPTION] = FeatureState(state=FeatureStatus.NA, reason="no audio stream")
    return StepResult(feature_states=states, asset_updates=updates)
