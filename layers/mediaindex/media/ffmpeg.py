"""The one runner for the ffmpeg and ffprobe executables: every call in the code base goes through
here. Commands are argument lists (never a shell), every call has a timeout, and stderr is kept for
the error message.

Every input is opened with `-protocol_whitelist file,pipe` (no network, no other protocols) and
`-format_whitelist` DEMUXERS (media containers and still images only): a playlist or concat list
(HLS, DASH, ffconcat) that would make ffmpeg open other files or URLs is refused, and so is an input
that is a URL in the first place.

Failures map onto the domain's codes: a file the tools cannot read is `unsupported_media` (or
`media_corrupt` when its first bytes say it is a media container), a non-zero exit is
`media_corrupt` unless the caller says otherwise, and a timeout or a killed process is a
`StepFailedError` because a retry may pass."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mediaindex.domain.errors import MediaError, StepFailedError

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
# Options every ffmpeg call starts with: no banner, never read stdin (a worker has none), overwrite.
# The log level follows (`-loglevel error` unless the caller needs more, such as showinfo's lines).
FFMPEG_PREFIX: tuple[str, ...] = (FFMPEG, "-hide_banner", "-nostdin")
PROTOCOLS = "file,pipe"
# The demuxers an input may be read with (ffmpeg's names; "mov" matches "mov,mp4,m4a,3gp,3g2,mj2").
# Deliberately absent: playlists and lists of other inputs (hls, dash, concat, webm_dash_manifest),
# devices and generators (lavfi, v4l2, x11grab...), network formats (rtp, rtsp, sdp), text (tty).
DEMUXERS: tuple[str, ...] = (
    # video containers and elementary streams
    "mov", "matroska", "avi", "asf", "flv", "mpeg", "mpegts", "mxf", "nut", "ogg", "rm", "wtv", "dv",
    "ivf", "m4v", "h264", "hevc", "mpegvideo", "yuv4mpegpipe", "gif", "apng",
    # audio
    "mp3", "aac", "ac3", "eac3", "wav", "w64", "flac", "aiff", "caf", "amr", "au", "ape", "wv", "tta",
    "tak", "mpc", "mpc8", "dts", "truehd", "mlp", "loas", "oma", "voc", "dsf", "xwma", "qcp", "shn",
    # still images
    "image2", "png_pipe", "jpeg_pipe", "jpegls_pipe", "jpegxl_pipe", "webp_pipe", "gif_pipe", "bmp_pipe",
    "tiff_pipe", "j2k_pipe", "qoi_pipe", "psd_pipe", "exr_pipe", "dpx_pipe", "pam_pipe", "pbm_pipe",
    "pgm_pipe", "pgmyuv_pipe", "ppm_pipe", "pcx_pipe", "sgi_pipe", "sunrast_pipe", "xwd_pipe",
    "xbm_pipe", "photocd_pipe",
)  # fmt: skip
_STDERR_TAIL = 1500
# "http:", "concat:", "data:"...: ffmpeg reads these as protocols, never as a local file name.
_PROTOCOL_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")

# First bytes of containers and image formats ffmpeg reads. Used only after ffprobe failed, to tell
# a broken media file (`media_corrupt`) from something that is not media at all (`unsupported_media`).
_MAGIC: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # MP4 / MOV / M4A / 3GP / HEIF
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"wide"),
    (4, b"free"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # WAV / AVI / WebP
    (0, b"OggS"),
    (0, b"fLaC"),
    (0, b"ID3"),  # MP3 with tags
    (0, b"FLV"),
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"\x00\x00\x01\xb3"),  # MPEG video
    (0, b"\x89PNG"),
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"GIF8"),
    (0, b"BM"),
    (0, b"II*\x00"),  # TIFF
    (0, b"MM\x00*"),
    (0, b"#!AMR"),
    (0, b"FORM"),  # AIFF
    (0, b"caff"),
)


@dataclass(frozen=True)
class ToolOutput:
    stdout: str
    stderr: str
    returncode: int = 0


def looks_like_media(path: Path) -> bool:
    """Whether the file starts like a media container or image (a signature check, nothing more)."""
    try:
        with path.open("rb") as f:
            head = f.read(189)
    except OSError:
        return False
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio / ADTS frame sync
        return True
    if len(head) == 189 and head[0] == head[188] == 0x47:  # MPEG-TS: a sync byte every 188 bytes
        return True
    return any(head[off : off + len(sig)] == sig for off, sig in _MAGIC)


def input_guard() -> list[str]:
    """The options that go before every input: local files and pipes only, media demuxers only."""
    return ["-protocol_whitelist", PROTOCOLS, "-format_whitelist", ",".join(DEMUXERS)]


def _check_input(name: str) -> None:
    if _PROTOCOL_PREFIX.match(name):
        raise MediaError(f"only local files are read, not {name[:80]!r}", code="unsupported_media")


def guard_inputs(args: Sequence[str]) -> list[str]:
    """`args` with input_guard() before every `-i`; MediaError for an input that is not a local file."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "-i":
            if i + 1 >= len(args):
                raise ValueError("-i without an input")
            _check_input(args[i + 1])
            out += input_guard()
        out.append(arg)
    return out


