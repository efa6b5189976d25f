"""transcription: the asset's first audio stream as 16 kHz mono, through Whisper, stored as JSON."""

from __future__ import annotations

from pathlib import Path

from mediaindex.domain.blob_keys import derived_key
from mediaindex.domain.errors import MediaError
from mediaindex.domain.models import Derivative, Feature, FeatureState, FeatureStatus, MediaType
from mediaindex.media import ffmpeg
from mediaindex.pipeline.context import StepContext, StepResult

TRANSCRIPT_NAME = "transcript.json"


def transcript_key(tenant_id: str, asset_id: str) -> str:
    return derived_key(tenant_id, asset_id, TRANSCRIPT_NAME)


def _na(reason: str) -> StepResult:
    return StepResult(
        feature_states={Feature.TRANSCRIPTION: FeatureState(state=FeatureStatus.NA, reason=reason)}
    )


# 16 kHz mono 16-bit PCM.
WAV_BYTES_PER_S = 16_000 * 2


def extract_audio(
    src: Path, dest: Path, *, timeout_s: float = 1800, max_duration_s: float | None = None
) -> bool:
    """Writes the first audio stream as 16 kHz mono PCM WAV. False when the file has no audio.
    `max_duration_s` caps the decode and the WAV's size: MediaError(`media_too_large`) past it."""
    args = ["-i", str(src), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", "16000"]
    args += ["-c:a", "pcm_s16le", str(dest)]
    max_bytes = None
    if max_duration_s is not None:
        max_bytes = int((max_duration_s + ffmpeg.DECODE_MARGIN_S + 1) * WAV_BYTES_PER_S) + 4096
    out = ffmpeg.run_ffmpeg(
        args, timeout_s=timeout_s, check=False, max_duration_s=max_duration_s, max_output_bytes=max_bytes
    )
    if out.returncode != 0:
        if "matches no streams" in out.stderr:
            return False
        raise MediaError(f"cannot decode the audio: {out.stderr.strip()[-300:]}")
    return dest.is_file() and dest.stat().st_size > 44  # a bare WAV header is no audio


def run(ctx: StepContext) -> StepResult:
    asset = ctx.asset
    if asset.media_type == MediaType.IMAGE:
        return _na("images have no audio")
    if asset.facts is not None and not asset.facts.has_audio:
        return _na("the file has no audio stream")

    wav = ctx.workdir / "audio16k.wav"
    if not extract_audio(
        ctx.original_path(),
        wav,
        timeout_s=ctx.settings.job_timeout_s,
        max_duration_s=ctx.settings.max_duration_s,
    ):
        return _na("the file has no audio stream")

    transcript = ctx.models.transcriber(ctx.transcription_model).transcribe(wav)
    data = transcript.model_dump_json().encode()
    key = transcript_key(asset.tenant_id, asset.id)
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
