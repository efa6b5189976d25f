"""embedding: the asset's canonical time segments, one keyframe per visual segment, and their vectors.

Two kinds of segment, each searched by its own modality, so no text is indexed twice:
- visual: video is cut at shot changes (ffmpeg's scene score), long shots split so none passes
  MAX_SEGMENT_S, an image is one segment; each gets a keyframe and, when a CLIP model is configured,
  its CLIP vector. They carry no transcript text.
- speech: the transcript's sentences (mediaindex.pipeline.sentences), each with its text and a text
  vector, so a transcript hit answers with the sentence that was spoken, start to end. Audio has
  only these.

The embedding feature reports each part (`visual`, `transcription`) with its own state, so a video
indexed without a CLIP model says so instead of claiming a visual index it does not have."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mediaindex.domain.blob_keys import derived_key
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
from mediaindex.media import ffmpeg, shots
from mediaindex.media.probe import media_duration
from mediaindex.pipeline.context import StepContext, StepResult
from mediaindex.pipeline.sentences import sentences
from mediaindex.pipeline.steps.transcription import transcript_key
from mediaindex.ports.search import SearchDoc

MAX_SEGMENT_S = 10.0
MIN_SHOT_S = 0.5  # cuts closer than this to another boundary are flashes, not shots
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
    step takes them from the one-pass scan that also keeps the keyframes)."""
    return shots.detect_cuts(path, threshold=threshold, timeout_s=timeout_s, max_duration_s=max_duration_s)


def plan_segments(
    cuts: list[float], duration: float, *, max_len: float = MAX_SEGMENT_S
) -> list[tuple[float, float]]:
    """Boundaries at the cuts, then any piece longer than max_len split into equal parts."""
    if duration <= 0:
        return [(0.0, 0.0)]
    bounds = [0.0]
    for c in sorted(cuts):
        if c - bounds[-1] >= MIN_SHOT_S and duration - c >= MIN_SHOT_S:
            bounds.append(c)
    bounds.append(duration)
    out: list[tuple[float, float]] = []
    for s, e in itertools.pairwise(bounds):
        n = max(1, math.ceil((e - s) / max_len - 1e-9))
        step = (e - s) / n
        out += [(round(s + i * step, 3), round(s + (i + 1) * step if i < n - 1 else e, 3)) for i in range(n)]
    return out


def extract_keyframe(src: Path, at_s: float, dest: Path, timeout_s: float = 120) -> bool:
    """One frame at `at_s` by a seek of its own: for images, and for a video whose one-pass scan
    kept no candidate."""
    for t in (at_s, 0.0):  # seeking near the end of a stream can find no frame; the start always has one
        args = ["-ss", f"{t:.3f}", "-i", str(src), "-frames:v", "1", "-vf", shots.keyframe_scale()]
        args += ["-q:v", "3", str(dest)]
        ok = ffmpeg.run_ffmpeg(args, timeout_s=timeout_s, check=False).returncode == 0
        if ok and dest.is_file() and dest.stat().st_size > 0:
            return True
    return False


def load_transcript(ctx: StepContext) -> Transcript | None:
    """The transcript the transcription step stored, if any (a re-run of embedding reuses it)."""
    key = transcript_key(ctx.asset.tenant_id, ctx.asset.id)
    if ctx.blobs.head(key) is None:
        return None
    return Transcript.model_validate_json(ctx.blobs.get_bytes(key))


def _media_type(asset: Asset) -> MediaType:
    if asset.media_type is not None:
        return asset.media_type
    if asset.facts is not None and not asset.facts.has_video and asset.facts.has_audio:
        return MediaType.AUDIO
    return MediaType.VIDEO


def _visual_segments(ctx: StepContext, media_type: MediaType, src: Path) -> list[_Seg]:
    """Segments at the shot changes, each holding the keyframe candidate nearest its middle: cuts
    and candidates come from one decode (`shots.scan`)."""
    timeout = ctx.settings.job_timeout_s
    if media_type == MediaType.IMAGE:
        return [_Seg(0.0, 0.0, "image")]
    if media_type == MediaType.AUDIO:
        return []
    duration = ctx.asset.duration_s or media_duration(src)
    found = shots.scan(
        src,
        ctx.workdir / "candidates",
        duration_s=duration,
        timeout_s=timeout,
        max_duration_s=ctx.settings.max_duration_s,
    )
    kind = "shot" if found.cuts is not None else "window"
    segs = [_Seg(s, e, kind) for s, e in plan_segments(found.cuts or [], duration)]
    for seg in segs:
        if (pick := shots.nearest(found.candidates, seg.start, seg.end)) is not None:
            seg.keyframe = pick.path
    return segs


def _store_keyframes(
    ctx: StepContext, segs: list[_Seg], src: Path, media_type: MediaType
) -> list[Derivative]:
    """Stores each segment's keyframe: the scan's candidate, else one frame seeked for it."""
    asset = ctx.asset
    ctx.blobs.delete_prefix(derived_key(asset.tenant_id, asset.id, "keyframes/"))  # a re-run leaves one set
    derivatives: list[Derivative] = []
    for i, seg in enumerate(segs):
        frame = seg.keyframe
        if frame is None:
            frame = ctx.workdir / f"keyframe-{i:05d}.jpg"
            at = 0.0 if media_type == MediaType.IMAGE else (seg.start + seg.end) / 2
            if not extract_keyframe(src, at, frame):
                continue
        key = derived_key(asset.tenant_id, asset.id, f"keyframes/{i:05d}.jpg")
        info = ctx.blobs.put_file(key, frame, "image/jpeg")
        seg.keyframe, seg.keyframe_key = frame, key
        derivatives.append(
            Derivative(
                asset_id=asset.id,
                kind="keyframe",
                key=key,
                content_type="image/jpeg",
                size_bytes=info.size,
                index=i,
            )
        )
    return derivatives


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
    src = ctx.original_path()

    visual_segs = _visual_segments(ctx, media_type, src)
    derivatives: list[Derivative] = []
    if visual_segs:
        derivatives = _store_keyframes(ctx, visual_segs, src, media_type)
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
        replaced_kinds=["keyframe"],
        segments=segments,
        search_docs=docs,
    )
