"""Shot changes and keyframe candidates from one decode of a video.

One ffmpeg run splits the decoded frames: one branch scores each frame against the last (ffmpeg's
scene score) and reports the cuts; the other keeps a frame every `interval_s` as a JPEG candidate.
Segments are planned from the cuts afterwards, and each takes the candidate nearest its middle,
so no second decode (nor a seek per segment, which decodes from the previous keyframe) is needed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mediaindex.media import ffmpeg

SCENE_THRESHOLD = 0.3
KEYFRAME_MAX_WIDTH = 640
# A candidate every half second (the keyframe of a segment is then within a quarter second of its
# middle), and at most this many in all: a long video gets a longer interval.
CANDIDATE_INTERVAL_S = 0.5
MAX_CANDIDATES = 1200
# Named filter instances, so each branch's showinfo lines can be told apart in the log.
_CUT, _CANDIDATE = "showinfo@cut", "showinfo@candidate"
_PTS_TIME = re.compile(r"pts_time:\s*(-?[0-9]+(?:\.[0-9]+)?)")


@dataclass(frozen=True)
class Candidate:
    time_s: float
    path: Path


@dataclass(frozen=True)
class ShotScan:
    cuts: list[float] | None  # None when the decode failed: no shot boundaries are known
    candidates: list[Candidate]


def candidate_interval(duration_s: float) -> float:
    return max(CANDIDATE_INTERVAL_S, duration_s / MAX_CANDIDATES)


def keyframe_scale() -> str:
    """The keyframe size: at most KEYFRAME_MAX_WIDTH wide, aspect kept, even height."""
    return f"scale='min({KEYFRAME_MAX_WIDTH},iw)':-2"


def cut_filter(threshold: float) -> str:
    """Frames whose scene score passes `threshold`, logged. The score is taken in RGB on small
    frames: on YUV input ffmpeg scores luma alone and misses cuts between colours of equal
    brightness, and the score needs coarse content only."""
    return f"scale=160:-2,format=rgb24,select='gt(scene,{threshold})',{_CUT}"


@dataclass(frozen=True)
class ScanPart:
    """The scan as part of a larger ffmpeg run (the render step's one decode): its filter chains
    (fed by the first video stream) and its output arguments."""

    graph: str
    outputs: list[str]
    out_dir: Path


def scan_part(
    out_dir: Path, *, interval_s: float, threshold: float = SCENE_THRESHOLD, label: str = "candidates"
) -> ScanPart:
    """Candidates are real frames (their own timestamps): the first one, then each first frame at
    least `interval_s` after the last kept."""
    graph = ";".join(
        [
            f"[0:V:0]{cut_filter(threshold)},nullsink",
            f"[0:V:0]select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,{interval_s:.3f})',"
            f"{keyframe_scale()},{_CANDIDATE}[{label}]",
        ]
    )
    outputs = [
        "-map", f"[{label}]", *ffmpeg.fps_mode_args("passthrough"), "-q:v", "3", "-start_number", "0",
        str(out_dir / "candidate-%05d.jpg"),
    ]  # fmt: skip
    return ScanPart(graph, outputs, out_dir)


def scan_args(
    src: Path, out_dir: Path, *, interval_s: float, threshold: float = SCENE_THRESHOLD
) -> list[str]:
    """The ffmpeg arguments of a decode for the scan alone."""
    return _alone(src, scan_part(out_dir, interval_s=interval_s, threshold=threshold))


def _alone(src: Path, part: ScanPart) -> list[str]:
    return ["-i", str(src), "-an", "-sn", "-dn", "-filter_complex", part.graph, *part.outputs]


def _times(log: str, instance: str) -> list[float]:
    prefix = f"[{instance} @"
    return [
        float(m.group(1))
        for line in log.splitlines()
        if line.startswith(prefix) and "pts_time:" in line
        for m in [_PTS_TIME.search(line)]
        if m
    ]


def read_scan(part: ScanPart, log: str, returncode: int) -> ShotScan:
    """What a run that included `part` found, from its log (at `info` level) and its files."""
    files = sorted(part.out_dir.glob("candidate-*.jpg"))
    times = _times(log, _CANDIDATE)
    # showinfo logs a frame before the encoder writes it: a failed run can log one more than it wrote.
    candidates = [Candidate(t, f) for t, f in zip(times, files, strict=False) if f.stat().st_size > 0]
    cuts = _times(log, _CUT) if returncode == 0 else None
    return ShotScan(cuts, candidates)


def scan(
    src: Path,
    out_dir: Path,
    *,
    duration_s: float,
    threshold: float = SCENE_THRESHOLD,
    timeout_s: float = 1800,
    max_duration_s: float | None = None,
) -> ShotScan:
    """Decodes `src` once: its cuts and its keyframe candidates (written under `out_dir`). A failed
    run reports no cuts (None) and whatever candidates it wrote; a file that ends early gives the
    cuts and candidates of the part that decodes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    part = scan_part(out_dir, interval_s=candidate_interval(duration_s), threshold=threshold)
    args = _alone(src, part)
    # Decodes the whole video: capped at the media limit (MediaError `media_too_large` past it).
    out = ffmpeg.run_ffmpeg(
        args, timeout_s=timeout_s, loglevel="info", check=False, max_duration_s=max_duration_s
    )
    return read_scan(part, out.stderr, out.returncode)


def detect_cuts(
    src: Path,
    *,
    threshold: float = SCENE_THRESHOLD,
    timeout_s: float = 1800,
    max_duration_s: float | None = None,
) -> list[float] | None:
    """The cuts alone, by a decode of their own (what `scan` reports beside its candidates); None
    when the decode failed."""
    args = ["-i", str(src), "-an", "-sn", "-dn", "-vf", cut_filter(threshold), "-f", "null", "-"]
    out = ffmpeg.run_ffmpeg(
        args, timeout_s=timeout_s, loglevel="info", check=False, max_duration_s=max_duration_s
    )
    return _times(out.stderr, _CUT) if out.returncode == 0 else None


def nearest(candidates: list[Candidate], start: float, end: float) -> Candidate | None:
    """The candidate nearest the middle of [start, end), preferring one inside it."""
    if not candidates:
        return None
    mid = (start + end) / 2
    inside = [c for c in candidates if start <= c.time_s < end]
    return min(inside or candidates, key=lambda c: abs(c.time_s - mid))
