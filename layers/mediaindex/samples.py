"""Sample media made with ffmpeg and espeak-ng: used by `mediaindex demo`, the tests and the benches.
Nothing checked in, no network."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

FFMPEG = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]


def _run(args: list[str]) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=300)


def have_tools() -> bool:
    return all(shutil.which(t) for t in ("ffmpeg", "ffprobe", "espeak-ng"))


def speech_wav(path: Path, text: str, *, lead_silence_s: float = 0.0, trail_silence_s: float = 0.0) -> Path:
    """Spoken English (espeak-ng), 16 kHz mono, with optional silence before and after."""
    raw = path.with_suffix(".raw.wav")
    _run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text])
    filters = []
    if lead_silence_s:
        ms = int(lead_silence_s * 1000)
        filters.append(f"adelay={ms}|{ms}")
    if trail_silence_s:
        filters.append(f"apad=pad_dur={trail_silence_s}")
    args = [*FFMPEG, "-i", str(raw), "-ar", "16000", "-ac", "1"]
    if filters:
        args += ["-af", ",".join(filters)]
    _run([*args, str(path)])
    raw.unlink(missing_ok=True)
    return path


def talking_video(
    path: Path, text: str, *, size: str = "640x360", lead_silence_s: float = 1.0, min_duration_s: float = 0.0
) -> Path:
    """A test-pattern video with spoken `text` starting at `lead_silence_s`. H.264/AAC MP4."""
    wav = speech_wav(
        path.with_suffix(".speech.wav"), text, lead_silence_s=lead_silence_s, trail_silence_s=1.0
    )
    pad = f",apad=whole_dur={min_duration_s}" if min_duration_s else ""
    _run(
        [
            *FFMPEG,
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=25",
            "-i",
            str(wav),
            "-filter_complex",
            f"[1:a]anull{pad}[a]",
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-shortest",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            str(path),
        ]
    )
    wav.unlink(missing_ok=True)
    return path


def silent_video(path: Path, *, seconds: float = 3.0, size: str = "320x240") -> Path:
    _run(
        [
            *FFMPEG,
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={size}:rate=25:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ]
    )
    return path


def scene_video(path: Path, colors: list[str], *, seconds_each: float = 2.0, size: str = "320x240") -> Path:
    """Hard cuts between solid colours: one shot per colour."""
    inputs: list[str] = []
    for c in colors:
        inputs += ["-f", "lavfi", "-i", f"color=c={c}:size={size}:rate=25:duration={seconds_each}"]
    n = len(colors)
    concat = "".join(f"[{i}:v]" for i in range(n)) + f"concat=n={n}:v=1:a=0[v]"
    _run(
        [
            *FFMPEG,
            *inputs,
            "-filter_complex",
            concat,
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ]
    )
    return path


def image(path: Path, *, size: str = "800x600", color: str | None = None) -> Path:
    src = f"color=c={color}:size={size}" if color else f"testsrc2=size={size}"
    _run([*FFMPEG, "-f", "lavfi", "-i", src, "-frames:v", "1", str(path)])
    return path


def tone_audio(path: Path, *, seconds: float = 3.0) -> Path:
    _run([*FFMPEG, "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", str(path)])
    return path


def truncated(src: Path, dest: Path, *, keep_fraction: float = 0.3) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: max(1, int(len(data) * keep_fraction))])
    return dest
