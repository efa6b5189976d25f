"""Thin, typed wrappers over the ffmpeg and ffprobe executables. Commands are argument lists (never
a shell), every call has a timeout, and stderr is kept for the error message.

Failures map onto the domain's codes: a file the tools cannot read is `unsupported_media` (or
`media_corrupt` when its first bytes say it is a media container), a non-zero exit is
`media_corrupt` unless the caller says otherwise, and a timeout or a killed process is a
`StepFailedError` because a retry may pass."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mediaindex.errors import MediaError, StepFailedError

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
# Options every ffmpeg call starts with: no banner, never read stdin (a worker has none), overwrite.
FFMPEG_PREFIX: tuple[str, ...] = (FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y")
_STDERR_TAIL = 1500

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


def looks_like_media(path: Path) -> bool:
    """Whether the file starts like a media container or image (a signature check, nothing more)."""
    with path.open("rb") as f:
        head = f.read(189)
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio / ADTS frame sync
        return True
    if len(head) == 189 and head[0] == head[188] == 0x47:  # MPEG-TS: a sync byte every 188 bytes
        return True
    return any(head[off : off + len(sig)] == sig for off, sig in _MAGIC)


def _tail(text: str) -> str:
    text = text.strip()
    return text[-_STDERR_TAIL:] if len(text) > _STDERR_TAIL else text


def _run(cmd: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, errors="replace", timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise StepFailedError(f"{cmd[0]} timed out after {timeout_s:.0f} s") from e
    except FileNotFoundError as e:
        raise StepFailedError(f"{cmd[0]} is not installed or not on PATH") from e


def ffprobe(path: Path, *, timeout_s: float = 60.0, extra: Sequence[str] = ()) -> dict[str, Any]:
    """ffprobe's JSON for the container and its streams."""
    cmd = [
        FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", *extra, str(path),
    ]  # fmt: skip
    proc = _run(cmd, timeout_s)
    if proc.returncode < 0:
        raise StepFailedError(f"ffprobe was killed (signal {-proc.returncode})")
    if proc.returncode != 0:
        code = "media_corrupt" if looks_like_media(path) else "unsupported_media"
        what = "a damaged or truncated media file" if code == "media_corrupt" else "not a media file"
        raise MediaError(f"{what}: {_tail(proc.stderr)}", code=code)
    try:
        data: dict[str, Any] = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as e:
        raise MediaError("ffprobe returned unreadable output", code="unsupported_media") from e
    return data


def ffmpeg_command(args: Sequence[str]) -> list[str]:
    """The full command line for `args` (what `run_ffmpeg` runs; the bench runs it raw)."""
    return [*FFMPEG_PREFIX, *args]


def run_ffmpeg(args: Sequence[str], *, timeout_s: float, error_code: str = "media_corrupt") -> ToolOutput:
    """Runs ffmpeg with `args` (everything after the common prefix). A non-zero exit raises
    MediaError(`error_code`); a timeout or a kill by signal (out of memory) raises StepFailedError."""
    proc = _run(ffmpeg_command(args), timeout_s)
    if proc.returncode < 0:
        raise StepFailedError(f"ffmpeg was killed (signal {-proc.returncode}): {_tail(proc.stderr)}")
    if proc.returncode != 0:
        raise MediaError(f"ffmpeg failed: {_tail(proc.stderr)}", code=error_code)
    return ToolOutput(proc.stdout, proc.stderr)


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
    proc = _run([FFMPEG, "-hide_banner", "-encoders"], 30.0)
    names: set[str] = set()
    for line in proc.stdout.splitlines():
        parts = line.split()
        # Lines look like " V....D libx264   libx264 H.264 ..."; the header lines have no flags column.
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def has_encoder(name: str) -> bool:
    return name in encoders()


@lru_cache(maxsize=1)
def _options() -> frozenset[str]:
    proc = _run([FFMPEG, "-hide_banner", "-h", "long"], 30.0)
    return frozenset(line.split()[0] for line in proc.stdout.splitlines() if line.startswith("-"))


def cfr_args() -> list[str]:
    """Constant frame rate output: `-fps_mode cfr` (ffmpeg 5.1+), `-vsync cfr` before that."""
    return ["-fps_mode", "cfr"] if "-fps_mode" in _options() else ["-vsync", "cfr"]
