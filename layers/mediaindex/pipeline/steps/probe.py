"""The `probe` step: what the original is, whether it is usable, and what applies to it; for a task
that transcribes, the 16 kHz audio track transcription reads (pipeline/audio_track.py)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mediaindex.domain.errors import MediaError
from mediaindex.domain.models import Feature, FeatureState, FeatureStatus, MediaType
from mediaindex.media import probe
from mediaindex.media.hashing import sha256_file
from mediaindex.pipeline import audio_track
from mediaindex.pipeline.context import StepContext, StepResult
from mediaindex.pipeline.spec import STEP_BY_NAME

log = logging.getLogger(__name__)


def _extract_track(ctx: StepContext, path: Path) -> Path | None:
    """Decodes the 16 kHz track transcription reads into the work folder; None when there is
    nothing to keep. Audio that does not decode fails transcription alone, as before the track was
    kept: transcription then reports it from the original."""
    track = ctx.workdir / audio_track.TRACK_NAME
    try:
        has_audio = audio_track.extract(
            path, track, timeout_s=ctx.settings.job_timeout_s, max_duration_s=ctx.settings.max_duration_s
        )
    except MediaError as e:
        if e.code == "media_too_large":
            raise
        log.warning("audio track not kept: %s", e.message, extra={"asset_id": ctx.asset.id})
        return None
    return track if has_audio else None


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
    # The track is decoded (capped like every decode) while the tail is checked: two short ffmpeg
    # runs side by side on the critical path of every task. It is stored only once the checks pass.
    # A re-run keeps the track stored already: an original never changes, nor does its track.
    wants_track = (
        Feature.TRANSCRIPTION in ctx.task_features
        and pf.media_type != MediaType.IMAGE
        and pf.facts.has_audio
        and ctx.blobs.head(audio_track.key(ctx.asset)) is None
    )
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mi-probe-track") as pool:
        track = pool.submit(_extract_track, ctx, path) if wants_track else None
        probe.check_decodes(path, pf, timeout_s=timeout_s / 2, max_duration_s=max_s)
        sha256 = sha256_file(path)
        kept = track.result() if track is not None else None
    derivatives = [audio_track.store(ctx.asset, ctx.blobs, kept)] if kept is not None else []

    updates: dict[str, object] = {
        "media_type": pf.media_type,
        "duration_s": pf.duration_s,
        "width": pf.width,
        "height": pf.height,
        "sha256": sha256,
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
    return StepResult(
        feature_states=states,
        asset_updates=updates,
        derivatives=derivatives,
        replaced_kinds=[audio_track.TRACK_KIND] if derivatives else [],
    )
