"""A video's visual segments and their keyframes, planned once from a decode's cuts and keyframe
candidates (media/shots.py) and stored: the keyframes as `keyframe` derivatives, the plan as a
small JSON object beside them (`shots.json`, a `visual_plan` derivative; neither is served).

The render step plans them in its one decode of the original; the embedding step (on the GPU
image) then reads the plan and, with a CLIP model, the keyframes: a few kilobytes instead of the
whole original downloaded and decoded again. Media rendered before plans were kept has none: the
embedding step scans the original itself, as it always did."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from mediaindex.domain.blob_keys import KeyOwner, derived_key
from mediaindex.domain.errors import NotFoundError
from mediaindex.domain.models import Derivative
from mediaindex.media import ffmpeg, shots
from mediaindex.ports.blobs import BlobStore

PLAN_NAME = "shots.json"
PLAN_KIND = "visual_plan"
KEYFRAMES = "keyframes/"
MAX_SEGMENT_S = 10.0
MIN_SHOT_S = 0.5  # cuts closer than this to another boundary are flashes, not shots


@dataclass
class VisualSegment:
    start: float
    end: float
    keyframe: Path | None = None  # on this machine
    keyframe_key: str | None = None  # in blob storage


class StoredSegment(BaseModel):
    start: float
    end: float
    # Its keyframe's name in the asset's derived folder, not its key: keys name the tenant and the
    # key layout, and a plan must still point at its keyframes after `mediaindex import` moves the
    # asset to another tenant.
    keyframe: str | None = None


class VisualPlan(BaseModel):
    """What `shots.json` holds. `kind` is `shot` when the cuts are known, else `window`."""

    version: Literal[1] = 1
    kind: Literal["shot", "window"]
    duration_s: float
    segments: list[StoredSegment]

    def planned(self, owner: KeyOwner) -> list[VisualSegment]:
        """The segments with their keyframes' keys for `owner` (none downloaded yet)."""
        return [
            VisualSegment(s.start, s.end, keyframe_key=derived_key(owner, s.keyframe) if s.keyframe else None)
            for s in self.segments
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
    """One frame at `at_s` by a seek of its own: for images, and for a segment the scan kept no
    candidate for."""
    for t in (at_s, 0.0):  # seeking near the end of a stream can find no frame; the start always has one
        args = ["-ss", f"{t:.3f}", "-i", str(src), "-frames:v", "1", "-vf", shots.keyframe_scale()]
        args += ["-q:v", "3", str(dest)]
        ok = ffmpeg.run_ffmpeg(args, timeout_s=timeout_s, check=False).returncode == 0
        if ok and dest.is_file() and dest.stat().st_size > 0:
            return True
    return False


def segments_from_scan(found: shots.ShotScan, duration: float) -> tuple[str, list[VisualSegment]]:
    """The segments at the scan's cuts (fixed windows when it found none), each holding the
    candidate nearest its middle."""
    kind = "shot" if found.cuts is not None else "window"
    segs = [VisualSegment(s, e) for s, e in plan_segments(found.cuts or [], duration)]
    for seg in segs:
        if (pick := shots.nearest(found.candidates, seg.start, seg.end)) is not None:
            seg.keyframe = pick.path
    return kind, segs


def store_keyframes(
    owner: KeyOwner, blobs: BlobStore, segs: list[VisualSegment], src: Path, workdir: Path
) -> list[Derivative]:
    """Stores each segment's keyframe (its candidate, else a frame seeked for it from `src`) as
    the asset's one set of keyframes."""
    blobs.delete_prefix(derived_key(owner, KEYFRAMES))  # a re-run leaves one set
    derivatives: list[Derivative] = []
    for i, seg in enumerate(segs):
        frame = seg.keyframe
        if frame is None:
            frame = workdir / f"keyframe-{i:05d}.jpg"
            if not extract_keyframe(src, (seg.start + seg.end) / 2, frame):
                continue
        key = derived_key(owner, f"{KEYFRAMES}{i:05d}.jpg")
        info = blobs.put_file(key, frame, "image/jpeg")
        seg.keyframe, seg.keyframe_key = frame, key
        derivatives.append(
            Derivative(
                asset_id=owner.id,
                kind="keyframe",
                key=key,
                content_type="image/jpeg",
                size_bytes=info.size,
                index=i,
            )
        )
    return derivatives


def save(
    owner: KeyOwner, blobs: BlobStore, kind: str, duration: float, segs: list[VisualSegment]
) -> Derivative:
    folder = derived_key(owner, "")
    stored = [
        StoredSegment(
            start=s.start, end=s.end, keyframe=s.keyframe_key.removeprefix(folder) if s.keyframe_key else None
        )
        for s in segs
    ]
    plan = VisualPlan(kind="shot" if kind == "shot" else "window", duration_s=duration, segments=stored)
    info = blobs.put_bytes(derived_key(owner, PLAN_NAME), plan.model_dump_json().encode(), "application/json")
    return Derivative(
        asset_id=owner.id, kind=PLAN_KIND, key=info.key, content_type="application/json", size_bytes=info.size
    )


def load(owner: KeyOwner, blobs: BlobStore) -> VisualPlan | None:
    """The stored plan, or None when there is none (or one this release cannot read)."""
    try:
        raw = blobs.get_bytes(derived_key(owner, PLAN_NAME))
    except NotFoundError:
        return None
    try:
        return VisualPlan.model_validate_json(raw)
    except ValidationError:
        return None


def fetch_keyframes(blobs: BlobStore, segs: list[VisualSegment], workdir: Path) -> None:
    """Downloads the stored keyframes of `segs` into `workdir` (for the image encoder)."""
    for i, seg in enumerate(segs):
        if seg.keyframe_key is None or seg.keyframe is not None:
            continue
        dest = workdir / f"keyframe-{i:05d}.jpg"
        try:
            blobs.download_file(seg.keyframe_key, dest)
        except NotFoundError:
            continue  # deleted meanwhile: the segment is searched by its speech alone
        seg.keyframe = dest
