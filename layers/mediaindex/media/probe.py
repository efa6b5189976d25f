"""What a media file is: path -> facts. Pure over the file (no storage, no metadata store), so the
probe step, the other media steps and tests all share it. Every tool run goes through media.ffmpeg."""

from __future__ import annotations

import dataclasses
import math
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediaindex.domain.errors import MediaError
from mediaindex.domain.models import Asset, MediaFacts, MediaType
from mediaindex.media import ffmpeg

# Codecs that hold still pictures. A single frame of one of these is an image, not a video.
IMAGE_CODECS = frozenset(
    {
        "png", "mjpeg", "jpegls", "webp", "bmp", "tiff", "gif", "jpeg2000", "jpegxl", "qoi", "pam", "ppm",
        "pgm", "pgmyuv", "pbm", "targa", "dpx", "exr", "sgi", "pcx", "xbm", "xwd", "sunrast", "photocd",
        "psd", "hdr", "ljpeg", "apng",
    }
)  # fmt: skip
# Demuxers that only ever read still images.
IMAGE_FORMATS = frozenset({"image2", "gif"})
# "Video" that is really text (ffmpeg's tty demuxer renders ANSI art): not media we index.
NOT_MEDIA_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})

_CONTENT_TYPES: tuple[tuple[str, MediaType | None, str], ...] = (
    ("mov,mp4", MediaType.AUDIO, "audio/mp4"),
    ("mov,mp4", None, "video/mp4"),
    ("matroska,webm", MediaType.AUDIO, "audio/webm"),
    ("matroska,webm", None, "video/webm"),
    ("mp3", None, "audio/mpeg"),
    ("wav", None, "audio/wav"),
    ("flac", None, "audio/flac"),
    ("ogg", MediaType.VIDEO, "video/ogg"),
    ("ogg", None, "audio/ogg"),
    ("aac", None, "audio/aac"),
    ("avi", None, "video/x-msvideo"),
    ("mpegts", None, "video/mp2t"),
    ("png_pipe", None, "image/png"),
    ("jpeg_pipe", None, "image/jpeg"),
    ("webp_pipe", None, "image/webp"),
    ("gif", None, "image/gif"),
    ("bmp_pipe", None, "image/bmp"),
    ("tiff_pipe", None, "image/tiff"),
)
_CODEC_CONTENT_TYPES = {"mjpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "bmp": "image/bmp"}


@dataclass(frozen=True)
class ProbeFacts:
    media_type: MediaType
    duration_s: float | None
    # Display size: sample aspect applied, swapped for a 90/270 degree rotation.
    width: int | None
    height: int | None
    facts: MediaFacts
    content_type: str
    start_time_s: float = 0.0

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(v: Any) -> int | None:
    f = _float(v)
    return int(f) if f is not None else None


def _rate(v: Any) -> float | None:
    """ffprobe rates are fractions like "30000/1001"; "0/0" means unknown."""
    if not isinstance(v, str) or "/" not in v:
        return _float(v)
    num, _, den = v.partition("/")
    n, d = _float(num), _float(den)
    if not n or not d:
        return None
    return round(n / d, 3)


def _rotation(stream: dict[str, Any]) -> int:
    """Clockwise rotation in degrees (0, 90, 180, 270) from the display matrix or the old rotate tag."""
    for sd in stream.get("side_data_list") or []:
        r = _float(sd.get("rotation"))
        if r is not None:
            # The display matrix angle is counter-clockwise; the rotate tag is clockwise.
            return round(-r / 90.0) * 90 % 360
    r = _float((stream.get("tags") or {}).get("rotate"))
    return round(r / 90.0) * 90 % 360 if r is not None else 0


def _is_real_video(stream: dict[str, Any]) -> bool:
    # Cover art in an MP3 or M4A is a video stream flagged attached_pic: the file is still audio.
    return stream.get("codec_type") == "video" and not (stream.get("disposition") or {}).get("attached_pic")


def _content_type(format_name: str, media_type: MediaType, video_codec: str | None, path: Path) -> str:
    for prefix, mt, ct in _CONTENT_TYPES:
        if format_name.startswith(prefix) and (mt is None or mt == media_type):
            return ct
    if media_type == MediaType.IMAGE and video_codec in _CODEC_CONTENT_TYPES:
        return _CODEC_CONTENT_TYPES[video_codec]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def facts_from_ffprobe(data: dict[str, Any], path: Path) -> ProbeFacts:
    """Classifies ffprobe's JSON. MediaError(`unsupported_media`) when there is nothing to index."""
    fmt = data.get("format") or {}
    streams: list[dict[str, Any]] = data.get("streams") or []
    format_name = str(fmt.get("format_name") or "")
    videos = [s for s in streams if _is_real_video(s)]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if any(s.get("codec_name") in NOT_MEDIA_CODECS for s in videos) or format_name == "tty":
        raise MediaError("not a media file (text)", code="unsupported_media")
    if not videos and not audios:
        raise MediaError("no audio or video stream found", code="unsupported_media")

    video = videos[0] if videos else None
    audio = audios[0] if audios else None
    duration = _float(fmt.get("duration"))
    if duration is None and video is not None:
        duration = _float(video.get("duration"))
    if duration is None and audio is not None:
        duration = _float(audio.get("duration"))

    media_type = MediaType.AUDIO
    if video is not None:
        codec = video.get("codec_name")
        frames = _int(video.get("nb_frames"))
        single = frames == 1 or (frames is None and (duration is None or duration <= 0.1))
        still_format = format_name in IMAGE_FORMATS or format_name.endswith("_pipe")
        # png_pipe, jpeg_pipe, webp_pipe...: one picture however it is timed.
        is_image = not audios and (
            format_name.endswith("_pipe") or (single and (still_format or codec in IMAGE_CODECS))
        )
        media_type = MediaType.IMAGE if is_image else MediaType.VIDEO

    width = height = None
    rotation = 0
    if video is not None:
        w, h = _int(video.get("width")), _int(video.get("height"))
        if w and h:
            sar = _rate(str(video.get("sample_aspect_ratio") or "1:1").replace(":", "/")) or 1.0
            width, height = max(1, round(w * sar)), h
            rotation = _rotation(video)
            if rotation in (90, 270):
                width, height = height, width

    fps = None
    if video is not None and media_type == MediaType.VIDEO:
        fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    facts = MediaFacts(
        format_name=format_name or None,
        video_codec=video.get("codec_name") if video else None,
        audio_codec=audio.get("codec_name") if audio else None,
        pix_fmt=video.get("pix_fmt") if video else None,
        fps=fps,
        rotation=rotation,
        has_audio=audio is not None,
        has_video=media_type == MediaType.VIDEO,
        bit_rate=_int(fmt.get("bit_rate")),
    )
    return ProbeFacts(
        media_type=media_type,
        duration_s=None if media_type == MediaType.IMAGE else duration,
        width=width,
        height=height,
        facts=facts,
        content_type=_content_type(format_name, media_type, facts.video_codec, path),
        start_time_s=_float(fmt.get("start_time")) or 0.0,
    )


def describe(path: Path, *, timeout_s: float = 60.0, max_duration_s: float | None = None) -> ProbeFacts:
    """ffprobe + classification; no decoding, no hashing. Raises MediaError for files that are empty,
    not media, or unreadable. `max_duration_s` caps the remux that measures a duration the header
    lacks (MediaError `media_too_large` past it)."""
    if path.stat().st_size == 0:
        raise MediaError("the file is empty", code="asset_file_empty")
    pf = facts_from_ffprobe(ffmpeg.ffprobe(path, timeout_s=timeout_s), path)
    if pf.media_type != MediaType.IMAGE and pf.duration_s is None:
        # Some streams (WebM from MediaRecorder, raw streams) carry no duration: remux to nowhere to read it.
        pf = _with_duration(pf, _measure_duration(path, timeout_s, max_duration_s))
    return pf


def media_duration(path: Path, *, timeout_s: float = 120.0) -> float:
    """The duration in seconds (measured by a remux when the header has none). MediaError when the
    file has none at all, as a still image has not."""
    duration = describe(path, timeout_s=timeout_s).duration_s
    if duration is None:
        raise MediaError(f"cannot read the duration of {path.name}")
    return duration


def _with_duration(pf: ProbeFacts, duration: float | None) -> ProbeFacts:
    return dataclasses.replace(pf, duration_s=duration)


def _measure_duration(path: Path, timeout_s: float, max_duration_s: float | None) -> float | None:
    out = ffmpeg.run_ffmpeg(
        ["-i", str(path), "-map", "0:V?", "-map", "0:a?", "-c", "copy", "-f", "null", "-progress", "pipe:1",
         "-nostats", "-"],
        timeout_s=timeout_s,
        max_duration_s=max_duration_s,
    )  # fmt: skip
    return ffmpeg.progress_out_time_s(out.stdout)


def facts_from_asset(asset: Asset) -> ProbeFacts | None:
    """The facts a finished probe wrote onto the asset, so later steps need not probe again."""
    if asset.media_type is None or asset.facts is None:
        return None
    return ProbeFacts(
        media_type=asset.media_type,
        duration_s=asset.duration_s,
        width=asset.width,
        height=asset.height,
        facts=asset.facts,
        content_type=asset.content_type or "application/octet-stream",
    )


def check_limits(pf: ProbeFacts, *, max_pixels: int, max_duration_s: float) -> None:
    """Refuses decompression bombs and over-long media before anything decodes them."""
    if pf.pixels > max_pixels:
        raise MediaError(
            f"{pf.width}x{pf.height} is {pf.pixels} pixels, over the limit of {max_pixels}",
            code="media_too_large",
        )
    if pf.duration_s is not None and pf.duration_s > max_duration_s:
        raise MediaError(
            f"duration {pf.duration_s:.0f} s is over the limit of {max_duration_s:.0f} s",
            code="media_too_large",
        )


# How much of the end a probe decodes, and how much of that window may be missing before the file
# counts as truncated (a healthy file decodes the whole window, give or take a frame).
TAIL_WINDOW_S = 3.0
TAIL_SLACK_S = 0.5


def check_decodes(
    path: Path, pf: ProbeFacts, *, timeout_s: float = 120.0, max_duration_s: float | None = None
) -> None:
    """MediaError(`media_corrupt`) when the file does not decode to its end. Decodes only the last
    few seconds (a cheap check that catches truncation, the common failure of an interrupted upload);
    short media and images are decoded whole: then `max_duration_s` caps the decode (a "short" file
    whose header lies is `media_too_large`)."""
    base = ["-sn", "-dn", "-f", "null", "-progress", "pipe:1", "-nostats", "-"]
    if pf.media_type == MediaType.IMAGE:
        ffmpeg.run_ffmpeg(["-i", str(path), "-frames:v", "1", *base], timeout_s=timeout_s)
        return
    duration = pf.duration_s or 0.0
    if duration < 2 * TAIL_WINDOW_S:
        ffmpeg.run_ffmpeg(
            ["-xerror", "-i", str(path), *base], timeout_s=timeout_s, max_duration_s=max_duration_s
        )
        return
    out = ffmpeg.run_ffmpeg(
        ["-sseof", f"-{TAIL_WINDOW_S}", "-i", str(path), *base],
        timeout_s=timeout_s,
        max_duration_s=max_duration_s,
    )
    decoded = ffmpeg.progress_out_time_s(out.stdout) or 0.0
    if decoded < TAIL_WINDOW_S - TAIL_SLACK_S:
        raise MediaError(
            f"the file ends early: only {decoded:.2f} s of the last {TAIL_WINDOW_S:.0f} s decode "
            "(truncated upload?)",
            code="media_corrupt",
        )


def facts_for(asset: Asset, path: Path) -> ProbeFacts:
    """The asset's stored facts when probe already ran, else a fresh look at the file."""
    return facts_from_asset(asset) or describe(path)


def fit_within(width: int, height: int, max_w: int, max_h: int, *, even: bool = False) -> tuple[int, int]:
    """The largest size with the same aspect that fits max_w x max_h, never upscaled. `even` rounds
    down to even numbers, which 4:2:0 encoders need."""
    scale = min(1.0, max_w / width, max_h / height)
    w, h = max(1, int(width * scale + 1e-6)), max(1, int(height * scale + 1e-6))
    if even:
        w, h = max(2, w - w % 2), max(2, h - h % 2)
    return w, h


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def declared_image_size(path: Path) -> tuple[int, int] | None:
    """The size a PNG or GIF header claims, read without decoding. ffprobe reports 0x0 for sizes past
    its own limits, so a header claiming 100000x100000 would otherwise pass as merely corrupt."""
    with path.open("rb") as f:
        head = f.read(26)
    if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    return None
