"""transcription: the asset's first audio stream as 16 kHz mono (the track probe kept:
pipeline/audio_track.py), through Whisper, stored as JSON."""

from __future__ import annotations

from mediaindex.domain.blob_keys import KeyOwner, derived_key
from mediaindex.domain.models import Derivative, Feature, FeatureState, FeatureStatus, MediaType
from mediaindex.pipeline import audio_track
from mediaindex.pipeline.context import StepContext, StepResult

TRANSCRIPT_NAME = "transcript.json"


def transcript_key(owner: KeyOwner) -> str:
    return derived_key(owner, TRANSCRIPT_NAME)


def _na(reason: str) -> StepResult:
    return StepResult(
        feature_states={Feature.TRANSCRIPTION: FeatureState(state=FeatureStatus.NA, reason=reason)}
    )


def run(ctx: StepContext) -> StepResult:
    asset = ctx.asset
    if asset.media_type == MediaType.IMAGE:
        return _na("images have no audio")
    if asset.facts is not None and not asset.facts.has_audio:
        return _na("the file has no audio stream")

    # The 16 kHz track probe kept, else (media probed before it was kept) the original's audio.
    audio = ctx.workdir / audio_track.TRACK_NAME
    if not audio_track.fetch(asset, ctx.blobs, audio):
        audio = ctx.workdir / "audio16k.wav"
        if not audio_track.extract(
            ctx.original_path(),
            audio,
            timeout_s=ctx.settings.job_timeout_s,
            max_duration_s=ctx.settings.max_duration_s,
        ):
            return _na("the file has no audio stream")

    transcript = ctx.models.transcriber(ctx.transcription_model).transcribe(audio)
    data = transcript.model_dump_json().encode()
    key = transcript_key(asset)
    info = ctx.blobs.put_bytes(key, data, "application/json")
    derivative = Derivative(
        asset_id=asset.id,
        kind="transcript",
        key=key,
        content_type="application/json",
        size_bytes=info.size,
        duration_s=transcript.duration,
    )
    return StepResult(derivatives=[derivative], replaced_kinds=["transcript"])