def ffmpeg_command(args: Sequence[str], *, loglevel: str = "error") -> list[str]:
    """The full command line for `args` (what `run_ffmpeg` runs; the bench runs it raw)."""
    return [*FFMPEG_PREFIX, "-loglevel", loglevel, "-y", *guard_inputs(args)]


def ffprobe_command(path: Path, extra: Sequence[str] = ()) -> list[str]:
    """The full ffprobe command line for `path`: JSON of the container and its streams."""
    _check_input(str(path))
    return [
        FFPROBE, "-v", "error", *input_guard(), "-print_format", "json", "-show_format", "-show_streams",
        *extra, str(path),
    ]  # fmt: skip


def _text(raw: bytes) -> str:
    return raw.decode(errors="replace")


def _tail(text: str) -> str:
    text = text.strip()
    return text[-_STDERR_TAIL:] if len(text) > _STDERR_TAIL else text


def _exec(
    cmd: Sequence[str], timeout_s: float, *, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The only subprocess call for the tools (`stdin`: bytes for an input read from stdin, `-i -`). A
    timeout or a kill by signal (out of memory) raises StepFailedError; the exit status is the
    caller's to judge."""
    try:
        proc = subprocess.run(list(cmd), input=stdin, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as e:
        raise StepFailedError(f"{cmd[0]} timed out after {timeout_s:.0f} s") from e
    except FileNotFoundError as e:
        raise StepFailedError(f"{cmd[0]} is not installed or not on PATH") from e
    if proc.returncode < 0:
        raise StepFailedError(f"{cmd[0]} was killed (signal {-proc.returncode}): {_tail(_text(proc.stderr))}")
    return proc


def ffprobe(path: Path, *, timeout_s: float = 60.0, extra: Sequence[str] = ()) -> dict[str, Any]:
    """ffprobe's JSON for the container and its streams."""
    proc = _exec(ffprobe_command(path, extra), timeout_s)
    if proc.returncode != 0:
        code = "media_corrupt" if looks_like_media(path) else "unsupported_media"
        what = "a damaged or truncated media file" if code == "media_corrupt" else "not a media file"
        raise MediaError(f"{what}: {_tail(_text(proc.stderr))}", code=code)
    try:
        data: dict[str, Any] = json.loads(_text(proc.stdout) or "{}")
    except json.JSONDecodeError as e:
        raise MediaError("ffprobe returned unreadable output", code="unsupported_media") from e
    return data


def with_caps(
    args: Sequence[str],
    *,
    max_duration_s: float | None = None,
    max_output_bytes: int | None = None,
    progress: str | None = None,
) -> list[str]:
    """`args` bounded by what is decoded, not by what the header claims: `-t` (the limit plus
    DECODE_MARGIN_S) on the first input, so no more than that is ever read or decoded; `-fs` on the
    output (the last argument); `-progress` to `progress` unless the args report progress already.
    With a duration cap, a last output copies the input's streams to nowhere (no decoding): its time
    is how far the input was read, even where the real outputs are single pictures (a waveform)."""
    out = list(args)
    if max_output_bytes is not None:
        out[-1:-1] = ["-fs", str(int(max_output_bytes))]
    if max_duration_s is not None and "-i" in out:
        first = out.index("-i")
        out[first:first] = ["-t", f"{max_duration_s + DECODE_MARGIN_S:.3f}"]
        if progress is not None and "-progress" not in out:
            out[first:first] = ["-progress", progress, "-nostats"]
        out += ["-map", "0:V?", "-map", "0:a?", "-c", "copy", "-f", "null", "-"]
    return out


# How far past the limit a capped decode reads: a decode that gets beyond the limit itself proves
# the media longer than allowed, whatever its header says.
DECODE_MARGIN_S = 1.0


def _over_limit(out: ToolOutput, progress: Path | None, limit: float) -> float | None:
    """How much a capped run decoded, when that is past `limit` (else None)."""
    if progress is None:
        text = out.stdout  # the args report to pipe:1 themselves
    else:
        text = progress.read_text(errors="replace") if progress.exists() else ""
    decoded = progress_out_time_s(text)
    return decoded if decoded is not None and decoded > limit + DECODE_MARGIN_S / 2 else None


def run_ffmpeg(
    args: Sequence[str],
    *,
    timeout_s: float,
    error_code: str = "media_corrupt",
    loglevel: str = "error",
    check: bool = True,
    max_duration_s: float | None = None,
    max_output_bytes: int | None = None,
) -> ToolOutput:
    """Runs ffmpeg with `args` (everything after the common prefix). A non-zero exit raises
    MediaError(`error_code`), or with check=False comes back in `returncode` for the caller to read
    stderr; a timeout or a kill by signal raises StepFailedError.

    Caps that hold on what is decoded, whatever the container's header claims (`with_caps`):
    `max_duration_s` stops the decode just past the media limit, and a run that decodes past it
    raises MediaError(`media_too_large`); `max_output_bytes` stops writing the output (the last
    argument) at that size, and an output that reaches it raises `media_too_large` too."""
    progress: Path | None = None
    if max_duration_s is not None and "-progress" not in args:
        fd, name = tempfile.mkstemp(prefix="mi-ffmpeg-", suffix=".progress")
        os.close(fd)
        progress = Path(name)
    try:
        capped = with_caps(
            args,
            max_duration_s=max_duration_s,
            max_output_bytes=max_output_bytes,
            progress=str(progress) if progress else None,
        )
        proc = _exec(ffmpeg_command(capped, loglevel=loglevel), timeout_s)
        out = ToolOutput(_text(proc.stdout), _text(proc.stderr), proc.returncode)
        if max_duration_s is not None:
            decoded = _over_limit(out, progress, max_duration_s)
            if decoded is not None:
                raise MediaError(
                    f"the media decodes past the limit of {max_duration_s:.0f} s (its header claims less)",
                    code="media_too_large",
                )
    finally:
        if progress is not None:
            progress.unlink(missing_ok=True)
    if max_output_bytes is not None:
        written = Path(args[-1])
        if written.is_file() and written.stat().st_size >= max_output_bytes:
            raise MediaError(
                f"the output reached its {max_output_bytes} byte limit: the media is longer than it says",
                code="media_too_large",
            )
    if check and proc.returncode != 0:
        raise MediaError(f"ffmpeg failed: {_tail(out.stderr)}", code=error_code)
    return out


def _square_rgb(size: int) -> list[str]:
    """Scaled so the shorter edge is `size` (bicubic), centre-cropped to a square, as raw rgb24."""
    vf = (
        f"scale={size}:{size}:force_original_aspect_ratio=increase:flags=bicubic,"
        f"crop={size}:{size},format=rgb24"
    )
    return ["-vf", vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]


def decode_rgb_frame(path: Path, size: int, *, timeout_s: float = 60.0) -> bytes:
    """The first frame as size*size*3 bytes of rgb24: scaled so its shorter edge is `size` (bicubic),
    centre-cropped to a square. MediaError when no frame decodes."""
    proc = _exec(ffmpeg_command(["-i", str(path), "-frames:v", "1", *_square_rgb(size)]), timeout_s)
    expected = size * size * 3
    if proc.returncode != 0 or len(proc.stdout) < expected:
        err = _text(proc.stderr).strip()[-300:]
        raise MediaError(f"cannot decode image {path.name}: {err or 'no frame'}")
    return proc.stdout[:expected]


def decode_rgb_frames(paths: Sequence[Path], size: int, *, timeout_s: float = 60.0) -> list[bytes]:
    """decode_rgb_frame of each of `paths`, in order. The plain JPEGs among them (the render step's
    keyframes) go through one ffmpeg run, fed as a stream on stdin: a process start cost ~60 ms
    where a keyframe's decode costs ~2. Any other file, a JPEG holding a second image (an embedded
    thumbnail, which the stream's parser would take for a frame of its own), and every JPEG of a
    run whose frame count comes out wrong (one damaged) are decoded on their own, so an error
    names its file."""
    plain = {i: data for i, p in enumerate(paths) if (data := _plain_jpeg(p)) is not None}
    out: dict[int, bytes] = {}
    if len(plain) > 1:
        # passthrough: one output frame per input frame (no frame-rate conversion of the stream)
        args = ["-f", "jpeg_pipe", "-i", "-", "-fps_mode", "passthrough", *_square_rgb(size)]
        proc = _exec(ffmpeg_command(args), timeout_s, stdin=b"".join(plain.values()))
        n = size * size * 3
        if proc.returncode == 0 and len(proc.stdout) == n * len(plain):
            out = {i: proc.stdout[k * n : (k + 1) * n] for k, i in enumerate(plain)}
    return [
        out[i] if i in out else decode_rgb_frame(p, size, timeout_s=timeout_s) for i, p in enumerate(paths)
    ]


def _plain_jpeg(path: Path) -> bytes | None:
    """The file's bytes when it is a JPEG with one start-of-image marker (FF D8). A second one is
    an embedded image or, rarely, metadata bytes; either way the file is decoded on its own. Coded
    data never holds FF D8 (0xFF there is always followed by 0x00)."""
    try:
        with path.open("rb") as f:
            if f.read(3) != b"\xff\xd8\xff":
                return None
            data = b"\xff\xd8\xff" + f.read()
    except OSError:
        return None
    return data if data.count(b"\xff\xd8") == 1 else None


def progress_out_time_s(progress: str) -> float | None:
    """The last `out_time_us` of ffmpeg's `-progress pipe:1` output, in seconds."""
    value: float | None = None
    for line in progress.splitlines():
        key, _, raw = line.partition("=")
        if key == "out_time_us" and raw.strip().lstrip("-").isdigit():
            value = max(0.0, int(raw) / 1_000_000)
    return value


@lru_cache(maxsize=1)
def encoders() -> frozenset[str]:
    """Names of the encoders this ffmpeg build has (asked once per process)."""
    proc = _exec([FFMPEG, "-hide_banner", "-encoders"], 30.0)
    names: set[str] = set()
    for line in _text(proc.stdout).splitlines():
        parts = line.split()
        # Lines look like " V....D libx264   libx264 H.264 ..."; the header lines have no flags column.
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def has_encoder(name: str) -> bool:
    return name in encoders()


@lru_cache(maxsize=1)
def _options() -> frozenset[str]:
    proc = _exec([FFMPEG, "-hide_banner", "-h", "long"], 30.0)
    return frozenset(line.split()[0] for line in _text(proc.stdout).splitlines() if line.startswith("-"))


def fps_mode_args(mode: str) -> list[str]:
    """How output frames are timed (`cfr`, `vfr`, `passthrough`): `-fps_mode` (ffmpeg 5.1+),
    `-vsync` before that."""
    return ["-fps_mode", mode] if "-fps_mode" in _options() else ["-vsync", mode]


def cfr_args() -> list[str]:
    """Constant frame rate output."""
    return fps_mode_args("cfr")
