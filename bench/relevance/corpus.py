"""Builds the spoken relevance corpus (topics.py) with espeak-ng and ffmpeg, with each sentence's
start and end in its file as ground truth, and caches it under a folder named by a hash of the spec.

Each sentence is spoken on its own, trimmed of espeak's own leading and trailing silence, and
measured with ffprobe; the file is the pieces joined by silences of 0.4..1.2 s. So a sentence's
[start, end] is where its speech is, to the sample, whatever the container it is then encoded to."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.relevance.topics import TOPICS, Topic
from mediaindex.samples import FFMPEG, have_tools

GENERATOR_VERSION = 2  # bump when the generation below changes what it writes
RATE = 16000
LEAD_S = 0.6
TRAIL_S = 0.8
_GAPS_S = (0.4, 0.9, 0.6, 1.2, 0.5, 1.0, 0.7, 1.1, 0.8)  # cycled, offset per file
# Trims espeak's own silence off both ends of a piece: reversing trims the tail as a head.
_TRIM = "silenceremove=start_periods=1:start_threshold=-50dB"
DEFAULT_CACHE = Path.home() / ".cache" / "mediaindex-bench" / "relevance"
MANIFEST = "manifest.json"


class CorpusError(RuntimeError):
    pass


@dataclass(frozen=True)
class Sentence:
    index: int
    text: str
    start: float
    end: float

    @property
    def midpoint(self) -> float:
        return (self.start + self.end) / 2


@dataclass(frozen=True)
class CorpusFile:
    key: str
    path: Path
    content_type: str
    voice: str
    speed: int
    duration: float
    sentences: tuple[Sentence, ...]


@dataclass(frozen=True)
class Corpus:
    root: Path
    spec_hash: str
    files: tuple[CorpusFile, ...]

    def file(self, key: str) -> CorpusFile:
        for f in self.files:
            if f.key == key:
                return f
        raise KeyError(key)

    @property
    def duration(self) -> float:
        return sum(f.duration for f in self.files)


CONTENT_TYPES = {"mp4": "video/mp4", "m4a": "audio/mp4", "wav": "audio/wav"}


def gaps_for(position: int, count: int) -> list[float]:
    """The silences between `count` sentences of the file at `position`: varied, deterministic."""
    return [_GAPS_S[(position * 2 + i) % len(_GAPS_S)] for i in range(max(0, count - 1))]


def spec_hash(topics: tuple[Topic, ...] = TOPICS) -> str:
    spec = {
        "version": GENERATOR_VERSION,
        "rate": RATE,
        "lead": LEAD_S,
        "trail": TRAIL_S,
        "gaps": _GAPS_S,
        "topics": [asdict(t) for t in topics],
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def load_or_build(cache_root: Path = DEFAULT_CACHE, topics: tuple[Topic, ...] = TOPICS) -> Corpus:
    """The corpus from the cache, else generated into it (a temp folder renamed into place, so a
    half-built corpus is never taken for a whole one)."""
    h = spec_hash(topics)
    root = cache_root / h
    if (root / MANIFEST).exists():
        return _read_manifest(root)
    if not have_tools():
        raise CorpusError("espeak-ng, ffmpeg and ffprobe are needed to build the relevance corpus")
    unknown = sorted({t.voice for t in topics} - known_voices({t.voice for t in topics}))
    if unknown:  # espeak-ng falls back to its default voice, quietly, on a name it does not know
        raise CorpusError(f"unknown espeak-ng voice {', '.join(unknown)} (see espeak-ng --voices)")
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{h}-", dir=cache_root))
    try:
        files = [_build_file(tmp, pos, t) for pos, t in enumerate(topics)]
        _write_manifest(tmp, h, files)
        try:
            os.rename(tmp, root)
        except OSError as e:  # another run finished the same corpus first: theirs is as good
            if not (root / MANIFEST).exists():
                raise CorpusError(f"cannot move the corpus into {root} ({e}): delete it to rebuild") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _read_manifest(root)


def known_voices(voices: set[str]) -> set[str]:
    """Those of `voices` ("language" or "language+variant") that this espeak-ng has."""
    languages: set[str] = set()
    for row in _run(["espeak-ng", "--voices"]).splitlines()[1:]:
        if row.split():  # the language, and the ones it also answers to: "(en 2)"
            languages |= {row.split()[1], *re.findall(r"\((\S+) \d+\)", row)}
    variants = {  # by file name: "!v/f3" is the variant "+f3"
        tok[3:]
        for row in _run(["espeak-ng", "--voices=variant"]).splitlines()
        for tok in row.split()
        if tok.startswith("!v/")
    }
    ok = set()
    for v in voices:
        language, _, variant = v.partition("+")
        if language in languages and (not variant or variant in variants):
            ok.add(v)
    return ok


def probe_duration(path: Path) -> float:
    out = _run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)])
    try:
        return float(out.strip())
    except ValueError as e:
        raise CorpusError(f"ffprobe gave no duration for {path.name}: {out!r}") from e


def _run(args: list[str]) -> str:
    try:
        done = subprocess.run(args, check=True, capture_output=True, text=True, timeout=300)
    except subprocess.CalledProcessError as e:
        raise CorpusError(f"{args[0]} failed: {e.stderr.strip()[-500:]}") from e
    return done.stdout


def _speak(work: Path, name: str, topic: Topic, text: str) -> tuple[bytes, float]:
    """One sentence as 16 kHz mono PCM, trimmed; returns its frames and its ffprobe duration."""
    raw, piece = work / f"{name}.raw.wav", work / f"{name}.wav"
    _run(["espeak-ng", "-v", topic.voice, "-s", str(topic.speed), "-w", str(raw), text])
    trim = f"{_TRIM},areverse,{_TRIM},areverse"
    _run(
        [*FFMPEG, "-i", str(raw), "-af", trim, "-ar", str(RATE), "-ac", "1", "-c:a", "pcm_s16le", str(piece)]
    )
    duration = probe_duration(piece)
    with wave.open(str(piece), "rb") as w:
        frames = w.readframes(w.getnframes())
    if abs(len(frames) / 2 / RATE - duration) > 0.002:
        raise CorpusError(f"{name}: ffprobe says {duration:.3f} s, the samples say otherwise")
    return frames, duration


def _silence(seconds: float) -> bytes:
    return b"\0\0" * round(seconds * RATE)  # 16-bit mono zeros


def _build_file(work: Path, position: int, topic: Topic) -> CorpusFile:
    pcm = bytearray(_silence(LEAD_S))
    sentences = []
    gaps = gaps_for(position, len(topic.sentences))
    for i, text in enumerate(topic.sentences):
        frames, _ = _speak(work, f"{topic.key}-{i}", topic, text)
        start = len(pcm) / 2 / RATE
        pcm += frames
        sentences.append(Sentence(i, text, round(start, 3), round(len(pcm) / 2 / RATE, 3)))
        pcm += _silence(gaps[i] if i < len(gaps) else TRAIL_S)
    speech = work / f"{topic.key}.speech.wav"
    with wave.open(str(speech), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(pcm))
    out = work / f"{topic.key}.{topic.container}"
    _encode(speech, out, topic.container, position, seconds=len(pcm) / 2 / RATE)
    for p in work.glob(f"{topic.key}-*.wav"):
        p.unlink()
    speech.unlink(missing_ok=True)
    return CorpusFile(
        key=topic.key,
        path=out,
        content_type=CONTENT_TYPES[topic.container],
        voice=topic.voice,
        speed=topic.speed,
        duration=round(probe_duration(out), 3),
        sentences=tuple(sentences),
    )


def _encode(speech: Path, out: Path, container: str, position: int, *, seconds: float) -> None:
    if container == "wav":
        shutil.copyfile(speech, out)
    elif container == "m4a":
        _run([*FFMPEG, "-i", str(speech), "-c:a", "aac", "-b:a", "64k", str(out)])
    elif container == "mp4":
        # A still colour or a test pattern: the track is there so the file is a video, nothing more.
        # The video is cut to the speech's length (-shortest overshoots by the encoder's buffer).
        opts = f"size=320x240:rate=10:duration={seconds:.3f}"
        colour = f"0x{position * 1234567 % 0xFFFFFF:06x}"
        src = f"testsrc={opts}" if position % 4 == 0 else f"color=c={colour}:{opts}"
        _run(
            [
                *FFMPEG, "-f", "lavfi", "-i", src, "-i", str(speech), "-map", "0:v", "-map", "1:a",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "64k", str(out),
            ]
        )  # fmt: skip
    else:
        raise CorpusError(f"unknown container {container!r}")


def _write_manifest(root: Path, h: str, files: list[CorpusFile]) -> None:
    data = {
        "spec_hash": h,
        "files": [
            {**asdict(f), "path": f.path.name, "sentences": [asdict(s) for s in f.sentences]} for f in files
        ],
    }
    (root / MANIFEST).write_text(json.dumps(data, indent=1))


def _read_manifest(root: Path) -> Corpus:
    data = json.loads((root / MANIFEST).read_text())
    files = tuple(
        CorpusFile(
            key=f["key"],
            path=root / f["path"],
            content_type=f["content_type"],
            voice=f["voice"],
            speed=f["speed"],
            duration=f["duration"],
            sentences=tuple(Sentence(**s) for s in f["sentences"]),
        )
        for f in data["files"]
    )
    missing = [f.path.name for f in files if not f.path.exists()]
    if missing:
        raise CorpusError(f"the cached corpus at {root} lacks {', '.join(missing)}: delete it to rebuild")
    return Corpus(root=root, spec_hash=data["spec_hash"], files=files)
