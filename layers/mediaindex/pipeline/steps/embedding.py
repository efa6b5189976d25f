"""embedding: the asset's canonical time segments, one keyframe per visual segment, and their vectors.

Two kinds of segment, each searched by its own modality, so no text is indexed twice:
- visual: video is cut at shot changes (ffmpeg's scene score), long shots split so none passes
  MAX_SEGMENT_S, an image is one segment; each gets a keyframe and, when a CLIP model is configured,
  its CLIP vector. They carry no transcript text. A video's segments and keyframes come from the
  plan the render step stored (pipeline/visual_plan.py), so this step reads neither the original
  nor decodes it; media rendered without one is scanned here.
- speech: the transcript's sentences (mediaindex.pipeline.sentences), each with its text and a text
  vector, so a transcript hit answers with the sentence that was spoken, start to end. Audio has
  only these.

The embedding feature reports each part (`visual`, `transcription`) with its own state, so a video
indexed without a CLIP model says so instead of claiming a visual index it does not have."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mediaindex.domain.ids import new_id
from mediaindex.domain.models import (
    Asset,
    Derivative,
    Feature,
    FeaturePart,
    FeatureState,
    FeatureStatus,
    MediaType,
    Segment,
)
from mediaindex.domain.transcripts import Transcript
from mediaindex.media import shots
from mediaindex.media.probe import media_duration
from mediaindex.pipeline import visual_plan
from mediaindex.pipeline.context import StepContext, StepResult
from mediaindex.pipeline.sentences import sentences
from mediaindex.pipeline.steps.transcription import transcript_key
from mediaindex.ports.search import SearchDoc

SCENE_THRESHOLD = shots.SCENE_THRESHOLD


@dataclass
class _Seg:
    start: float
    end: float
    kind: str
    text: str = ""
    keyframe: Path | None = None
    keyframe_key: str | None = None


def detect_cuts(
    path: Path,
    *,
    threshold: float = SCENE_THRESHOLD,
    timeout_s: float = 1800,
    max_duration_s: float | None = None,
) -> list[float] | None:
    """Times of hard cuts, or None when scene detection could not run (a decode of its own; the
    render step takes them from its one decode)."""
    return shots.detect_cuts(path, threshold=threshold, timeout_s=timeout_s, max_duration_s=max_duration_s)


def load_transcript(ctx: StepContext) -> Transcript | None:
    """The transcript the transcription step stored, if any (a re-run of embedding reuses it)."""
    key = transcript_key(ctx.asset)
    if ctx.blobs.head(key) is None:
        return None
    return Transcript.model_validate_json(ctx.blobs.get_bytes(key))


def _media_type(asset: Asset) -> MediaType:
    if asset.media_type is not None:
        return asset.media_type
    if asset.facts is not None and not asset.facts.has_video and asset.facts.has_audio:
        return MediaType.AUDIO
    return MediaType.VIDEO


def _as_segs(kind: str, planned: list[visual_plan.VisualSegment]) -> list[_Seg]:
    return [_Seg(v.start, v.end, kind, keyframe=v.keyframe, keyframe_key=v.keyframe_key) for v in planned]


def _visual_segments(ctx: StepContext, media_type: MediaType) -> tuple[list[_Seg], list[Derivative]]:
    """The visual segments with their keyframes (on this machine where a CLIP model will read
    them), and the keyframe derivatives this step made (none when it used a stored plan)."""
    if media_type == MediaType.AUDIO:
        return [], []
    asset = ctx.asset
    if media_type == MediaType.VIDEO and (stored := visual_plan.load(asset, ctx.blobs)) is not None:
        planned = stored.planned(asset)
        if ctx.settings.clip_model_path is not None:
            visual_plan.fetch_keyframes(ctx.blobs, planned, ctx.workdir)
        return _as_segs(stored.kind, planned), []
    src = ctx.original_path()
    if media_type == MediaType.IMAGE:
        kind, segs = "image", [visual_plan.VisualSegment(0.0, 0.0)]
    else:
        duration = ctx.asset.duration_s or media_duration(src)
        found = shots.scan(
            src,
            ctx.workdir / "candidates",
            duration_s=duration,
            timeout_s=ctx.settings.job_timeout_s,
            max_duration_s=ctx.settings.max_duration_s,
        )
        kind, segs = visual_plan.segments_from_scan(found, duration)
    derivatives = visual_plan.store_keyframes(asset, ctx.blobs, segs, src, ctx.workdir)
    return _as_segs(kind, segs), derivatives


def _speech_segments(transcript: Transcript | None, visual: list[_Seg]) -> list[_Seg]:
    out: list[_Seg] = []
    for sent in sentences(transcript) if transcript is not None else []:
        # The thumbnail of a speech hit is the keyframe of the shot it is mostly spoken over.
        mid = (sent.start + sent.end) / 2
        host = next((v for v in visual if v.start <= mid < v.end), visual[-1] if visual else None)
        keyframe = host.keyframe_key if host else None
        out.append(_Seg(sent.start, sent.end, "speech", text=sent.text, keyframe_key=keyframe))
    return out


def _embedding_state(
    media_type: MediaType, *, clip_configured: bool, visual_vectors: int, text_vectors: int
) -> FeatureState:
    """The feature's state, with one part per modality so that a missing half is never hidden."""
    parts: dict[str, FeaturePart] = {}
    if media_type == MediaType.AUDIO:
        parts["visual"] = FeaturePart(state=FeatureStatus.NA, reason="audio has no pictures")
    elif not clip_configured:
        parts["visual"] = FeaturePart(state=FeatureStatus.NA, reason="no CLIP model configured")
    elif visual_vectors:
        parts["visual"] = FeaturePart(state=FeatureStatus.COMPLETED)
    else:
        parts["visual"] = FeaturePart(state=FeatureStatus.NA, reason="no frame could be decoded")
    if text_vectors:
        parts["transcription"] = FeaturePart(state=FeatureStatus.COMPLETED)
    else:
        parts["transcription"] = FeaturePart(state=FeatureStatus.NA, reason="no speech to embed")
    if any(p.state == FeatureStatus.COMPLETED for p in parts.values()):
        missing = [f"{m}: {p.reason}" for m, p in parts.items() if p.state != FeatureStatus.COMPLETED]
        return FeatureState(state=FeatureStatus.COMPLETED, reason="; ".join(missing) or None, parts=parts)
    main = "transcription" if media_type == MediaType.AUDIO else "visual"
    return FeatureState(state=FeatureStatus.NA, reason=parts[main].reason, parts=parts)


