"""The previews, products of the render step's decode: a poster, evenly spaced thumbnails, and for
video a storyboard sprite sheet with its WebVTT (the scrubbing preview players read)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mediaindex.domain.blob_keys import derived_key
from mediaindex.domain.errors import MediaError
from mediaindex.domain.models import Asset, Derivative, MediaType
from mediaindex.media import probe
from mediaindex.media.probe import ProbeFacts
from mediaindex.ports.blobs import BlobStore

POSTER_BOX = (1280, 720)  # landscape; portrait gets (720, 1280)
POSTER_AT = 0.10  # of the duration: past fades from black and title cards
THUMB_WIDTH = 320
THUMB_COUNT = 10
TILE_W, TILE_H = 160, 90
SPRITE_COLS = 10
MAX_TILES = 100  # one sheet; longer media get a longer interval
WAVE_SIZE = (1280, 240)
# Beyond this, the storyboard and thumbnails come from keyframes only: decoding every frame of a
# long video would take longer than the rest of the pipeline.
KEYFRAMES_ONLY_AFTER_S = 600.0

REPLACED_KINDS = ["poster", "thumbnail", "storyboard", "storyboard_vtt"]
JPEG = "image/jpeg"


@dataclass(frozen=True)
class Output:
    kind: str
    path: Path
    width: int
    height: int
    index: int = 0


@dataclass(frozen=True)
class Storyboard:
    interval_s: float
    tiles: int
    cols: int
    rows: int
    duration_s: float


@dataclass(frozen=True)
class PreviewPlan:
    graph: str  # filter chains reading the input's streams, labels prefixed `pv_`
    args: list[str]  # the output arguments
    outputs: list[Output]  # what the run should write; thumbnails may come out fewer
    storyboard: Storyboard | None = None
    thumb_pattern: Path | None = None
    thumb_size: tuple[int, int] = (0, 0)
    # Pictures from keyframes alone are enough (`-skip_frame nokey`), where nothing else in the run
    # needs every frame.
    keyframes_only: bool = False


def _landscape_box(w: int, h: int, box: tuple[int, int]) -> tuple[int, int]:
    return box if w >= h else (box[1], box[0])


def _video_plan(out: Path, pf: ProbeFacts) -> PreviewPlan:
    w, h = pf.width or 2, pf.height or 2
    duration = max(pf.duration_s or 0.0, 0.04)
    fps = pf.facts.fps or 25.0
    pw, ph = probe.fit_within(w, h, *_landscape_box(w, h, POSTER_BOX), even=True)
    tw, th = probe.fit_within(w, h, THUMB_WIDTH, 10 * THUMB_WIDTH, even=True)
    n_thumbs = max(1, min(THUMB_COUNT, int(duration * fps)))
    interval = max(1.0, math.ceil(duration / MAX_TILES))
    tiles = max(1, math.ceil(duration / interval))
    cols = min(SPRITE_COLS, tiles)
    rows = math.ceil(tiles / cols)
    poster_at = min(duration * POSTER_AT, max(0.0, duration - 1.0 / fps))

    # Frames are taken from the middle of each slot (start_time), never the black first frame.
    graph = ";".join(
        [
            # One frame through the scaler: without the trim every frame after the poster's is converted.
            f"[0:V:0]select='gte(t\\,{poster_at:.3f})',trim=end_frame=1,scale={pw}:{ph},setsar=1[pv_poster]",
            f"[0:V:0]fps=fps={n_thumbs}/{duration:.3f}:start_time={duration / (2 * n_thumbs):.3f},"
            f"scale={tw}:{th},setsar=1[pv_thumbs]",
            f"[0:V:0]fps=fps=1/{interval:g}:start_time={interval / 2:g},"
            f"scale={TILE_W}:{TILE_H}:force_original_aspect_ratio=decrease,"
            f"pad={TILE_W}:{TILE_H}:(ow-iw)/2:(oh-ih)/2,setsar=1,tile={cols}x{rows}[pv_sprite]",
        ]
    )
    pattern = out / "thumb_%03d.jpg"
    args = [
        "-map", "[pv_poster]", "-frames:v", "1", "-q:v", "3", "-update", "1", str(out / "poster.jpg"),
        "-map", "[pv_thumbs]", "-frames:v", str(n_thumbs), "-q:v", "4", "-start_number", "0", str(pattern),
        "-map", "[pv_sprite]", "-frames:v", "1", "-q:v", "5", "-update", "1", str(out / "storyboard.jpg"),
    ]  # fmt: skip
    outputs = [
        Output("poster", out / "poster.jpg", pw, ph),
        Output("storyboard", out / "storyboard.jpg", cols * TILE_W, rows * TILE_H),
    ]
    board = Storyboard(interval, tiles, cols, rows, duration)
    return PreviewPlan(
        graph, args, outputs, board, pattern, (tw, th), keyframes_only=duration > KEYFRAMES_ONLY_AFTER_S
    )


def _image_plan(out: Path, pf: ProbeFacts) -> PreviewPlan:
    w, h = pf.width or 1, pf.height or 1
    pw, ph = probe.fit_within(w, h, *_landscape_box(w, h, POSTER_BOX))
    tw, th = probe.fit_within(w, h, THUMB_WIDTH, 10 * THUMB_WIDTH)
    graph = f"[0:V:0]scale={pw}:{ph}[pv_poster];[0:V:0]scale={tw}:{th}[pv_thumb]"
    args = [
        "-map", "[pv_poster]", "-frames:v", "1", "-q:v", "3", "-update", "1", str(out / "poster.jpg"),
        "-map", "[pv_thumb]", "-frames:v", "1", "-q:v", "4", "-update", "1", str(out / "thumb_000.jpg"),
    ]  # fmt: skip
    return PreviewPlan(
        graph,
        args,
        [Output("poster", out / "poster.jpg", pw, ph), Output("thumbnail", out / "thumb_000.jpg", tw, th)],
    )


def _audio_plan(out: Path) -> PreviewPlan:
    ww, wh = WAVE_SIZE
    tw, th = THUMB_WIDTH, round(THUMB_WIDTH * wh / ww)
    graph = (
        f"[0:a:0]aformat=channel_layouts=mono,showwavespic=s={ww}x{wh}:colors=0x4f8cff,"
        f"format=yuvj420p,split=2[pv_poster][pv_t];[pv_t]scale={tw}:{th}[pv_thumb]"
    )
    args = [
        "-map", "[pv_poster]", "-frames:v", "1", "-q:v", "3", "-update", "1", str(out / "poster.jpg"),
        "-map", "[pv_thumb]", "-frames:v", "1", "-q:v", "4", "-update", "1", str(out / "thumb_000.jpg"),
    ]  # fmt: skip
    return PreviewPlan(
        graph,
        args,
        [Output("poster", out / "poster.jpg", ww, wh), Output("thumbnail", out / "thumb_000.jpg", tw, th)],
    )


def plan(out_dir: Path, pf: ProbeFacts) -> PreviewPlan:
    if pf.media_type == MediaType.VIDEO:
        return _video_plan(out_dir, pf)
    if pf.media_type == MediaType.AUDIO:
        return _audio_plan(out_dir)
    return _image_plan(out_dir, pf)


def _timestamp(t: float) -> str:
    ms = round(t * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def storyboard_vtt(board: Storyboard, sprite_name: str) -> str:
    """One cue per interval pointing into the sprite (`name#xywh=x,y,w,h`), covering the duration.
    The sprite is named relative to the VTT: both sit in the asset's derived folder."""
    lines = ["WEBVTT", ""]
    for i in range(board.tiles):
        start = i * board.interval_s
        end = min((i + 1) * board.interval_s, board.duration_s)
        if end <= start:
            break
        x, y = (i % board.cols) * TILE_W, (i // board.cols) * TILE_H
        cue = f"{sprite_name}#xywh={x},{y},{TILE_W},{TILE_H}"
        lines += [f"{_timestamp(start)} --> {_timestamp(end)}", cue, ""]
    return "\n".join(lines)


def produced(p: PreviewPlan) -> list[Output]:
    """What the run actually wrote: the planned files, and the thumbnails in order."""
    outs = [o for o in p.outputs if o.path.exists()]
    if p.thumb_pattern is not None:
        tw, th = p.thumb_size
        thumbs = sorted(p.thumb_pattern.parent.glob("thumb_*.jpg"))
        outs += [Output("thumbnail", t, tw, th, index=i) for i, t in enumerate(thumbs)]
    return outs


def store(asset: Asset, blobs: BlobStore, p: PreviewPlan) -> list[Derivative]:
    """Stores what the run wrote (and the storyboard's VTT): the previews' derivatives."""
    outs = produced(p)
    if not any(o.kind == "poster" for o in outs):
        raise MediaError("ffmpeg wrote no poster: no frame could be decoded", code="media_corrupt")
    if p.storyboard is not None and any(o.kind == "storyboard" for o in outs):
        vtt = next(o.path for o in outs if o.kind == "storyboard").with_name("storyboard.vtt")
        vtt.write_text(storyboard_vtt(p.storyboard, "storyboard.jpg"), encoding="utf-8")
        outs.append(Output("storyboard_vtt", vtt, 0, 0))

    board_s = p.storyboard.duration_s if p.storyboard else None
    derivatives = []
    for o in outs:
        content_type = "text/vtt" if o.kind == "storyboard_vtt" else JPEG
        key = derived_key(asset, o.path.name)
        info = blobs.put_file(key, o.path, content_type)
        derivatives.append(
            Derivative(
                asset_id=asset.id,
                kind=o.kind,
                key=key,
                content_type=content_type,
                size_bytes=info.size,
                width=o.width or None,
                height=o.height or None,
                duration_s=board_s if o.kind.startswith("storyboard") else None,
                index=o.index,
            )
        )
    return derivatives
