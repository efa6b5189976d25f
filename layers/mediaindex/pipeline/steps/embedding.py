"""embedding: the asset's canonical time segments, one keyframe per visual segment, and their vectors.

Video is cut at shot changes (ffmpeg's scene score), long shots split so no segment passes
MAX_SEGMENT_S; an image is one segment; audio is cut into fixed windows. Each visual segment gets
a CLIP vector of its keyframe (when a CLIP model is configured) and a text vector of the words
spoken inside it. Finer `speech` segments follow the transcript's phrases, so a transcript hit
lands within a second of the spoken words."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mediaindex.domain.blob_keys import derived_key
from mediaindex.domain.ids import new_id
from mediaindex.domain.models import (
    Asset,
    Derivative,
    Feature,
    FeatureState,
    FeatureStatus,
    MediaType,
    Segment,
)
from mediaindex.domain.transcripts import Transcript, Word
from mediaindex.media import ffmpeg
from mediaindex.media.probe import media_duration
from mediaindex.pipeline.context import StepContext, StepResult
from mediaindex.pipeline.steps.transcription import transcript_key
from mediaindex.ports.search import SearchDoc

MAX_SEGMENT_S = 10.0
MIN_SHOT_S = 0.5  # cuts closer than this to another boundary are flashes, not shots
SCENE_THRESHOLD = 0.3
MAX_PHRASE_S = 5.0  # speech segments are transcript phrases cut to at most this long
KEYFRAME_MAX_WIDTH = 640
_PTS_TIME = re.compile(r"pts_time:\s*([0-9]+(?:\.[0-9]+)?)")


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
    """Times of hard cuts, or None when scene detection could not run. Frames are scaled down first:
    the scene score only needs coarse content and decoding dominates anyway. The score is taken in
    RGB: on YUV input ffmpeg scores luma alone and misses cuts between colours of equal brightness."""
    vf = f"scale=160:-2,format=rgb24,select='gt(scene,{threshold})',showinfo"
    args = ["-i", str(path), "-an", "-sn", "-vf", vf, "-f", "null", "-"]
    # Decodes the whole video: capped at the media limit (MediaError `media_too_large` past it).
    out = ffmpeg.run_ffmpeg(
        args, timeout_s=timeout_s, loglevel="info", check=False, max_duration_s=max_duration_s
    )
    if out.returncode != 0:
        return None
    return [
        float(m.group(1))
        for line in out.stderr.splitlines()
        if "Parsed_showinfo" in line
        for m in [_PTS_TIME.search(line)]
        if m
    ]


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
    vf = f"scale='min({KEYFRAME_MAX_WIDTH},iw)':-2"
    for t in (at_s, 0.0):  # seeking near the end of a stream can find no frame; the start always has one
        args = ["-ss", f"{t:.3f}", "-i", str(src), "-frames:v", "1", "-vf", vf, "-q:v", "3", str(dest)]
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


def _words(t: Transcript) -> list[Word]:
    out: list[Word] = []
    for seg in t.segments:
        # A segment without word times counts as one "word" spanning it.
        out += seg.words or [Word(start=seg.start, end=seg.end, word=seg.text)]
    return out


def text_between(words: list[Word], start: float, end: float, *, last: bool = False) -> str:
    """Words whose midpoint falls in [start, end) ([start, end] for the last segment)."""
    picked = []
    for w in words:
        mid = (w.start + w.end) / 2
        if start <= mid < end or (last and mid >= start):
            picked.append(w.word)
    return " ".join(picked).strip()


def speech_phrases(t: Transcript, *, max_len: float = MAX_PHRASE_S) -> list[tuple[float, float, str]]:
    """Transcript segments cut at word boundaries into phrases of at most max_len seconds."""
    out: list[tuple[float, float, str]] = []
    for seg in t.segments:
        if not seg.words:
            if seg.text.strip():
                out.append((seg.start, seg.end, seg.text.strip()))
            continue
        cur: list[Word] = []
        for w in seg.words:
            if cur and w.end - cur[0].start > max_len:
                out.append((cur[0].start, cur[-1].end, " ".join(x.word for x in cur)))
                cur = []
            cur.append(w)
        if cur:
            out.append((cur[0].start, cur[-1].end, " ".join(x.word for x in cur)))
    return [(s, e, txt.strip()) for s, e, txt in out if txt.strip()]


def _media_type(asset: Asset) -> MediaType:
    if asset.media_type is not None:
        return asset.media_type
    if asset.facts is not None and not asset.facts.has_video and asset.facts.has_audio:
        return MediaType.AUDIO
    return MediaType.VIDEO


def _visual_segments(ctx: StepContext, media_type: MediaType, src: Path) -> list[_Seg]:
    timeout = ctx.settings.job_timeout_s
    if media_type == MediaType.IMAGE:
        return [_Seg(0.0, 0.0, "image")]
    duration = ctx.asset.duration_s or media_duration(src)
    if media_type == MediaType.AUDIO:
        return [_Seg(s, e, "window") for s, e in plan_segments([], duration)]
    cuts = detect_cuts(src, timeout_s=timeout, max_duration_s=ctx.settings.max_duration_s)
    kind = "shot" if cuts is not None else "window"
    return [_Seg(s, e, kind) for s, e in plan_segments(cuts or [], duration)]


def _store_keyframes(
    ctx: StepContext, segs: list[_Seg], src: Path, media_type: MediaType
) -> list[Derivative]:
    asset = ctx.asset
    ctx.blobs.delete_prefix(derived_key(asset.tenant_id, asset.id, "keyframes/"))  # a re-run leaves one set
    derivatives: list[Derivative] = []
    for i, seg in enumerate(segs):
        dest = ctx.workdir / f"keyframe-{i:05d}.jpg"
        at = 0.0 if media_type == MediaType.IMAGE else (seg.start + seg.end) / 2
        if not extract_keyframe(src, at, dest):
            continue
        key = derived_key(asset.tenant_id, asset.id, f"keyframes/{i:05d}.jpg")
        info = ctx.blobs.put_file(key, dest, "image/jpeg")
        seg.keyframe, seg.keyframe_key = dest, key
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


def run(ctx: StepContext) -> StepResult:
    asset = ctx.asset
    media_type = _media_type(asset)
    src = ctx.original_path()

    segs = _visual_segments(ctx, media_type, src)
    derivatives: list[Derivative] = []
    if media_type != MediaType.AUDIO:
        derivatives = _store_keyframes(ctx, segs, src, media_type)

    transcript = load_transcript(ctx)
    if transcript is not None and transcript.segments:
        words = _words(transcript)
        for i, seg in enumerate(segs):
            seg.text = text_between(words, seg.start, seg.end, last=i == len(segs) - 1)
        for start, end, text in speech_phrases(transcript):
            # The thumbnail of a speech hit is the keyframe of the shot it starts in.
            host = next((v for v in segs if v.start <= start < v.end), segs[-1])
            segs.append(_Seg(start, end, "speech", text=text, keyframe_key=host.keyframe_key))

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
                segment_id=seg_id, tenant_id=asset.tenant_id, index_id=asset.index_id, asset_id=asset.id,
                media_type=media_type.value, start=s.start, end=s.end, text=s.text or None,
                keyframe_key=s.keyframe_key, user_metadata=dict(asset.user_metadata), vectors=vectors,
            )
        )  # fmt: skip

    states: dict[Feature, FeatureState] = {}
    if not docs:
        if media_type == MediaType.AUDIO:
            reason = "no speech to embed"
        elif clip is None:
            reason = "no CLIP model configured"
        else:
            reason = "no frame could be decoded"
        states[Feature.EMBEDDING] = FeatureState(state=FeatureStatus.NA, reason=reason)
    return StepResult(
        feature_states=states,
        derivatives=derivatives,
        replaced_kinds=["keyframe"],
        segments=segments,
        search_docs=docs,
    )
