"""The proxy, one product of the render step's decode: a small file every browser plays. Video ->
H.264/AAC MP4 (at most 720p), audio -> AAC in M4A, image -> WebP (JPEG where this ffmpeg has no
libwebp)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mediaindex.domain.models import Asset, Derivative, MediaType
from mediaindex.media import ffmpeg, probe
from mediaindex.media.probe import ProbeFacts

VIDEO_BOX = (1280, 720)  # landscape; portrait gets (720, 1280)
IMAGE_MAX_SIDE = 2048
MAX_FPS = 60.0
DEFAULT_FPS = 30.0
AUDIO_BITRATE = "128k"
# Output ceilings per second of the duration limit, far above what these encodes make (720p CRF 23
# rarely passes 5 Mbit/s; AAC is 128 kbit/s): `-fs` stops a file that decodes longer than it said.
VIDEO_BYTES_PER_S = 4 * 1024 * 1024
AUDIO_BYTES_PER_S = 64 * 1024


@dataclass(frozen=True)
class ProxyPlan:
    """Its part of the render run (filter chains reading the input's streams, and the output
    arguments that end in the file), and what that produces."""

    graph: str
    outputs: list[str]
    output: Path
    content_type: str
    width: int | None
    height: int | None


def _video_plan(out_dir: Path, pf: ProbeFacts) -> ProxyPlan:
    w, h = pf.width or 2, pf.height or 2
    box_w, box_h = VIDEO_BOX if w >= h else VIDEO_BOX[::-1]
    out_w, out_h = probe.fit_within(w, h, box_w, box_h, even=True)
    fps = pf.facts.fps if pf.facts.fps and pf.facts.fps > 0 else DEFAULT_FPS
    fps = min(fps, MAX_FPS)
    out = out_dir / "proxy.mp4"
    # ffmpeg autorotates before the filters, so the box applies to the display size. yuv420p makes
    # 10-bit and 4:2:2/4:4:4 sources 8-bit 4:2:0, the only H.264 flavour every browser decodes.
    # A constant frame rate (-fps_mode cfr) keeps variable-rate phone footage in sync and seekable.
    graph = f"[0:V:0]scale={out_w}:{out_h}:flags=bicubic,setsar=1,format=yuv420p[proxy]"
    args = [
        "-map", "[proxy]",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-profile:v", "high", "-g", str(max(1, round(fps * 2))),
        *ffmpeg.cfr_args(), "-r", f"{fps:g}",
    ]  # fmt: skip
    if pf.facts.has_audio:
        args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ac", "2"]
    else:
        args += ["-an"]
    args += ["-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1", "-movflags", "+faststart", str(out)]
    return ProxyPlan(graph, args, out, "video/mp4", out_w, out_h)


def _audio_plan(out_dir: Path) -> ProxyPlan:
    out = out_dir / "proxy.m4a"
    args = [
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ac", "2",
        "-map_metadata", "-1", "-movflags", "+faststart", str(out),
    ]  # fmt: skip
    return ProxyPlan("", args, out, "audio/mp4", None, None)


def _image_plan(out_dir: Path, pf: ProbeFacts) -> ProxyPlan:
    w, h = probe.fit_within(pf.width or 1, pf.height or 1, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE)
    graph = f"[0:V:0]scale={w}:{h}:flags=lanczos[proxy]"
    args = ["-map", "[proxy]", "-frames:v", "1"]
    if ffmpeg.has_encoder("libwebp"):
        out = out_dir / "proxy.webp"
        return ProxyPlan(
            graph, [*args, "-c:v", "libwebp", "-quality", "80", str(out)], out, "image/webp", w, h
        )
    out = out_dir / "proxy.jpg"
    args += ["-c:v", "mjpeg", "-q:v", "3", "-update", "1", str(out)]
    return ProxyPlan(graph, args, out, "image/jpeg", w, h)


def plan(out_dir: Path, pf: ProbeFacts) -> ProxyPlan:
    if pf.media_type == MediaType.VIDEO:
        return _video_plan(out_dir, pf)
    if pf.media_type == MediaType.AUDIO:
        return _audio_plan(out_dir)
    return _image_plan(out_dir, pf)


def output_cap(pf: ProbeFacts, max_duration_s: float) -> int | None:
    """The most bytes the proxy may reach (`-fs`): None for an image."""
    if pf.media_type == MediaType.IMAGE:
        return None
    per_s = VIDEO_BYTES_PER_S if pf.media_type == MediaType.VIDEO else AUDIO_BYTES_PER_S
    return int((max_duration_s + ffmpeg.DECODE_MARGIN_S + 1) * per_s)


def derivative(asset: Asset, p: ProxyPlan, key: str, size: int, *, timed: bool) -> Derivative:
    # The encoder's own numbers, not the plan's: cfr and AAC priming move the duration a little.
    duration = probe.describe(p.output).duration_s if timed else None
    return Derivative(
        asset_id=asset.id,
        kind="proxy",
        key=key,
        content_type=p.content_type,
        size_bytes=size,
        width=p.width,
        height=p.height,
        duration_s=duration,
    )