def run(ctx: StepContext) -> StepResult:
    asset = ctx.asset
    media_type = _media_type(asset)

    visual_segs, derivatives = _visual_segments(ctx, media_type)
    segs = visual_segs + _speech_segments(load_transcript(ctx), visual_segs)

    clip = ctx.models.clip() if media_type != MediaType.AUDIO else None
    visual: dict[int, tuple[str, np.ndarray]] = {}
    with_frames = [i for i, s in enumerate(segs) if s.keyframe is not None]
    if clip is not None and with_frames:
        frames = [f for i in with_frames if (f := segs[i].keyframe) is not None]
        vecs = clip.encode_images(frames)
        visual = {i: (clip.model_id, vecs[n]) for n, i in enumerate(with_frames)}

    textual: dict[int, tuple[str, np.ndarray]] = {}
    with_text = [i for i, s in enumerate(segs) if s.text]
    if with_text:
        encoder = ctx.models.text_encoder()
        vecs = encoder.encode([segs[i].text for i in with_text])
        textual = {i: (encoder.model_id, vecs[n]) for n, i in enumerate(with_text)}

    segments: list[Segment] = []
    docs: list[SearchDoc] = []
    search_index_id = ctx.search_index_id or asset.index_id
    for i, s in enumerate(segs):
        seg_id = new_id("seg")
        segments.append(
            Segment(
                id=seg_id, asset_id=asset.id, start=s.start, end=s.end, kind=s.kind, text=s.text or None,
                keyframe_key=s.keyframe_key,
            )
        )  # fmt: skip
        vectors: dict[str, tuple[str, list[float]]] = {}
        if i in visual:
            vectors["visual"] = (visual[i][0], visual[i][1].astype(float).tolist())
        if i in textual:
            vectors["transcription"] = (textual[i][0], textual[i][1].astype(float).tolist())
        if not vectors:
            continue
        docs.append(
            SearchDoc(
                segment_id=seg_id, tenant_id=asset.tenant_id, index_id=search_index_id, asset_id=asset.id,
                media_type=media_type.value, start=s.start, end=s.end, text=s.text or None,
                keyframe_key=s.keyframe_key, user_metadata=dict(asset.user_metadata), vectors=vectors,
            )
        )  # fmt: skip

    state = _embedding_state(
        media_type, clip_configured=clip is not None, visual_vectors=len(visual), text_vectors=len(textual)
    )
    return StepResult(
        feature_states={Feature.EMBEDDING: state},
        derivatives=derivatives,
        # Keyframes the render step stored stay as they are; those made here replace any others.
        replaced_kinds=["keyframe"] if derivatives else [],
        segments=segments,
        search_docs=docs,
    )
